"""Images for style training: random content crops, painting crops, and the style image.

Content images are kept as uint8 arrays; each sample is resized so its shorter side is
``crop`` times a random factor from ``scale_range`` (so the network sees objects at
several sizes), then cropped and flipped at random.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from training.data import list_images, load_rgb


def fit_longer_side(img: np.ndarray, side: int) -> np.ndarray:
    """Resize (Lanczos, antialiased) so the longer side is ``side`` pixels."""
    h, w = img.shape[:2]
    k = side / max(h, w)
    size = (max(1, round(w * k)), max(1, round(h * k)))
    return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.LANCZOS))


def to_batch(imgs: list[np.ndarray], device: torch.device | str = "cpu") -> torch.Tensor:
    """HxWx3 uint8 images of one size -> (N, 3, H, W) float in [0, 1]."""
    arr = np.stack([np.ascontiguousarray(i.transpose(2, 0, 1)) for i in imgs])
    return torch.from_numpy(arr).to(device).float().div(255)


def to_image(t: torch.Tensor) -> np.ndarray:
    """(3, H, W) or (1, 3, H, W) float -> HxWx3 uint8, clipped and rounded."""
    t = t[0] if t.dim() == 4 else t
    out: np.ndarray = t.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return out


class CropSampler:
    """Random crops of a set of images at random scales."""

    def __init__(self, images: list[np.ndarray], crop: int, scale_range: tuple[float, float], seed: int) -> None:
        if not images:
            raise ValueError("no images to sample crops from")
        self.images, self.crop, self.scale_range = images, crop, scale_range
        self.rng = np.random.default_rng(seed)

    @classmethod
    def from_paths(cls, paths: list[Path], crop: int, scale_range: tuple[float, float], seed: int) -> CropSampler:
        return cls([load_rgb(p) for p in paths], crop, scale_range, seed)

    def one(self) -> np.ndarray:
        img = self.images[int(self.rng.integers(len(self.images)))]
        h, w = img.shape[:2]
        short = self.crop * self.rng.uniform(*self.scale_range)
        k = short / min(h, w)
        size = (max(self.crop, round(w * k)), max(self.crop, round(h * k)))
        resized = np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0))
        y = int(self.rng.integers(resized.shape[0] - self.crop + 1))
        x = int(self.rng.integers(resized.shape[1] - self.crop + 1))
        out = resized[y : y + self.crop, x : x + self.crop]
        return out[:, ::-1] if self.rng.random() < 0.5 else out

    def sample(self, batch_size: int, device: torch.device | str = "cpu") -> torch.Tensor:
        return to_batch([self.one() for _ in range(batch_size)], device)


def split_held_out(paths: list[Path], count: int, seed: int) -> tuple[list[Path], list[Path]]:
    """(training, held out): a fixed random ``count`` of ``paths`` kept for validation."""
    order = np.random.default_rng(seed).permutation(len(paths))
    held = {int(i) for i in order[:count]}
    return [p for i, p in enumerate(paths) if i not in held], [p for i, p in enumerate(paths) if i in held]


def style_paths(data_root: Path, sets: list[str], held_out: list[str]) -> tuple[list[Path], list[Path]]:
    """Paintings to train on, and the held-out ones (by file stem)."""
    paths = list_images([data_root / s for s in sets])
    missing = set(held_out) - {p.stem for p in paths}
    if missing:
        raise ValueError(f"held_out_styles not found under {sets}: {sorted(missing)}")
    return [p for p in paths if p.stem not in held_out], [p for p in paths if p.stem in held_out]
