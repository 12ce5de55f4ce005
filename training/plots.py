"""Pictures of a training run: loss and validation curves, before/after sample grids."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image, ImageDraw


def save_curves(
    history: Sequence[dict[str, Any]], path: Path, baseline_psnr: float | None = None, baseline_name: str = "bicubic"
) -> None:
    """Training losses (log scale) and validation PSNR against step, side by side."""
    steps = [h["step"] for h in history]
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(11, 4))
    for key in ("loss", "pixel", "perceptual", "gan", "d_loss"):
        if key in history[0] and (key == "loss" or len(history[0]) > 6):
            ax_loss.plot(steps, [abs(h[key]) for h in history], label=key)
    ax_loss.set_yscale("log")
    ax_loss.set_title("training loss")
    ax_val.plot(steps, [h["val_psnr"] for h in history], marker="o", ms=3, label="model (EMA)")
    if "train_psnr" in history[0]:
        ax_val.plot(steps, [h["train_psnr"] for h in history], alpha=0.6, label="train patches (RGB)")
    if baseline_psnr is not None:
        ax_val.axhline(baseline_psnr, color="gray", ls="--", label=baseline_name)
    ax_val.set_ylabel("PSNR (dB)")
    ax_val.set_title("validation PSNR")
    _finish(fig, (ax_loss, ax_val), path)


def _finish(fig: Any, axes: Sequence[Any], path: Path, legend_size: int | None = None) -> None:
    """Step on x, a light grid and a legend on every panel that has lines; write the PNG
    and free the figure."""
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=legend_size)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def centre_crop(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return img[top : top + size, left : left + size]


def save_grid(rows: Sequence[Sequence[np.ndarray]], titles: Sequence[str], path: Path) -> None:
    """Rows of equally sized uint8 RGB tiles with column titles, written as one PNG."""
    tile_h, tile_w = rows[0][0].shape[:2]
    pad, head = 4, 16
    grid = Image.new("RGB", (len(titles) * (tile_w + pad) + pad, len(rows) * (tile_h + pad) + pad + head), "white")
    draw = ImageDraw.Draw(grid)
    for c, title in enumerate(titles):
        draw.text((pad + c * (tile_w + pad), 2), title, fill="black")
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            grid.paste(Image.fromarray(tile), (pad + c * (tile_w + pad), head + pad + r * (tile_h + pad)))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)


def square_thumb(img: np.ndarray, size: int) -> np.ndarray:
    """The largest centred square of an image, resized to ``size`` x ``size``."""
    side = min(img.shape[:2])
    square = centre_crop(img, side)
    return np.asarray(Image.fromarray(square).resize((size, size), Image.Resampling.LANCZOS))


def save_loss_curves(history: Sequence[dict[str, Any]], path: Path, title: str) -> None:
    """Training terms (log scale) and the validation terms against step, side by side."""
    steps = [h["step"] for h in history]
    fig, (ax_train, ax_val) = plt.subplots(1, 2, figsize=(11, 4))
    for key in ("loss", "content", "style", "tv"):
        # A run that went on from a model has a step-0 record with no training terms.
        points = [(h["step"], abs(h[key])) for h in history if key in h]
        if any(v for _, v in points):
            ax_train.plot(*zip(*points, strict=True), label=key)
    ax_train.set_yscale("log")
    ax_train.set_title(f"{title}: training (unweighted terms, weighted total)")
    for key in sorted(k for k in history[0] if k.startswith("val_") and k != "val_total"):
        ax_val.plot(steps, [h[key] for h in history], marker="o", ms=3, label=key)
    ax_val.set_yscale("log")
    ax_val.set_title("validation (held-out images)")
    _finish(fig, (ax_train, ax_val), path, legend_size=7)


def save_gan_curves(history: Sequence[dict[str, Any]], path: Path, title: str) -> None:
    """Discriminator and generator losses, D's mean logits and their spread, and sample
    diversity against step."""
    steps = [h["step"] for h in history]
    fig, (ax_loss, ax_div) = plt.subplots(1, 2, figsize=(11, 4))
    for key in ("d_loss", "g_loss", "d_real", "d_fake", "d_spread", "r1", "cr"):
        if key in history[0]:
            ax_loss.plot(steps, [h[key] for h in history], label=key)
    ax_loss.set_title(f"{title}: losses and D's mean logits")
    ax_div.plot(steps, [h["diversity_vs_real"] for h in history], marker="o", ms=3, label="fixed samples")
    ax_div.axhline(1.0, color="gray", ls="--", label="real images")
    ax_div.axhline(0.3, color="red", ls=":", label="mode-collapse warning")
    ax_div.set_title("diversity of the fixed samples, relative to real images")
    _finish(fig, (ax_loss, ax_div), path, legend_size=7)


def save_strength_curve(
    noisy_psnr: dict[str, float], psnr: dict[str, dict[str, float]], set_name: str, path: Path
) -> None:
    """A denoiser's PSNR against the sigma it is told, one line per true sigma, with the
    noisy input (dotted) and blind mode (dashed) of the same colour."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (true, row), colour in zip(psnr.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False):
        told = [(float(t), v) for t, v in row.items() if t != "blind"]
        ax.plot([t for t, _ in told], [v for _, v in told], marker="o", ms=4, color=colour, label=f"true sigma {true}")
        ax.axvline(float(true), color=colour, lw=0.8, alpha=0.4)
        ax.axhline(noisy_psnr[true], color=colour, ls=":", lw=1)
        if "blind" in row:
            ax.axhline(row["blind"], color=colour, ls="--", lw=1)
    ax.set_title(
        f"{set_name}: PSNR against the requested sigma\n(dotted: the noisy input; dashed: blind mode)", fontsize=11
    )
    ax.set_ylabel("PSNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_xlabel("requested sigma (0-255 scale)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
