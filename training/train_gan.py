"""The GAN training loop (``python -m training train-gan``).

Per generator step: ``d_steps`` discriminator steps on a real batch and a generated
one, then one generator step; the generator's EMA is what ships. Options, all from
``GanConfig``:

- losses ``bce`` (non-saturating), ``lsgan``, ``wgan-gp`` (with its gradient penalty)
  and ``hinge``; spectral norm in D; R1 on reals; consistency regularisation (D's
  logits for a real image and its flipped/translated copy are pulled together);
- DiffAugment on real AND generated images in both steps (``diffaugment``);
- progressive growing: resolution 4·2^level, each new block faded in over the first
  half of its ``stage_steps``;
- transfer: ``init_from`` another train-gan checkpoint, the first ``freeze_d``
  discriminator blocks (input side) frozen (FreezeD);
- Adam or RMSprop; a time budget; resume from ``last.pt``.

Every ``sample_every`` steps: a grid of the EMA generator on fixed latents
(``samples.png``, and a frame of ``progress.gif``), loss curves, a diversity check that
warns of mode collapse, and checkpoints.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from tqdm import tqdm

from training.archs.gan import Discriminator
from training.checkpoint import ArchSpec, Checkpoint
from training.config import GanConfig
from training.diffaugment import diff_augment, translation
from training.gan_data import RealSet, load_real
from training.loop import EMA, Budget, start_run
from training.losses import discriminator_loss, generator_loss, gradient_penalty
from training.plots import save_gan_curves

log = logging.getLogger("training")
LOSS_NAMES = {"bce": "vanilla", "lsgan": "lsgan", "wgan-gp": "wgan-gp", "hinge": "hinge"}
SAMPLES = 64  # fixed latents shown at every interval
BLIND_D = 0.01  # D's logits over a real + generated batch spread less than this: D answers every image alike


def generator_spec(cfg: GanConfig) -> ArchSpec:
    args = {
        "resolution": cfg.resolution,
        "channels": cfg.channels,
        "latent": cfg.latent,
        "classes": len(cfg.classes),
        "width": cfg.g_width,
        "min_width": cfg.min_width,
    }
    if cfg.equalized_lr:  # only when on, so the specs of earlier checkpoints still match
        args["equalized"] = True
    return ArchSpec("Generator", args)


def build_discriminator(cfg: GanConfig) -> Discriminator:
    return Discriminator(
        cfg.resolution, cfg.channels, len(cfg.classes), cfg.d_width, cfg.min_width, cfg.spectral_norm, cfg.equalized_lr
    )


def stage_at(cfg: GanConfig, step: int) -> tuple[int, int]:
    """(growth stage, steps into it) of a progressive run at a generator step."""
    stage = min(step // cfg.stage_steps, len(cfg.progressive) - 1)
    return stage, step - stage * cfg.stage_steps


def schedule(cfg: GanConfig, step: int, levels: int) -> tuple[int, float]:
    """(level, fade-in alpha) at a generator step."""
    if not cfg.progressive:
        return levels, 1.0
    first = levels - (len(cfg.progressive) - 1)
    stage, into = stage_at(cfg, step)
    alpha = 1.0 if stage == 0 else min(1.0, into / max(1, cfg.stage_steps // 2))
    return first + stage, alpha


def ema_decay(cfg: GanConfig, step: int) -> float:
    """The EMA's decay at a generator step: ``ema_decay``, except after each growth, when it
    ramps up again from 0.1 as (1 + s) / (10 + s), s steps into the new stage. The new
    layers' averages held their initial weights until the stage began, and at 0.999 the
    average of the 128-px layers was still a third their initial weights 1,000 steps in:
    measured on the faces, its images were purple (mean RGB 163/162/174) where the
    generator's own were the real images' colour (193/191/186 against 188/185/182)."""
    if not cfg.progressive:
        return cfg.ema_decay
    stage, into = stage_at(cfg, step)
    if stage == 0:
        return cfg.ema_decay
    return min(cfg.ema_decay, (1 + into) / (10 + into))


def diversity(images: torch.Tensor, labels: torch.Tensor | None = None) -> float:
    """Mean pairwise distance between images (flattened): low means the samples look alike.
    With labels, only pairs of one class count: a conditional generator that ignores its
    latent still draws ten different digits, and only within a class does that show."""
    flat = images.flatten(1)
    dist = torch.cdist(flat, flat, compute_mode="donot_use_mm_for_euclid_dist")  # exact: alike images give 0
    same = torch.ones_like(dist, dtype=torch.bool) if labels is None else labels[:, None] == labels[None, :]
    same.fill_diagonal_(False)
    return float(dist[same].mean()) if same.any() else 0.0


def to_grid(images: torch.Tensor, side: int) -> Image.Image:
    """(N, C, H, W) in [-1, 1] -> one picture of N tiles, each ``side`` pixels."""
    x = F.interpolate(images.detach().float(), size=(side, side), mode="nearest")
    x = ((x.clamp(-1, 1) + 1) * 127.5).round().byte().cpu().numpy()
    n, c = x.shape[:2]
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    grid = np.zeros((rows * side, cols * side, c), np.uint8)
    for i, tile in enumerate(x):
        r, k = divmod(i, cols)
        grid[r * side : (r + 1) * side, k * side : (k + 1) * side] = tile.transpose(1, 2, 0)
    return Image.fromarray(grid[..., 0] if c == 1 else grid)


class _Critic(nn.Module):
    """D at one level with fixed labels, as the gradient penalty calls it."""

    def __init__(self, d: Discriminator, labels: torch.Tensor | None, level: int, alpha: float) -> None:
        super().__init__()
        self.d, self.labels, self.level, self.alpha = d, labels, level, alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.d(x, self.labels, self.level, self.alpha)
        return out


class GanRun:
    """Everything that trains together, and one step of it."""

    def __init__(self, cfg: GanConfig, real: RealSet, device: torch.device) -> None:
        self.cfg, self.real, self.device = cfg, real, device
        self.g = generator_spec(cfg).build().to(device)
        self.d = build_discriminator(cfg).to(device)
        self.ema = EMA(self.g, cfg.ema_decay)
        self.opt_g = self._optimizer(self.g.parameters(), cfg.g_lr)
        self.opt_d = self._optimizer(self.d.parameters(), cfg.d_lr)
        self.loss = LOSS_NAMES[cfg.loss]
        self.rng = np.random.default_rng(cfg.seed)
        self.gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)
        self.flip = real.labels is None  # mirrored faces are faces; mirrored digits are not digits

    def _optimizer(self, params: object, lr: float) -> torch.optim.Optimizer:
        if self.cfg.optimizer == "rmsprop":
            return torch.optim.RMSprop(params, lr=lr)  # type: ignore[arg-type]
        return torch.optim.Adam(params, lr=lr, betas=self.cfg.betas)  # type: ignore[arg-type]

    def freeze_d(self, blocks: int) -> None:
        """FreezeD: the first ``blocks`` blocks of D (input side), with the layers that feed
        images into them, keep their (transferred) weights."""
        frozen = [*self.d.from_image[:blocks], *self.d.blocks[:blocks]]
        for module in frozen:
            module.requires_grad_(False)

    def latents(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        z = torch.randn(n, self.cfg.latent, generator=self.gen, device=self.device)
        classes = len(self.cfg.classes)
        y = torch.randint(0, classes, (n,), generator=self.gen, device=self.device) if classes else None
        return z, y

    def real_batch(self, level: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        index = self.rng.integers(0, len(self.real), self.cfg.batch_size)
        x, y = self.real.batch(index, self.device)
        if self.flip:
            mirror = torch.from_numpy(self.rng.random(len(index)) < 0.5).to(self.device)
            x = torch.where(mirror[:, None, None, None], x.flip(-1), x)
        size = 4 * 2**level
        if x.shape[-1] != size:
            x = F.adaptive_avg_pool2d(x, size)
        return x, y

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, self.cfg.diffaugment, self.gen) if self.cfg.diffaugment else x

    def step(self, level: int, alpha: float, decay: float | None = None) -> dict[str, float]:
        cfg = self.cfg
        terms: dict[str, float] = {}
        for _ in range(cfg.d_steps):
            real, y_real = self.real_batch(level)
            z, y_fake = self.latents(cfg.batch_size)
            with torch.no_grad():
                fake = self.g(z, y_fake, level, alpha)
            real_aug = self.augment(real)
            if cfg.r1_weight:
                real_aug = real_aug.detach().requires_grad_(True)
            d_real = self.d(real_aug, y_real, level, alpha)
            d_fake = self.d(self.augment(fake), y_fake, level, alpha)
            terms["d_spread"] = torch.cat([d_real, d_fake]).std().item()
            loss_d = discriminator_loss(self.loss, d_real, d_fake)
            if cfg.loss == "wgan-gp":
                critic = _Critic(self.d, y_real, level, alpha)
                loss_d = loss_d + cfg.gp_weight * gradient_penalty(critic, real, fake)
            if cfg.r1_weight:
                (grad,) = torch.autograd.grad(d_real.sum(), real_aug, create_graph=True)
                r1 = grad.pow(2).flatten(1).sum(1).mean()
                loss_d = loss_d + cfg.r1_weight / 2 * r1
                terms["r1"] = r1.item()
            if cfg.cr_weight:
                moved = translation(real.flip(-1) if self.flip else real, self.gen)
                cr = (self.d(self.augment(moved), y_real, level, alpha) - d_real).pow(2).mean()
                loss_d = loss_d + cfg.cr_weight * cr
                terms["cr"] = cr.item()
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
        z, y_fake = self.latents(cfg.batch_size)
        fake = self.g(z, y_fake, level, alpha)
        self.d.requires_grad_(False)
        d_fake = self.d(self.augment(fake), y_fake, level, alpha)
        self.d.requires_grad_(True)
        if cfg.freeze_d:
            self.freeze_d(cfg.freeze_d)
        loss_g = generator_loss(self.loss, d_fake, d_fake)  # real logits only matter for RaGAN, not offered here
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.ema.update(self.g, decay)
        terms.update(
            d_loss=loss_d.item(), g_loss=loss_g.item(), d_real=d_real.mean().item(), d_fake=d_fake.mean().item()
        )
        return terms


def train_gan(
    cfg: GanConfig,
    data_root: Path,
    out_dir: Path,
    device: str = "cpu",
    resume: Path | None = None,
    command: str = "",
    progress: bool = True,
) -> Path:
    """Train; returns ``best.pt`` (the latest interval: a GAN's losses do not rank its samples)."""
    dev = start_run(cfg.to_dict(), out_dir, device, cfg.seed, cfg.threads)
    real, held = load_real(data_root, cfg.data, cfg.holdout, cfg.resolution, cfg.channels)
    run = GanRun(cfg, real, dev)
    spec = generator_spec(cfg)
    ckpt = Checkpoint(config=cfg.to_dict(), arch=spec, params={}, command=command, device=str(dev))
    if cfg.init_from:
        start = Checkpoint.load(Path(cfg.init_from))
        run.g.load_state_dict(start.params)
        run.ema.model.load_state_dict(start.params_ema or start.params)
        if start.discriminator is not None:
            run.d.load_state_dict(start.discriminator)
        log.info("transfer from %s, first %d D blocks frozen", cfg.init_from, cfg.freeze_d)
    if cfg.freeze_d:
        run.freeze_d(cfg.freeze_d)
    if resume is not None:
        saved = Checkpoint.load(resume)
        run.g.load_state_dict(saved.params)
        run.ema.model.load_state_dict(saved.params_ema or saved.params)
        if saved.discriminator is not None:
            run.d.load_state_dict(saved.discriminator)
        if saved.optimizer is not None and saved.optimizer_d is not None:
            run.opt_g.load_state_dict(saved.optimizer)
            run.opt_d.load_state_dict(saved.optimizer_d)
        ckpt.step, ckpt.history, ckpt.best = saved.step, saved.history, saved.best
        log.info("resumed from %s at step %d", resume, ckpt.step)

    fixed_gen = torch.Generator(device=dev).manual_seed(cfg.seed + 99)
    fixed_z = torch.randn(SAMPLES, cfg.latent, generator=fixed_gen, device=dev)
    fixed_y = torch.arange(SAMPLES, device=dev) % len(cfg.classes) if cfg.classes else None
    held_x, held_y = held.batch(np.arange(min(SAMPLES, len(held))), dev)
    real_diversity = diversity(held_x, held_y if cfg.classes else None)
    frames: list[Image.Image] = []

    def save(path: Path, full: bool) -> None:
        ckpt.params = copy.deepcopy(run.g.state_dict())
        ckpt.params_ema = copy.deepcopy(run.ema.model.state_dict())
        ckpt.discriminator = run.d.state_dict() if full else None
        ckpt.optimizer = run.opt_g.state_dict() if full else None
        ckpt.optimizer_d = run.opt_d.state_dict() if full else None
        ckpt.save(path)

    log.info(
        "%s: G %s params, D %s params; %d training images, %d held out; on %s",
        cfg.name,
        f"{sum(p.numel() for p in run.g.parameters()):,}",
        f"{sum(p.numel() for p in run.d.parameters()):,}",
        len(real),
        len(held),
        dev,
    )
    budget = Budget(cfg.steps, cfg.max_minutes, ckpt.elapsed)
    sums: dict[str, list[float]] = {}
    bar = tqdm(total=cfg.steps, initial=ckpt.step, disable=None if progress else True, desc=cfg.name)
    while budget.fraction(ckpt.step) < 1.0:
        level, alpha = schedule(cfg, ckpt.step, run.g.levels)
        for key, value in run.step(level, alpha, ema_decay(cfg, ckpt.step)).items():
            sums.setdefault(key, []).append(value)
        ckpt.step += 1
        bar.update(1)
        if ckpt.step % cfg.sample_every == 0 or ckpt.step == cfg.steps:
            with torch.no_grad():
                samples = run.ema.model(fixed_z, fixed_y, level, alpha)
            spread = diversity(F.adaptive_avg_pool2d(samples, cfg.resolution), fixed_y) / max(real_diversity, 1e-8)
            record = {
                "step": ckpt.step,
                "level": level,
                "alpha": alpha,
                **{k: float(np.mean(v)) for k, v in sums.items()},
                "diversity_vs_real": spread,
                "elapsed": budget.elapsed,
            }
            sums.clear()
            ckpt.history.append(record)
            ckpt.best = {"step": ckpt.step}
            bar.set_postfix(d=f"{record['d_loss']:.3f}", g=f"{record['g_loss']:.3f}", div=f"{spread:.2f}")
            log.info(
                "%s step %d  %dpx  D %.4f  G %.4f  diversity %.2f of real's  %.2f s/step",
                cfg.name,
                ckpt.step,
                4 * 2**level,
                record["d_loss"],
                record["g_loss"],
                spread,
                record["elapsed"] / ckpt.step,
            )
            if spread < 0.3:
                log.warning(
                    "mode collapse? the fixed samples differ %.0f%% as much as real images do; "
                    "consider another loss, DiffAugment, or a lower learning rate",
                    100 * spread,
                )
            if record["d_spread"] < BLIND_D:
                log.warning(
                    "D has gone blind: its logits spread %.4f over real and generated images, so G learns "
                    "nothing from it; lower g_lr (e.g. 10x below d_lr) or raise d_steps",
                    record["d_spread"],
                )
            side = max(32, cfg.resolution // 2 if cfg.resolution > 64 else cfg.resolution)
            grid = to_grid(samples, side)
            grid.save(out_dir / "samples.png")
            (out_dir / "samples").mkdir(exist_ok=True)
            grid.save(out_dir / "samples" / f"step{ckpt.step:07d}.png")
            frames.append(grid.convert("RGB").resize((min(512, grid.width), min(512, grid.height))))
            frames[0].save(out_dir / "progress.gif", save_all=True, append_images=frames[1:], duration=400, loop=0)
            save_gan_curves(ckpt.history, out_dir / "curves.png", cfg.name)
            save(out_dir / "best.pt", full=False)
            save(out_dir / "last.pt", full=True)
            (out_dir / "history.json").write_text(json.dumps({"history": ckpt.history}, indent=1))
    bar.close()
    if not (out_dir / "best.pt").exists():
        save(out_dir / "best.pt", full=False)
    return out_dir / "best.pt"
