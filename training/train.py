"""The training loop, for both of ESRGAN's stages.

- ``stage = "psnr"``: pixel loss (L1 / Charbonnier) only. The best EMA weights by
  validation PSNR are kept, with early stopping after ``patience`` validations
  without gain.
- ``stage = "gan"``: start from a PSNR-stage checkpoint (``init_from``); the generator
  loss adds the perceptual and adversarial terms and a discriminator trains beside
  it. PSNR is logged but does not pick the checkpoint (GANs trade PSNR for detail):
  ``best.pt`` is the latest validation.
- ``stage = "perceptual"``: pixel and perceptual terms, no discriminator, the best
  validation kept as in the PSNR stage: for distillation (``teacher``), where the
  targets already carry the texture a GAN decided on.

Both: Adam or RMSprop, a cosine learning rate over a step or time budget, EMA of the
generator (``params_ema``), resume from ``last.pt``, curves and sample grids as PNG
at each validation, and a warning when train and validation PSNR diverge.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from training import archs, sources
from training.archs.rrdb import keep_blocks
from training.checkpoint import ArchSpec, Checkpoint
from training.config import TrainConfig
from training.evaluate import Upscaler
from training.from_onnx import load_from_card
from training.loop import EMA, Budget, cosine_lr, make_optimizer, start_run, use_bf16
from training.losses import PerceptualLoss, discriminator_loss, generator_loss, gradient_penalty, pixel_loss
from training.plots import save_curves, save_grid

log = logging.getLogger("training")


def torch_upscaler(model: nn.Module, device: torch.device, multiple: int = 1) -> Upscaler:
    """uint8 LR -> uint8 SR through a PyTorch model (for evaluating checkpoints)."""
    run = sources.run_model(model, device, multiple)
    return lambda lr: sources.to_uint8(run(sources.to_tensor(lr, device)))


def overfitting(history: list[dict[str, Any]], window: int = 3) -> bool:
    """Train PSNR rising while validation PSNR falls over the last validations."""
    if len(history) <= window:
        return False
    old, new = history[-window - 1], history[-1]
    return bool(new["train_psnr"] - old["train_psnr"] > 0.1 and old["val_psnr"] - new["val_psnr"] > 0.05)


def perceptual_term(cfg: TrainConfig, device: torch.device) -> PerceptualLoss | None:
    """The perceptual loss of the GAN and perceptual stages (None in the PSNR stage, or at weight 0)."""
    if cfg.stage == "psnr" or not cfg.perceptual_weight:
        return None
    weights = Path(cfg.perceptual_weights) if cfg.perceptual_weights else None
    return PerceptualLoss(cfg.perceptual_layers, weights, cfg.perceptual_fallback, cfg.perceptual_net).to(device)


class Adversary:
    """The GAN stage's discriminator, its optimiser and the generator's adversarial loss."""

    def __init__(self, cfg: TrainConfig, device: torch.device) -> None:
        self.cfg = cfg
        args = dict(cfg.discriminator_args)
        if cfg.discriminator == "VGGStyleDiscriminator":
            args.setdefault("input_size", cfg.hr_patch or cfg.lr_patch * cfg.scale)
        self.disc = archs.build_discriminator(cfg.discriminator, args).to(device)
        self.opt = make_optimizer(cfg.optimizer, self.disc.parameters(), cfg.d_lr, cfg.betas)

    def generator_term(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.disc.requires_grad_(False)
        fake = self.disc(pred)
        real = self.disc(target) if self.cfg.gan_type == "ragan" else fake
        term = self.cfg.gan_weight * generator_loss(self.cfg.gan_type, real, fake)
        self.disc.requires_grad_(True)
        return term

    def step(self, pred: torch.Tensor, target: torch.Tensor) -> float:
        real, fake = self.disc(target), self.disc(pred.detach())
        loss = discriminator_loss(self.cfg.gan_type, real, fake)
        if self.cfg.gan_type == "wgan-gp":
            loss = loss + self.cfg.gp_weight * gradient_penalty(self.disc, target, pred)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return float(loss.item())


def initial_weights(path: Path) -> dict[str, torch.Tensor]:
    """The generator weights ``init_from`` names: a checkpoint (its EMA weights where it has
    them), or a model card, whose shipped ONNX weights are read back (a fine-tune of what
    ships, when the run that made it is gone)."""
    if path.suffix == ".json":
        return load_from_card(path).state_dict()
    start = Checkpoint.load(path)
    return start.params_ema if start.params_ema is not None else start.params


class SRRun:
    """The model, its EMA, optimiser, adversary, data and validator of one run, and what
    it has done so far (step, history, best)."""

    def __init__(self, cfg: TrainConfig, data_root: Path, dev: torch.device, command: str, run_dir: Path) -> None:
        self.cfg, self.dev, self.command = cfg, dev, command
        self.amp = use_bf16(dev, cfg.amp)
        self.arch = ArchSpec(cfg.arch, archs.full_args(cfg.arch, cfg.arch_args, cfg.scale))
        self.model = self.arch.build().to(dev)
        if cfg.init_from:
            start = initial_weights(Path(cfg.init_from))
            self.model.load_state_dict(keep_blocks(start, cfg.init_blocks) if cfg.init_blocks else start)
            log.info("generator initialised from %s %s", cfg.init_from, cfg.init_blocks or "")
        self.layout = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.model.to(memory_format=self.layout)
        self.ema = EMA(self.model, cfg.ema_decay)
        self.opt = make_optimizer(cfg.optimizer, self.model.parameters(), cfg.lr, cfg.betas)
        self.perceptual = perceptual_term(cfg, dev)
        self.adversary = Adversary(cfg, dev) if cfg.stage == "gan" else None
        self.source, self.validator = sources.build(cfg, data_root, dev, self.arch.size_multiple, run_dir)
        self.baseline = self.validator.baseline()
        self.step, self.elapsed_before = 0, 0.0
        self.history: list[dict[str, float]] = []
        self.best: dict[str, float] = {"step": 0, "val_psnr": -1.0}

    def resume(self, path: Path) -> None:
        saved = Checkpoint.load(path)
        self.model.load_state_dict(saved.params)
        self.ema.model.load_state_dict(saved.params_ema or saved.params)
        if saved.optimizer is not None:
            self.opt.load_state_dict(saved.optimizer)
        if self.adversary is not None and saved.discriminator is not None and saved.optimizer_d is not None:
            self.adversary.disc.load_state_dict(saved.discriminator)
            self.adversary.opt.load_state_dict(saved.optimizer_d)
        self.step, self.history, self.best = saved.step, saved.history, saved.best
        self.elapsed_before = saved.elapsed
        log.info("resumed from %s at step %d", path, self.step)

    def checkpoint(self, with_optimizer: bool) -> Checkpoint:
        adversary = self.adversary
        return Checkpoint(
            config=self.cfg.to_dict(),
            arch=self.arch,
            params=self.model.state_dict(),
            params_ema=self.ema.model.state_dict(),
            step=self.step,
            history=self.history,
            best=self.best,
            command=self.command,
            device=str(self.dev),
            perceptual=self.perceptual.source if self.perceptual else "none",
            optimizer=self.opt.state_dict() if with_optimizer else None,
            discriminator=adversary.disc.state_dict() if with_optimizer and adversary else None,
            optimizer_d=adversary.opt.state_dict() if with_optimizer and adversary else None,
        )

    def set_lr(self, progress: float) -> None:
        for group in self.opt.param_groups:
            group["lr"] = cosine_lr(self.cfg.lr, self.cfg.lr_min, progress)
        if self.adversary is not None:
            for group in self.adversary.opt.param_groups:
                group["lr"] = cosine_lr(self.cfg.d_lr, self.cfg.lr_min, progress)

    def train_step(self) -> dict[str, float]:
        """One batch: generator terms, its update and EMA, the discriminator's update."""
        cfg, dev = self.cfg, self.dev
        inp, target = self.source.sample(cfg.batch_size)
        inp = inp.contiguous(memory_format=self.layout)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=self.amp):
            pred = self.model(inp)
        pred = pred.float()
        terms = {"pixel": cfg.pixel_weight * pixel_loss(cfg.loss, pred, target)}
        if self.perceptual is not None:
            # VGG features cost ~10x a compact generator's step: perceptual_batch can limit them
            k = cfg.perceptual_batch or len(pred)
            terms["perceptual"] = cfg.perceptual_weight * self.perceptual(pred[:k], target[:k])
        if self.adversary is not None:
            terms["gan"] = self.adversary.generator_term(pred, target)
        loss = sum(terms.values(), torch.zeros((), device=dev))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.ema.update(self.model)
        out = {"loss": float(loss.item()), **{k: float(v.item()) for k, v in terms.items()}}
        if self.adversary is not None:
            out["d_loss"] = self.adversary.step(pred, target)
        with torch.no_grad():
            mse = F.mse_loss(pred.clamp(0, 1), target).item()
        out["train_psnr"] = 10 * math.log10(1 / max(mse, 1e-12))
        self.step += 1
        return out

    def validate(self, sums: dict[str, list[float]], elapsed: float) -> dict[str, float]:
        record = {
            "step": self.step,
            **{k: float(np.mean(v)) for k, v in sums.items()},
            "val_psnr": self.validator.score(self.ema.model),
            "lr": self.opt.param_groups[0]["lr"],
            "elapsed": elapsed,
        }
        self.history.append(record)
        log.info(
            "%s step %d  loss %.4f  val %.3f dB (%s %.3f)  lr %.2e  %.1f it/s",
            self.cfg.name,
            self.step,
            record["loss"],
            record["val_psnr"],
            self.validator.baseline_name,
            self.baseline,
            record["lr"],
            self.step / elapsed,
        )
        return record

    def write(self, out_dir: Path, improved: bool) -> None:
        """Checkpoints, curves, sample grids and history at a validation."""
        if improved or self.cfg.stage == "gan":
            self.best = {"step": self.step, "val_psnr": self.history[-1]["val_psnr"]}
            self.checkpoint(with_optimizer=False).save(out_dir / "best.pt")
        self.checkpoint(with_optimizer=True).save(out_dir / "last.pt")
        save_curves(self.history, out_dir / "curves.png", self.baseline, self.validator.baseline_name)
        rows, titles = self.validator.samples(self.ema.model)
        save_grid(rows, titles, out_dir / "samples" / f"step{self.step:07d}.png")
        save_grid(rows, titles, out_dir / "samples.png")
        (out_dir / "history.json").write_text(json.dumps({"history": self.history, "best": self.best}, indent=1))


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
    dev = start_run(cfg.to_dict(), out_dir, device, cfg.seed, 0)
    run = SRRun(cfg, data_root, dev, command, out_dir)
    log.info(
        "%s: %s params on %s; validation baseline (%s) %.3f dB",
        cfg.name,
        f"{archs.count_params(run.model):,}",
        dev,
        run.validator.baseline_name,
        run.baseline,
    )
    if resume is not None:
        run.resume(resume)
    budget = Budget(cfg.steps, cfg.max_minutes, run.elapsed_before)
    sums: dict[str, list[float]] = {}
    stale = 0
    bar = tqdm(total=cfg.steps, initial=run.step, disable=None if progress else True, desc=cfg.name, dynamic_ncols=True)
    run.model.train()
    while (frac := budget.fraction(run.step)) < 1.0:
        run.set_lr(frac)
        for name, value in run.train_step().items():
            sums.setdefault(name, []).append(value)
        bar.update(1)
        if run.step % cfg.val_every:
            continue
        record = run.validate(sums, budget.elapsed)
        sums.clear()
        bar.set_postfix(loss=f"{record['loss']:.4f}", val=f"{record['val_psnr']:.3f}")
        improved = record["val_psnr"] > run.best["val_psnr"]
        run.write(out_dir, improved)
        stale = 0 if improved else stale + 1
        if overfitting(run.history):
            log.warning(
                "train PSNR keeps rising while validation PSNR falls: the model is overfitting; "
                "add data or augmentation, or stop earlier"
            )
        if cfg.patience and cfg.stage != "gan" and stale >= cfg.patience:
            log.info("early stop at step %d: no validation gain for %d validations", run.step, stale)
            break
    bar.close()
    if not (out_dir / "best.pt").exists():  # budget ended before the first validation
        run.checkpoint(with_optimizer=False).save(out_dir / "best.pt")
    log.info(
        "%s: best validation PSNR %.3f dB at step %d (%s %.3f dB)",
        cfg.name,
        run.best["val_psnr"],
        run.best["step"],
        run.validator.baseline_name,
        run.baseline,
    )
    return out_dir / "best.pt"
