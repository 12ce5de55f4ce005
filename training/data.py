"""Training and validation images: folder loading, degradation pairs, random patches.

Every image is loaded once, its low-resolution twin made once with the MATLAB bicubic
of ``training.imresize`` (the protocol the evaluation uses), and both are kept as
uint8 tensors on the training device, so a batch is a handful of slices with no
loader processes: on a GPU the step, not the data, sets the pace.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from training.imresize import imresize, modcrop

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


def list_images(folders: Iterable[Path]) -> list[Path]:
    files = [p for folder in folders for p in sorted(Path(folder).iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise FileNotFoundError(f"no images found in {list(folders)}: check --data-root and the config's folders")
    return files


def load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@dataclass(frozen=True)
class SRPair:
    name: str
    hr: np.ndarray  # HxWx3 uint8, sides multiples of the scale
    lr: np.ndarray  # (H/s)x(W/s)x3 uint8, MATLAB bicubic


def realworld_pair(pair: SRPair, scale: int, seed: int, degradation_args: dict[str, Any] | None = None) -> SRPair:
    """The same HR with an LR from Real-ESRGAN's degradation pipeline, made from a fixed seed."""
    from training.degradations import RealESRGANConfig, realesrgan

    hr = torch.from_numpy(np.ascontiguousarray(pair.hr.transpose(2, 0, 1))).float().div(255).unsqueeze(0)
    cfg = RealESRGANConfig(**(degradation_args or {}))
    lr = realesrgan(hr, scale, np.random.default_rng(seed), torch.Generator().manual_seed(seed), cfg)
    return SRPair(pair.name, pair.hr, lr[0].mul(255).round().byte().permute(1, 2, 0).numpy())


def make_sr_pairs(paths: Iterable[Path], scale: int) -> list[SRPair]:
    pairs = []
    for path in paths:
        hr = modcrop(load_rgb(path), scale)
        pairs.append(SRPair(path.stem, hr, imresize(hr, 1 / scale)))
    return pairs


def _to_chw(img: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).to(device)


def augment(*tensors: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """The same random flip / 90-degree rotation applied to each (C, H, W) tensor."""
    flip_h, flip_v, transpose = torch.randint(0, 2, (3,), generator=generator).tolist()
    out = []
    for t in tensors:
        if flip_h:
            t = t.flip(-1)
        if flip_v:
            t = t.flip(-2)
        if transpose:
            t = t.transpose(-1, -2)
        out.append(t)
    return tuple(out)


class PatchSampler:
    """Random aligned patches from in-memory images on the training device, as float
    [0, 1] batches. Each entry is a stack of images of one scene, the k-th ``scales[k]``
    times the size of the first: (LR, HR) pairs for bicubic SR, a single clean image
    otherwise. Images are drawn in proportion to their area, so big photos are not
    under-used, and every stack gets the same flip / rotation."""

    def __init__(
        self,
        stacks: list[tuple[np.ndarray, ...]],
        scales: tuple[int, ...],
        patch: int,
        device: torch.device,
        seed: int,
        knob: str = "lr_patch",
    ) -> None:
        usable = [s for s in stacks if min(s[0].shape[:2]) >= patch]
        assert usable, f"no training image is at least {patch}px; lower {knob}"
        self.scales, self.patch = scales, patch
        self.stacks = [tuple(_to_chw(img, device) for img in s) for s in usable]
        areas = torch.tensor([float(s[0].shape[1] * s[0].shape[2]) for s in self.stacks])
        self.weights = areas / areas.sum()
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.stacks)

    def sample(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        g, p = self.generator, self.patch
        picks = torch.multinomial(self.weights, batch_size, replacement=True, generator=g).tolist()
        rows = []
        for i in picks:
            stack = self.stacks[i]
            y = int(torch.randint(0, stack[0].shape[1] - p + 1, (1,), generator=g))
            x = int(torch.randint(0, stack[0].shape[2] - p + 1, (1,), generator=g))
            crops = [t[:, y * s : (y + p) * s, x * s : (x + p) * s] for t, s in zip(stack, self.scales, strict=True)]
            rows.append(augment(*crops, generator=g))
        return tuple(torch.stack(batch).float() / 255.0 for batch in zip(*rows, strict=True))
