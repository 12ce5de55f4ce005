"""Differentiable augmentation (Zhao et al. 2020) for GANs trained on few images.

The same kinds of random transform are applied to real and generated images in both
the discriminator's and the generator's step, and gradients flow through them to the
generator, so the discriminator cannot memorise the few real images and the
generator is not pushed to reproduce the augmentations. Images in [-1, 1], (N, C, H, W).

- color: brightness +U(-0.5, 0.5), saturation x U(0, 2), contrast x U(0.5, 1.5)
- translation: shift by up to 1/8 of the side, zero padding
- cutout: a zeroed square of half the side at a random place
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

KINDS = ("color", "translation", "cutout")


def _rand(x: torch.Tensor, gen: torch.Generator | None, *shape: int) -> torch.Tensor:
    return torch.rand(x.shape[0], *shape, device=x.device, generator=gen)


def color(x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    x = x + (_rand(x, gen, 1, 1, 1) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(x, gen, 1, 1, 1) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(x, gen, 1, 1, 1) + 0.5) + mean


def translation(x: torch.Tensor, gen: torch.Generator | None = None, ratio: float = 0.125) -> torch.Tensor:
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sy, sy + 1, (n, 1, 1), device=x.device, generator=gen)
    tx = torch.randint(-sx, sx + 1, (n, 1, 1), device=x.device, generator=gen)
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    gy = torch.clamp(gy[None] + ty + 1, 0, h + 1)
    gx = torch.clamp(gx[None] + tx + 1, 0, w + 1)
    padded = F.pad(x, (1, 1, 1, 1))
    index = (gy * (w + 2) + gx).view(n, 1, -1).expand(-1, x.shape[1], -1)
    return padded.flatten(2).gather(2, index).view_as(x)


def cutout(x: torch.Tensor, gen: torch.Generator | None = None, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of ``ratio`` of the side, centred anywhere (partly outside is fine)."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h, (n, 1, 1), device=x.device, generator=gen) - ch // 2
    left = torch.randint(0, w, (n, 1, 1), device=x.device, generator=gen) - cw // 2
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    hole = (gy[None] >= top) & (gy[None] < top + ch) & (gx[None] >= left) & (gx[None] < left + cw)
    return x * (~hole).to(x.dtype)[:, None]


TRANSFORMS = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(x: torch.Tensor, kinds: list[str], gen: torch.Generator | None = None) -> torch.Tensor:
    for kind in kinds:
        x = TRANSFORMS[kind](x, gen)
    return x
