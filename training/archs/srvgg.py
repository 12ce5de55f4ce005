"""SRVGGNetCompact: Real-ESRGAN's compact super-resolution generator.

All convolutions run at the low resolution; the last one makes ``out * scale**2``
channels that a pixel shuffle rearranges, and the nearest-upsampled input is added
back, so the body only learns the residual. Key names (``body.N``) follow
Real-ESRGAN's ``srvgg_arch.py`` so its published checkpoints load unchanged.

    x ─┬─ conv ─ act ─ (conv ─ act) x num_conv ─ conv ─ pixel_shuffle ─ (+) ─ y
       └──────────────────── nearest upsample x scale ─────────────────┘
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = ("prelu", "relu", "leakyrelu")


def _activation(kind: str, num_feat: int) -> nn.Module:
    if kind == "prelu":
        return nn.PReLU(num_parameters=num_feat)
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "leakyrelu":
        return nn.LeakyReLU(negative_slope=0.1, inplace=True)
    raise ValueError(f"act_type must be one of {ACTIVATIONS}, got {kind!r}")


class SRVGGNetCompact(nn.Module):
    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_conv: int = 16,
        upscale: int = 4,
        act_type: str = "prelu",
    ) -> None:
        super().__init__()
        assert upscale >= 1, f"upscale must be >= 1, got {upscale}"
        self.upscale = upscale
        self.num_out_ch = num_out_ch
        layers: list[nn.Module] = [nn.Conv2d(num_in_ch, num_feat, 3, 1, 1), _activation(act_type, num_feat)]
        for _ in range(num_conv):
            layers += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), _activation(act_type, num_feat)]
        layers.append(nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1))
        self.body = nn.ModuleList(layers)
        self.upsampler = nn.PixelShuffle(upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) -> (N, C_out, H*s, W*s)
        out = x
        for layer in self.body:
            out = layer(out)
        out = self.upsampler(out)
        base = x[:, : self.num_out_ch]
        if self.upscale > 1:
            base = F.interpolate(base, scale_factor=self.upscale, mode="nearest")
        return out + base

    @staticmethod
    def receptive_radius(num_conv: int) -> int:
        """Input pixels on each side that influence one output pixel (3x3 convs)."""
        return num_conv + 2
