"""The PSNR-oriented training loop: L1/Charbonnier on random patches, Adam, cosine
learning rate over a step or time budget, EMA weights, validation with curves and
sample grids, best-checkpoint selection and early stopping."""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from training import archs, checkpoint
from training.config import TrainConfig
from training.data import PatchSampler, SRPair, list_images, make_sr_pairs
from training.evaluate import Upscaler, bicubic, evaluate_sr
from training.plots import centre_crop, save_curves, save_grid

log = logging.getLogger("training")


def pixel_loss(kind: str, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if kind == "charbonnier":
        return torch.sqrt((pred - target) ** 2 + 1e-6).mean()
    return F.l1_loss(pred, target)


def torch_upscaler(model: nn.Module, device: torch.device, amp: bool = False) -> Upscaler:
    @torch.no_grad()
    def run(lr: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(lr.transpose(2, 0, 1))).to(device).float().div(255).unsqueeze(0)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
            y = model(x)
        y = y.float().clamp(0, 1).mul(255).round().byte()
        return y[0].permute(1, 2, 0).cpu().numpy()

    return run


class EMA:
    """Exponential moving average of a model's parameters (buffers copied as-is)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for ema_p, p in zip(self.model.parameters(), model.parameters(), strict=True):
            ema_p.lerp_(p.detach(), 1 - self.decay)
        for ema_b, b in zip(self.model.buffers(), model.buffers(), strict=True):
            ema_b.copy_(b)


def cosine_lr(cfg: TrainConfig, progress: float) -> float:
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * min(progress, 1.0)))


def overfitting(history: list[dict[str, Any]], window: int = 3) -> bool:
    """Train PSNR rising while validation PSNR falls over the last validations."""
    if len(history) <= window:
        return False
    old, new = history[-window - 1], history[-1]
    return new["train_psnr"] - old["train_psnr"] > 0.1 and old["val_psnr"] - new["val_psnr"] > 0.05


def train(
    cfg: TrainConfig,
    data_root: Path,
    out_dir: Path,
    device: str = "cpu",
    resume: Path | None = None,
    command: str = "",
    progress: bool = True,
) -> Path:
    """Train, keep the best EMA weights by validation PSNR; returns ``best.pt``."""
    torch.manual_seed(cfg.seed)
    dev = torch.device(device)
    torch.backends.cudnn.benchmark = dev.type == "cuda"  # fixed patch size: let cuDNN pick kernels
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))

    arch_args = archs.full_args(cfg.arch, cfg.arch_args, cfg.scale)
    model = archs.build(cfg.arch, arch_args).to(dev)
    ema = EMA(model, cfg.ema_decay)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.betas)

    sampler = PatchSampler(
        make_sr_pairs(list_images([data_root / s for s in cfg.train_sets]), cfg.scale),
        cfg.scale,
        cfg.lr_patch,
        dev,
        cfg.seed,
    )
    val_pairs: dict[str, list[SRPair]] = {
        s: make_sr_pairs(list_images([data_root / s]), cfg.scale) for s in cfg.val_sets
    }
    base = evaluate_sr({"bicubic": bicubic(cfg.scale)}, val_pairs, cfg.scale, progress=False)
    baseline_psnr = float(np.mean([r["bicubic"]["psnr"] for r in base["results"].values()]))
    log.info(
        "%d training images, validation on %s (bicubic %.3f dB), %s params on %s",
        len(sampler),
        cfg.val_sets,
        baseline_psnr,
        f"{archs.count_params(model):,}",
        dev,
    )

    step, history, best = 0, [], {"step": 0, "val_psnr": -1.0}
    elapsed_before = 0.0
    if resume is not None:
        state = checkpoint.load(resume)
        model.load_state_dict(state["params"])
        ema.model.load_state_dict(state["params_ema"])
        opt.load_state_dict(state["optimizer"])
        step, history, best = state["step"], state["history"], state["best"]
        elapsed_before = history[-1]["elapsed"] if history else 0.0
        log.info("resumed from %s at step %d", resume, step)

    def state(with_optimizer: bool) -> dict[str, Any]:
        s = {
            "config": cfg.to_dict(),
            "arch": {"name": cfg.arch, "args": arch_args},
            "params": model.state_dict(),
            "params_ema": ema.model.state_dict(),
            "step": step,
            "history": history,
            "best": best,
            "command": command,
            "device": str(dev),
            "torch": str(torch.__version__),
        }
        return {**s, "optimizer": opt.state_dict()} if with_optimizer else s

    budget = cfg.max_minutes * 60
    start = time.monotonic() - elapsed_before
    losses: list[float] = []
    train_psnrs: list[float] = []
    stale = 0
    bar = tqdm(total=cfg.steps, initial=step, disable=not progress, desc=cfg.name, dynamic_ncols=True)
    model.train()
    while True:
        elapsed = time.monotonic() - start
        frac = max(step / cfg.steps, elapsed / budget if budget else 0.0)
        if frac >= 1.0:
            break
        for group in opt.param_groups:
            group["lr"] = cosine_lr(cfg, frac)
        lr_batch, hr_batch = sampler.sample(cfg.batch_size)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cfg.amp and dev.type == "cuda"):
            pred = model(lr_batch)
        pred = pred.float()
        loss = pixel_loss(cfg.loss, pred, hr_batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema.update(model)
        step += 1
        bar.update(1)
        losses.append(loss.item())
        with torch.no_grad():
            mse = F.mse_loss(pred.clamp(0, 1), hr_batch).item()
        train_psnrs.append(10 * math.log10(1 / max(mse, 1e-12)))

        if step % cfg.val_every == 0:
            report = evaluate_sr(
                {"model": torch_upscaler(ema.model, dev, cfg.amp)}, val_pairs, cfg.scale, progress=False
            )
            val_psnr = float(np.mean([r["model"]["psnr"] for r in report["results"].values()]))
            history.append(
                {
                    "step": step,
                    "loss": float(np.mean(losses)),
                    "train_psnr": float(np.mean(train_psnrs)),
                    "val_psnr": val_psnr,
                    "lr": opt.param_groups[0]["lr"],
                    "elapsed": time.monotonic() - start,
                }
            )
            losses.clear()
            train_psnrs.clear()
            bar.set_postfix(loss=f"{history[-1]['loss']:.4f}", val=f"{val_psnr:.3f}", best=f"{best['val_psnr']:.3f}")
            log.info(
                "%s step %d  loss %.4f  val %.3f dB (bicubic %.3f)  lr %.2e  %.1f it/s",
                cfg.name,
                step,
                history[-1]["loss"],
                val_psnr,
                baseline_psnr,
                history[-1]["lr"],
                step / history[-1]["elapsed"],
            )
            if val_psnr > best["val_psnr"]:
                best = {"step": step, "val_psnr": val_psnr}
                stale = 0
                checkpoint.save(out_dir / "best.pt", state(with_optimizer=False))
            else:
                stale += 1
            checkpoint.save(out_dir / "last.pt", state(with_optimizer=True))
            save_curves(history, out_dir / "curves.png", baseline_psnr)
            save_samples(ema.model, dev, cfg, val_pairs, out_dir / "samples" / f"step{step:07d}.png")
            save_samples(ema.model, dev, cfg, val_pairs, out_dir / "samples.png")
            (out_dir / "history.json").write_text(json.dumps({"history": history, "best": best}, indent=1))
            if overfitting(history):
                log.warning(
                    "train PSNR keeps rising while validation PSNR falls: the model is overfitting; "
                    "add data or augmentation, or stop earlier"
                )
            if cfg.patience and stale >= cfg.patience:
                log.info("early stop at step %d: no validation gain for %d validations", step, stale)
                break
    bar.close()
    if not (out_dir / "best.pt").exists():  # budget ended before the first validation
        checkpoint.save(out_dir / "best.pt", state(with_optimizer=False))
    log.info("best validation PSNR %.3f dB at step %d (bicubic %.3f dB)", best["val_psnr"], best["step"], baseline_psnr)
    return out_dir / "best.pt"


def save_samples(
    model: nn.Module,
    dev: torch.device,
    cfg: TrainConfig,
    val_pairs: dict[str, list[SRPair]],
    path: Path,
    count: int = 3,
    size: int = 160,
) -> None:
    """bicubic | model | ground truth, centre crops of the first validation images."""
    run = torch_upscaler(model, dev, cfg.amp)
    up = bicubic(cfg.scale)
    rows = []
    for pair in [p for pairs in val_pairs.values() for p in pairs][:count]:
        rows.append([centre_crop(x, size) for x in (up(pair.lr), run(pair.lr), pair.hr)])
    save_grid(rows, ["bicubic", "model", "ground truth"], path)
