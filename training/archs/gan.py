"""Generator and discriminator for the generate task, growable by resolution (ProGAN-style).

Generator: ``z`` (plus a learnt class embedding for conditional models) -> 4x4 -> one
block per doubling (nearest upsample, two 3x3 convolutions, leaky ReLU, pixel norm)
-> a 1x1 "to image" at every resolution -> tanh. Pixel norm, not batch norm, so an
image depends on its own latent only: the same seed gives the same pixels whatever
else is in the batch. Truncation scales z towards 0, whose image is the "mean" one.

Discriminator: a 1x1 "from image" at every resolution -> one block per halving (two
3x3 convolutions, leaky ReLU, average pool) -> minibatch standard deviation -> a
logit, plus, for conditional models, the projection of the class embedding on the
pooled features (Miyato & Koyama 2018). Spectral norm on every layer when asked.

Progressive growing: ``forward(..., level, alpha)`` runs at resolution 4·2^level; while
``alpha`` < 1 the newest block is faded in over the upsampled (G) or downsampled (D)
output of the level below.

    z ─ dense 4x4 ─ [up, conv, conv] x levels ─ to_image ─ tanh        (N, C, R, R) in [-1, 1]
    x ─ from_image ─ [conv, conv, pool] x levels ─ std ─ conv ─ dense ─ logit (+ <embed(y), h>)
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn


def widths(resolution: int, top: int, bottom: int) -> list[int]:
    """Channels at 4x4, 8x8, ... resolution: ``top`` halved per level, at least ``bottom``."""
    levels = int(math.log2(resolution)) - 2
    return [max(bottom, top >> i) for i in range(levels + 1)]


class PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class _GBlock(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(in_ch, out_ch, 3, 1, 1),
            nn.LeakyReLU(0.2),
            PixelNorm(),
            nn.Conv2d(out_ch, out_ch, 3, 1, 1),
            nn.LeakyReLU(0.2),
            PixelNorm(),
        )


class Generator(nn.Module):
    def __init__(
        self,
        resolution: int = 32,
        channels: int = 1,
        latent: int = 128,
        classes: int = 0,
        width: int = 256,
        min_width: int = 32,
    ) -> None:
        super().__init__()
        self.resolution, self.latent, self.classes = resolution, latent, classes
        ch = widths(resolution, width, min_width)
        self.embed = nn.Embedding(classes, latent) if classes else None
        self.head = nn.Linear(latent * (2 if classes else 1), ch[0] * 16)
        self.head_conv = nn.Sequential(nn.LeakyReLU(0.2), PixelNorm(), nn.Conv2d(ch[0], ch[0], 3, 1, 1))
        self.blocks = nn.ModuleList(_GBlock(a, b) for a, b in itertools.pairwise(ch))
        self.to_image = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in ch)
        self.levels = len(ch) - 1

    def features(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        # z is not normalised on the way in (unlike ProGAN): its length must reach the
        # head, or scaling it (truncation, psi * z) would change nothing.
        if self.embed is not None:
            if labels is None:
                raise ValueError("a conditional generator needs labels")
            z = torch.cat([z, self.embed(labels)], dim=1)
        h = self.head(z).view(z.shape[0], -1, 4, 4)
        out: torch.Tensor = PixelNorm()(F.leaky_relu(self.head_conv(h), 0.2))
        return out

    def forward(
        self, z: torch.Tensor, labels: torch.Tensor | None = None, level: int | None = None, alpha: float = 1.0
    ) -> torch.Tensor:
        level = self.levels if level is None else level
        h = self.features(z, labels)
        previous = h
        for block in self.blocks[:level]:
            previous = h
            h = block(h)
        out = self.to_image[level](h)
        if alpha < 1.0 and level > 0:
            low = F.interpolate(self.to_image[level - 1](previous), scale_factor=2, mode="nearest")
            out = alpha * out + (1 - alpha) * low
        return torch.tanh(out)


def _sn(module: nn.Module, on: bool) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(module) if on else module


class MinibatchStd(nn.Module):
    """Appends the mean standard deviation over the batch (ProGAN): a cue against mode collapse."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        group = min(4, x.shape[0])
        n, c, h, w = x.shape
        if n % group:
            group = 1
        y = x.view(group, -1, c, h, w)
        std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (n/group,)
        std = std.view(1, -1, 1, 1, 1).expand(group, -1, 1, h, w).reshape(n, 1, h, w)
        return torch.cat([x, std], dim=1)


class Discriminator(nn.Module):
    def __init__(
        self,
        resolution: int = 32,
        channels: int = 1,
        classes: int = 0,
        width: int = 256,
        min_width: int = 32,
        spectral_norm: bool = True,
    ) -> None:
        super().__init__()
        ch = widths(resolution, width, min_width)[::-1]  # at resolution, ..., at 4x4
        self.levels = len(ch) - 1
        self.from_image = nn.ModuleList(_sn(nn.Conv2d(channels, c, 1), spectral_norm) for c in ch)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                _sn(nn.Conv2d(a, a, 3, 1, 1), spectral_norm),
                nn.LeakyReLU(0.2),
                _sn(nn.Conv2d(a, b, 3, 1, 1), spectral_norm),
                nn.LeakyReLU(0.2),
                nn.AvgPool2d(2),
            )
            for a, b in itertools.pairwise(ch)
        )
        top = ch[-1]
        self.std = MinibatchStd()
        self.tail = nn.Sequential(_sn(nn.Conv2d(top + 1, top, 3, 1, 1), spectral_norm), nn.LeakyReLU(0.2))
        self.dense = _sn(nn.Linear(top * 16, top), spectral_norm)
        self.logit = _sn(nn.Linear(top, 1), spectral_norm)
        self.embed = _sn(nn.Embedding(classes, top), spectral_norm) if classes else None

    def forward(
        self, x: torch.Tensor, labels: torch.Tensor | None = None, level: int | None = None, alpha: float = 1.0
    ) -> torch.Tensor:
        """Logits (N,) for images at resolution 4·2^level."""
        level = self.levels if level is None else level
        first = self.levels - level  # index of the block that takes this resolution
        h = F.leaky_relu(self.from_image[first](x), 0.2)
        h = self.blocks[first](h) if level > 0 else h
        if alpha < 1.0 and level > 0:
            low = F.leaky_relu(self.from_image[first + 1](F.avg_pool2d(x, 2)), 0.2)
            h = alpha * h + (1 - alpha) * low
        for block in self.blocks[first + 1 :]:
            h = block(h)
        h = self.tail(self.std(h))
        feat = F.leaky_relu(self.dense(h.flatten(1)), 0.2)
        out: torch.Tensor = self.logit(feat)[:, 0]
        if self.embed is not None:
            if labels is None:
                raise ValueError("a conditional discriminator needs labels")
            out = out + (self.embed(labels) * feat).sum(dim=1)
        return out


class ExportedGenerator(nn.Module):
    """What ships: the full-resolution generator with its output in [0, 1]."""

    def __init__(self, generator: Generator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return (self.generator(z, labels) + 1) / 2
