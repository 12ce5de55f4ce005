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

Equalised learning rate (ProGAN, ``equalized=True``): weights are stored as N(0, 1) and
scaled by He's constant in the forward pass, biases start at 0. With PyTorch's default
initialisation a 256-channel 3x3 convolution has weights of about 0.012, so one Adam
step of 2e-4 changes it by a sixtieth while a 16-channel layer moves by a two-hundredth:
the wide layers swing, and measured on the faces at 32 px the generator's output stopped
depending on its latent within 20 steps (spread over latents 0.29 at start, 0.009 after).
Stored at unit scale, every layer moves by the same fraction per step. Exported graphs
carry the scaled weights (``fold_scales``), so serving sees ordinary convolutions.

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


LEAKY = math.sqrt(2 / (1 + 0.2**2))  # He's gain for leaky ReLU(0.2)


class EqualizedConv2d(nn.Conv2d):
    """A convolution whose weights are stored as N(0, 1) and scaled by gain / sqrt(fan-in)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, padding: int = 0, gain: float = LEAKY) -> None:
        super().__init__(in_ch, out_ch, kernel, 1, padding)
        nn.init.normal_(self.weight)
        nn.init.zeros_(self.bias)
        self.scale = gain / math.sqrt(in_ch * kernel * kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight if self.scale == 1.0 else self.weight * self.scale, self.bias)


class EqualizedLinear(nn.Linear):
    """A dense layer whose weights are stored as N(0, 1) and scaled by gain / sqrt(fan-in)."""

    def __init__(self, in_features: int, out_features: int, gain: float = LEAKY) -> None:
        super().__init__(in_features, out_features)
        nn.init.normal_(self.weight)
        nn.init.zeros_(self.bias)
        self.scale = gain / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight if self.scale == 1.0 else self.weight * self.scale, self.bias)


def fold_scales(model: nn.Module) -> nn.Module:
    """Multiply each equalised layer's scale into its weights (in place): what the graph
    ships, under the state-dict names, and what weights read back from it are."""
    for module in model.modules():
        if isinstance(module, EqualizedConv2d | EqualizedLinear) and module.scale != 1.0:
            with torch.no_grad():
                module.weight.mul_(module.scale)
            module.scale = 1.0
    return model


def conv(in_ch: int, out_ch: int, kernel: int, equalized: bool, gain: float = LEAKY) -> nn.Conv2d:
    if equalized:
        return EqualizedConv2d(in_ch, out_ch, kernel, kernel // 2, gain)
    return nn.Conv2d(in_ch, out_ch, kernel, 1, kernel // 2)


def dense(in_features: int, out_features: int, equalized: bool, gain: float = LEAKY) -> nn.Linear:
    return EqualizedLinear(in_features, out_features, gain) if equalized else nn.Linear(in_features, out_features)


class PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class _GBlock(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, equalized: bool) -> None:
        super().__init__(
            nn.Upsample(scale_factor=2, mode="nearest"),
            conv(in_ch, out_ch, 3, equalized),
            nn.LeakyReLU(0.2),
            PixelNorm(),
            conv(out_ch, out_ch, 3, equalized),
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
        equalized: bool = False,
    ) -> None:
        super().__init__()
        self.resolution, self.latent, self.classes = resolution, latent, classes
        ch = widths(resolution, width, min_width)
        self.embed = nn.Embedding(classes, latent) if classes else None
        self.head = dense(latent * (2 if classes else 1), ch[0] * 16, equalized)
        self.head_conv = nn.Sequential(nn.LeakyReLU(0.2), PixelNorm(), conv(ch[0], ch[0], 3, equalized))
        self.blocks = nn.ModuleList(_GBlock(a, b, equalized) for a, b in itertools.pairwise(ch))
        self.to_image = nn.ModuleList(conv(c, channels, 1, equalized, gain=1.0) for c in ch)
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
    if not on:
        return module
    if isinstance(module, EqualizedConv2d | EqualizedLinear):
        module.scale = 1.0  # spectral norm sets the scale; the unit-scale storage is what stays
    return nn.utils.parametrizations.spectral_norm(module)


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
        equalized: bool = False,
    ) -> None:
        super().__init__()
        ch = widths(resolution, width, min_width)[::-1]  # at resolution, ..., at 4x4
        self.levels = len(ch) - 1
        sn, eq = spectral_norm, equalized
        self.from_image = nn.ModuleList(_sn(conv(channels, c, 1, eq), sn) for c in ch)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                _sn(conv(a, a, 3, eq), sn),
                nn.LeakyReLU(0.2),
                _sn(conv(a, b, 3, eq), sn),
                nn.LeakyReLU(0.2),
                nn.AvgPool2d(2),
            )
            for a, b in itertools.pairwise(ch)
        )
        top = ch[-1]
        self.std = MinibatchStd()
        self.tail = nn.Sequential(_sn(conv(top + 1, top, 3, eq), sn), nn.LeakyReLU(0.2))
        self.dense = _sn(dense(top * 16, top, eq), sn)
        self.logit = _sn(dense(top, 1, eq, gain=1.0), sn)
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
