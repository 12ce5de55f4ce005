"""The style-transfer training loop: one painting (Johnson) or any style (AdaIN).

- ``method = "johnson"``: a TransformerNet learns the ``styles`` paintings, one
  conditional instance norm per painting and every convolution shared; each step
  trains the next painting in turn. Loss = content_weight x content (relu2_2) +
  style_weight x Gram style (relu1_2..relu4_3, the painting at ``style_size``) +
  tv_weight x total variation. Sharing is what makes the budget work: the
  convolutions learn to keep the content from every painting's steps.
- ``method = "adain"``: AdaINNet's decoder learns to invert AdaIN features. Style
  samples are painting crops (held-out paintings never) and, with
  ``photo_style_share``, photograph crops, so the decoder sees many statistics from a
  small set of paintings.

Both: Adam with a cosine learning rate over ``steps`` or ``max_minutes``; validation
every ``val_every`` steps on held-out content images (and, for AdaIN, held-out
paintings), which picks ``best.pt`` by the validation objective; ``last.pt`` for
``--resume``; curves and a sample grid as PNG at each validation.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from training.archs.style import AdaINNet, ConditionalInstanceNorm, adain, join_styles
from training.checkpoint import ArchSpec, Checkpoint
from training.config import StyleConfig
from training.data import list_images, load_rgb
from training.from_onnx import load_from_card
from training.loop import Budget, SpikeClip, cosine_lr, start_run, use_bf16
from training.plots import save_grid, save_loss_curves, square_thumb
from training.style_data import CropSampler, fit_longer_side, split_held_out, style_paths, to_batch, to_image
from training.style_losses import GRAM_CONTENT_WEIGHT, GRAM_STYLE_WEIGHT, AdaINLoss, GramStyleLoss, StyleTerms
from training.vgg import VGG16Features

log = logging.getLogger("training")
VAL_IMAGES = 6  # content images held out of training for validation


class Objective(Protocol):
    model: nn.Module
    arch: ArchSpec

    def trainable(self) -> list[nn.Parameter]: ...

    def param_groups(self) -> list[dict[str, Any]]: ...

    def terms(self, content: torch.Tensor) -> StyleTerms: ...

    def validate(self, content: list[np.ndarray]) -> tuple[dict[str, float], list[list[np.ndarray]], list[str]]: ...


def load_style(path: Path, side: int, device: torch.device) -> torch.Tensor:
    return to_batch([fit_longer_side(load_rgb(path), side)], device)


def gram_scores(
    model_fn: object, loss: GramStyleLoss, content: list[np.ndarray], device: torch.device
) -> tuple[float, float, list[np.ndarray]]:
    """Mean unweighted content and style loss of ``model_fn`` outputs, and the outputs."""
    contents, styles, outs = [], [], []
    with torch.no_grad():
        for img in content:
            x = to_batch([img], device)
            y = model_fn(x)  # type: ignore[operator]
            t = loss.terms(y.clamp(0, 1), loss.content_features(x))
            contents.append(float(t.content))
            styles.append(float(t.style))
            outs.append(to_image(y))
    return float(np.mean(contents)), float(np.mean(styles)), outs


class JohnsonObjective:
    def __init__(self, cfg: StyleConfig, vgg: VGG16Features, data_root: Path, device: torch.device) -> None:
        self.cfg, self.device = cfg, device
        self.arch = ArchSpec("TransformerNet", {"width": 32, "blocks": 5, **cfg.arch_args, "styles": len(cfg.styles)})
        self.model = self.arch.build().to(device)
        self.paintings = [load_style(data_root / s.image, cfg.style_size, device) for s in cfg.styles]
        self.losses = [GramStyleLoss(vgg, painting) for painting in self.paintings]
        self.turn = 0

    def trainable(self) -> list[nn.Parameter]:
        return list(self.model.parameters())

    def param_groups(self) -> list[dict[str, Any]]:
        """The per-painting scales and shifts learn ``style_lr_scale`` times faster: each gets
        one step in N, and they start equal, so at the shared rate the paintings would stay
        alike for most of a short run."""
        own = [p for m in self.model.modules() if isinstance(m, ConditionalInstanceNorm) for p in m.parameters()]
        mine = {id(p) for p in own}
        shared = [p for p in self.model.parameters() if id(p) not in mine]
        if not own:
            return [{"params": shared, "lr_scale": 1.0}]
        return [{"params": shared, "lr_scale": 1.0}, {"params": own, "lr_scale": self.cfg.style_lr_scale}]

    def terms(self, content: torch.Tensor) -> StyleTerms:
        k = self.turn % len(self.losses)
        self.turn += 1
        loss = self.losses[k]
        return loss.terms(self.model(content, k), loss.content_features(content))

    def validate(self, content: list[np.ndarray]) -> tuple[dict[str, float], list[list[np.ndarray]], list[str]]:
        """Per painting: the unweighted losses on held-out content; the mean weighted total picks best.pt."""
        self.model.eval()
        metrics: dict[str, float] = {}
        rows, contents, styles = [], [], []
        for k, (spec, loss) in enumerate(zip(self.cfg.styles, self.losses, strict=True)):
            c, s, outs = gram_scores(lambda x, k=k: self.model(x, k), loss, content, self.device)
            metrics[f"val_style_{spec.name}"] = s
            contents.append(c)
            styles.append(s)
            rows.append([square_thumb(to_image(self.paintings[k]), 160), *(square_thumb(o, 160) for o in outs[:3])])
        self.model.train()
        metrics["val_content"] = float(np.mean(contents))
        metrics["val_style"] = float(np.mean(styles))
        weighted = [
            self.cfg.content_weight * c + self.cfg.style_weight * s for c, s in zip(contents, styles, strict=True)
        ]
        metrics["val_total"] = float(np.mean(weighted))
        titles = ["painting", *(f"held-out photo {i + 1}" for i in range(min(3, len(content))))]
        return metrics, rows, titles


class AdaINObjective:
    def __init__(self, cfg: StyleConfig, vgg: VGG16Features, data_root: Path, device: torch.device) -> None:
        self.cfg, self.device = cfg, device
        self.arch = ArchSpec("AdaINNet", {})
        self.model = self.arch.build().to(device)
        encoder = VGG16Features.from_arrays(
            {f"features.{k}": v.cpu().numpy() for k, v in vgg.features.state_dict().items()}, AdaINNet.encoder_layer
        )
        self.model.encoder.load_state_dict(encoder.state_dict())
        self.loss = AdaINLoss(vgg, cfg.gram_weight)
        train_styles, held = style_paths(data_root, cfg.style_sets, cfg.held_out_styles)
        if not train_styles:
            raise ValueError("every painting is held out: nothing to train the AdaIN decoder on")
        self.paintings = CropSampler.from_paths(train_styles, cfg.crop, (1.0, 2.5), cfg.seed + 1)
        photos = list_images([data_root / s for s in cfg.content_sets])
        self.photos = CropSampler.from_paths(photos, cfg.crop, cfg.scale_range, cfg.seed + 2)
        self.rng = np.random.default_rng(cfg.seed + 3)
        self.held_out = [(p.stem, load_style(p, cfg.style_size, device)) for p in held]

    def trainable(self) -> list[nn.Parameter]:
        return list(self.model.decoder.parameters())

    def param_groups(self) -> list[dict[str, Any]]:
        return [{"params": self.trainable(), "lr_scale": 1.0}]

    def style_batch(self, n: int) -> torch.Tensor:
        picks = [
            self.photos.one() if self.rng.random() < self.cfg.photo_style_share else self.paintings.one()
            for _ in range(n)
        ]
        return to_batch(picks, self.device)

    def terms(self, content: torch.Tensor) -> StyleTerms:
        style = self.style_batch(content.shape[0])
        with torch.no_grad():
            target = adain(self.model.encode(content), self.model.encode(style))
        return self.loss.terms(self.model.decoder(target), target, style)

    def validate(self, content: list[np.ndarray]) -> tuple[dict[str, float], list[list[np.ndarray]], list[str]]:
        """Gram losses (the evaluation protocol) on held-out paintings and content."""
        self.model.eval()
        one = torch.ones(1, device=self.device)
        metrics: dict[str, float] = {}
        rows: list[list[np.ndarray]] = []
        styles, contents = [], []
        for name, style in self.held_out:
            loss = GramStyleLoss(self.loss.vgg, style)
            c, s, outs = gram_scores(lambda x, st=style: self.model(x, st, one), loss, content, self.device)
            metrics[f"val_style_{name}"] = s
            styles.append(s)
            contents.append(c)
            rows.append([square_thumb(content[0], 192), square_thumb(to_image(style), 192), square_thumb(outs[0], 192)])
        self.model.train()
        self.model.encoder.eval()
        metrics["val_content"] = float(np.mean(contents)) if contents else 0.0
        metrics["val_style"] = float(np.mean(styles)) if styles else 0.0
        metrics["val_total"] = GRAM_CONTENT_WEIGHT * metrics["val_content"] + GRAM_STYLE_WEIGHT * metrics["val_style"]
        return metrics, rows, ["content", "held-out style", "stylised"]


OBJECTIVES = {"johnson": JohnsonObjective, "adain": AdaINObjective}


def initial_state(cfg: StyleConfig, objective: Objective) -> dict[str, torch.Tensor]:
    """The weights ``init_from`` names: a train-style checkpoint, or shipped model cards
    (their ONNX weights read back, so a later run goes on from what ships when the run
    folder is gone). Named styles take one card per painting through a ``{name}``
    pattern, e.g. ``models/style-{name}.json``, and are joined into one network again."""
    if not cfg.init_from.endswith(".json"):
        start = Checkpoint.load(Path(cfg.init_from))
        if start.arch != objective.arch:
            raise ValueError(f"init_from {cfg.init_from} holds a {start.arch}, this run trains a {objective.arch}")
        return start.params
    if cfg.method == "adain":
        return load_from_card(Path(cfg.init_from)).state_dict()
    if "{name}" not in cfg.init_from:
        raise ValueError(
            f"init_from {cfg.init_from}: named styles start from one card per painting, "
            'given as a pattern such as "models/style-{name}.json"'
        )
    cards = [Path(cfg.init_from.format(name=s.name)) for s in cfg.styles]
    missing = [str(c) for c in cards if not c.exists()]
    if missing:
        raise ValueError(f"init_from: no card {missing}")
    return join_styles([load_from_card(c).state_dict() for c in cards], objective.model.state_dict())


def train_style(
    cfg: StyleConfig,
    data_root: Path,
    out_dir: Path,
    device: str = "cpu",
    resume: Path | None = None,
    command: str = "",
    progress: bool = True,
) -> Path:
    """Train; returns ``best.pt`` (lowest validation objective)."""
    dev = start_run(cfg.to_dict(), out_dir, device, cfg.seed, cfg.threads)

    content_paths, val_paths = split_held_out(
        list_images([data_root / s for s in cfg.content_sets]), VAL_IMAGES, cfg.seed
    )
    sampler = CropSampler.from_paths(content_paths, cfg.crop, cfg.scale_range, cfg.seed)
    val_content = [fit_longer_side(load_rgb(p), cfg.eval_size) for p in val_paths]
    val_content = [img[: img.shape[0] // 8 * 8, : img.shape[1] // 8 * 8] for img in val_content]
    vgg = VGG16Features.pretrained("relu4_3").to(dev)
    objective = OBJECTIVES[cfg.method](cfg, vgg, data_root, dev)
    model = objective.model
    if cfg.init_from:
        model.load_state_dict(initial_state(cfg, objective))
        log.info("initialised from %s", cfg.init_from)
    groups = objective.param_groups()
    lr_scales = [g.pop("lr_scale") for g in groups]  # kept apart: loading an optimizer state replaces the groups
    opt = torch.optim.Adam(groups, lr=cfg.lr)

    ckpt = Checkpoint(config=cfg.to_dict(), arch=objective.arch, params={}, command=command, device=str(dev))
    if resume is not None:
        state = Checkpoint.load(resume)
        model.load_state_dict(state.params)
        if state.optimizer is not None:
            try:
                opt.load_state_dict(state.optimizer)
            except ValueError:  # saved with other parameter groups: keep the weights, restart the moments
                log.warning(
                    "%s: optimizer state does not match this run's parameter groups; starting it afresh", resume
                )
        ckpt.step, ckpt.history, ckpt.best = state.step, state.history, state.best
        log.info("resumed from %s at step %d", resume, ckpt.step)

    def save(path: Path, with_optimizer: bool) -> None:
        ckpt.params = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        ckpt.optimizer = opt.state_dict() if with_optimizer else None
        ckpt.save(path)

    log.info(
        "%s: %s, %s trainable params, %d content images (%d held out), on %s",
        cfg.name,
        objective.arch.name,
        f"{sum(p.numel() for p in objective.trainable()):,}",
        len(content_paths),
        len(val_paths),
        dev,
    )
    budget = Budget(cfg.steps, cfg.max_minutes, ckpt.elapsed)
    clip = SpikeClip(cfg.clip_spikes)
    amp = use_bf16(dev, cfg.amp)
    sums: dict[str, list[float]] = {}
    bar = tqdm(total=cfg.steps, initial=ckpt.step, disable=None if progress else True, desc=cfg.name)

    def validate() -> None:
        """Score the held-out images, keep the best weights and the run's state, draw."""
        metrics, rows, titles = objective.validate(val_content)
        record = {
            "step": ckpt.step,
            **{k: float(np.mean(v)) for k, v in sums.items()},
            **metrics,
            "lr": opt.param_groups[0]["lr"],
            "elapsed": budget.elapsed,
        }
        ckpt.history.append(record)
        sums.clear()
        bar.set_postfix(loss=f"{record.get('loss', float('nan')):.3g}", val=f"{metrics['val_total']:.3g}")
        log.info(
            "%s step %d  loss %.4g  val content %.4g style %.4g  %.2f s/step",
            cfg.name,
            ckpt.step,
            record.get("loss", float("nan")),
            metrics["val_content"],
            metrics["val_style"],
            record["elapsed"] / max(ckpt.step, 1),
        )
        if not ckpt.best or metrics["val_total"] < ckpt.best["val_total"]:
            ckpt.best = {"step": ckpt.step, "val_total": metrics["val_total"]}
            save(out_dir / "best.pt", with_optimizer=False)
        save(out_dir / "last.pt", with_optimizer=True)
        save_loss_curves(ckpt.history, out_dir / "curves.png", cfg.name)
        save_grid(rows, titles, out_dir / "samples" / f"step{ckpt.step:07d}.png")
        save_grid(rows, titles, out_dir / "samples.png")
        (out_dir / "history.json").write_text(json.dumps({"history": ckpt.history, "best": ckpt.best}, indent=1))

    if ckpt.step == 0 and cfg.init_from:
        # A run that goes on from a model measures it first: that is the figure to beat,
        # and best.pt stays the starting model when no step improves on it.
        validate()
    model.train()
    while True:
        frac = budget.fraction(ckpt.step)
        if frac >= 1.0:
            break
        for group, scale in zip(opt.param_groups, lr_scales, strict=True):
            group["lr"] = cosine_lr(cfg.lr, cfg.lr_min, frac) * scale
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            terms = objective.terms(sampler.sample(cfg.batch_size, dev))
            loss = terms.total(cfg.content_weight, cfg.style_weight, cfg.tv_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        clipped = clip(objective.trainable())
        opt.step()
        ckpt.step += 1
        bar.update(1)
        for name, value in {"loss": loss.item(), **terms.as_floats(), "clipped": float(clipped)}.items():
            sums.setdefault(name, []).append(value)
        if ckpt.step % cfg.val_every == 0:
            validate()
    bar.close()
    if not (out_dir / "best.pt").exists():  # the budget ended before the first validation
        save(out_dir / "best.pt", with_optimizer=False)
    log.info("%s: best validation objective at %s", cfg.name, ckpt.best)
    return out_dir / "best.pt"
