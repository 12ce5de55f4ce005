"""The training loop, for both of ESRGAN's stages.

- ``stage = "psnr"``: pixel loss (L1 / Charbonnier) only. The best EMA weights by
  validation PSNR are kept, with early stopping after ``patience`` validations
  without gain.
- ``stage = "gan"``: start from a PSNR-stage checkpoint (``init_from``); the generator
  loss adds the perceptual and adversarial terms and a discriminator trains beside
  it. PSNR is logged but does not pick the checkpoint (GANs trade PSNR for detail):
  ``best.pt`` is the latest validation.

Both: Adam or RMSprop, a cosine learning rate over a step or time budget, EMA of the
generator (``params_ema``), resume from ``last.pt``, curves and sample grids as PNG
at each validation, and a warning when train and validation PSNR diverge.
"""

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

from training import archs, checkpoint, sources
from training.config import TrainConfig
from training.evaluate import Upscaler
from training.losses import PerceptualLoss, discriminator_loss, generator_loss, gradient_penalty, pixel_loss
from training.plots import save_curves, save_grid

log = logging.getLogger("training")


def torch_upscaler(model: nn.Module, device: torch.device, multiple: int = 1) -> Upscaler:
    """uint8 LR -> uint8 SR through a PyTorch model (for evaluating checkpoints)."""
    run = sources.run_model(model, device, multiple)
    return lambda lr: sources.to_uint8(run(sources.to_tensor(lr, device)))


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


def cosine_lr(base: float, minimum: float, progress: float) -> float:
    return minimum + 0.5 * (base - minimum) * (1 + math.cos(math.pi * min(progress, 1.0)))


def overfitting(history: list[dict[str, Any]], window: int = 3) -> bool:
    """Train PSNR rising while validation PSNR falls over the last validations."""
    if len(history) <= window:
        return False
    old, new = history[-window - 1], history[-1]
    return bool(new["train_psnr"] - old["train_psnr"] > 0.1 and old["val_psnr"] - new["val_psnr"] > 0.05)


def make_optimizer(kind: str, params: Any, lr: float, betas: tuple[float, float]) -> torch.optim.Optimizer:
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    return torch.optim.Adam(params, lr=lr, betas=betas)


class Adversary:
    """The GAN stage's discriminator, its optimiser and the generator's extra losses."""

    def __init__(self, cfg: TrainConfig, device: torch.device) -> None:
        self.cfg = cfg
        args = dict(cfg.discriminator_args)
        if cfg.discriminator == "VGGStyleDiscriminator":
            args.setdefault("input_size", cfg.hr_patch or cfg.lr_patch * cfg.scale)
        self.disc = archs.build_discriminator(cfg.discriminator, args).to(device)
        self.opt = make_optimizer(cfg.optimizer, self.disc.parameters(), cfg.d_lr, cfg.betas)
        weights = Path(cfg.perceptual_weights) if cfg.perceptual_weights else None
        self.perceptual = (
            PerceptualLoss(cfg.perceptual_layers, weights, cfg.perceptual_fallback).to(device)
            if cfg.perceptual_weight
            else None
        )
        self.perceptual_source = self.perceptual.source if self.perceptual else "none"

    def generator_terms(self, pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        terms: dict[str, torch.Tensor] = {}
        if self.perceptual is not None:
            terms["perceptual"] = self.cfg.perceptual_weight * self.perceptual(pred, target)
        self.disc.requires_grad_(False)
        fake = self.disc(pred)
        real = self.disc(target) if self.cfg.gan_type == "ragan" else fake
        terms["gan"] = self.cfg.gan_weight * generator_loss(self.cfg.gan_type, real, fake)
        self.disc.requires_grad_(True)
        return terms

    def step(self, pred: torch.Tensor, target: torch.Tensor) -> float:
        real, fake = self.disc(target), self.disc(pred.detach())
        loss = discriminator_loss(self.cfg.gan_type, real, fake)
        if self.cfg.gan_type == "wgan-gp":
            loss = loss + self.cfg.gp_weight * gradient_penalty(self.disc, target, pred)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return float(loss.item())


def train(
    cfg: TrainConfig,
    data_root: Path,
    out_dir: Path,
    device: str = "cpu",
    resume: Path | None = None,
    command: str = "",
    progress: bool = True,
) -> Path:
    """Train; returns ``best.pt`` (see the module docstring for what "best" means)."""
    torch.manual_seed(cfg.seed)
    dev = torch.device(device)
    torch.backends.cudnn.benchmark = dev.type == "cuda"  # fixed patch size: let cuDNN pick kernels
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))

    arch_args = archs.full_args(cfg.arch, cfg.arch_args, cfg.scale)
    model = archs.build(cfg.arch, arch_args).to(dev)
    if cfg.init_from:
        start = checkpoint.load(Path(cfg.init_from))
        model.load_state_dict(start["params_ema"] if "params_ema" in start else start["params"])
        log.info("generator initialised from %s", cfg.init_from)
    ema = EMA(model, cfg.ema_decay)
    opt = make_optimizer(cfg.optimizer, model.parameters(), cfg.lr, cfg.betas)
    adversary = Adversary(cfg, dev) if cfg.stage == "gan" else None

    source, validator = sources.build(cfg, data_root, dev, archs.size_multiple(cfg.arch, arch_args))
    baseline = validator.baseline()
    log.info(
        "%s: %s params on %s; validation baseline (%s) %.3f dB",
        cfg.name,
        f"{archs.count_params(model):,}",
        dev,
        validator.baseline_name,
        baseline,
    )

    step, history, best = 0, [], {"step": 0, "val_psnr": -1.0}
    elapsed_before = 0.0
    if resume is not None:
        state = checkpoint.load(resume)
        model.load_state_dict(state["params"])
        ema.model.load_state_dict(state["params_ema"])
        opt.load_state_dict(state["optimizer"])
        if adversary is not None and "discriminator" in state:
            adversary.disc.load_state_dict(state["discriminator"])
            adversary.opt.load_state_dict(state["optimizer_d"])
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
            "perceptual": adversary.perceptual_source if adversary else "none",
        }
        if with_optimizer:
            s["optimizer"] = opt.state_dict()
            if adversary is not None:
                s["discriminator"] = adversary.disc.state_dict()
                s["optimizer_d"] = adversary.opt.state_dict()
        return s

    budget = cfg.max_minutes * 60
    clock = time.monotonic() - elapsed_before
    sums: dict[str, list[float]] = {}
    stale = 0
    bar = tqdm(total=cfg.steps, initial=step, disable=None if progress else True, desc=cfg.name, dynamic_ncols=True)
    model.train()
    while True:
        elapsed = time.monotonic() - clock
        frac = max(step / cfg.steps, elapsed / budget if budget else 0.0)
        if frac >= 1.0:
            break
        for group in opt.param_groups:
            group["lr"] = cosine_lr(cfg.lr, cfg.lr_min, frac)
        if adversary is not None:
            for group in adversary.opt.param_groups:
                group["lr"] = cosine_lr(cfg.d_lr, cfg.lr_min, frac)

        inp, target = source.sample(cfg.batch_size)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cfg.amp and dev.type == "cuda"):
            pred = model(inp)
        pred = pred.float()
        terms = {"pixel": cfg.pixel_weight * pixel_loss(cfg.loss, pred, target)}
        if adversary is not None:
            terms.update(adversary.generator_terms(pred, target))
        loss = sum(terms.values(), torch.zeros((), device=dev))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema.update(model)
        if adversary is not None:
            sums.setdefault("d_loss", []).append(adversary.step(pred, target))
        step += 1
        bar.update(1)
        sums.setdefault("loss", []).append(float(loss.item()))
        for name, value in terms.items():
            sums.setdefault(name, []).append(float(value.item()))
        with torch.no_grad():
            mse = F.mse_loss(pred.clamp(0, 1), target).item()
        sums.setdefault("train_psnr", []).append(10 * math.log10(1 / max(mse, 1e-12)))

        if step % cfg.val_every == 0:
            val_psnr = validator.score(ema.model)
            record = {
                "step": step,
                **{k: float(np.mean(v)) for k, v in sums.items()},
                "val_psnr": val_psnr,
                "lr": opt.param_groups[0]["lr"],
                "elapsed": time.monotonic() - clock,
            }
            history.append(record)
            sums.clear()
            bar.set_postfix(loss=f"{record['loss']:.4f}", val=f"{val_psnr:.3f}")
            log.info(
                "%s step %d  loss %.4f  val %.3f dB (%s %.3f)  lr %.2e  %.1f it/s",
                cfg.name,
                step,
                record["loss"],
                val_psnr,
                validator.baseline_name,
                baseline,
                record["lr"],
                step / record["elapsed"],
            )
            improved = val_psnr > best["val_psnr"]
            if improved or cfg.stage == "gan":
                best = {"step": step, "val_psnr": val_psnr}
                checkpoint.save(out_dir / "best.pt", state(with_optimizer=False))
            stale = 0 if improved else stale + 1
            checkpoint.save(out_dir / "last.pt", state(with_optimizer=True))
            save_curves(history, out_dir / "curves.png", baseline, validator.baseline_name)
            rows, titles = validator.samples(ema.model)
            save_grid(rows, titles, out_dir / "samples" / f"step{step:07d}.png")
            save_grid(rows, titles, out_dir / "samples.png")
            (out_dir / "history.json").write_text(json.dumps({"history": history, "best": best}, indent=1))
            if overfitting(history):
                log.warning(
                    "train PSNR keeps rising while validation PSNR falls: the model is overfitting; "
                    "add data or augmentation, or stop earlier"
                )
            if cfg.patience and cfg.stage == "psnr" and stale >= cfg.patience:
                log.info("early stop at step %d: no validation gain for %d validations", step, stale)
                break
    bar.close()
    if not (out_dir / "best.pt").exists():  # budget ended before the first validation
        checkpoint.save(out_dir / "best.pt", state(with_optimizer=False))
    log.info(
        "%s: best validation PSNR %.3f dB at step %d (%s %.3f dB)",
        cfg.name,
        best["val_psnr"],
        best["step"],
        validator.baseline_name,
        baseline,
    )
    return out_dir / "best.pt"
