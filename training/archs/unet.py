"""DenoiseUNet: a residual U-Net denoiser with a noise-level input (FFDNet-style).

The input is RGB plus one level channel: the noise standard deviation to remove, as
sigma / 50 on the 0-255 scale (so 1.0 means sigma 50), constant over the image; -1
means blind (the network estimates the level itself; it is trained with the level
hidden part of the time). The network predicts the noise and subtracts it.

    [rgb, level] ─ head ─ E0 ─ down ─ E1 ─ down ─ B ─ up ─(+E1)─ D1 ─ up ─(+E0)─ D0 ─ tail ─ rgb - noise
                  (w0)          (w1)       (w2)             (w1)           (w0)

E/D/B are residual blocks (conv-ReLU-conv + skip, no normalisation); down is a 2x2
stride-2 conv, up a 2x2 stride-2 transposed conv. Sides must be multiples of 4.
"""

from __future__ import annotations

import torch
from torch import nn

BLIND = -1.0
LEVEL_SCALE = 50.0  # level = sigma / LEVEL_SCALE


class ResBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(ch, ch, 3, 1, 1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


def _stage(ch: int, blocks: int) -> nn.Sequential:
    return nn.Sequential(*[ResBlock(ch) for _ in range(blocks)])


class DenoiseUNet(nn.Module):
    def __init__(self, num_in_ch: int = 3, widths: tuple[int, int, int] = (48, 96, 192), blocks: int = 2) -> None:
        super().__init__()
        w0, w1, w2 = widths
        self.num_in_ch = num_in_ch
        self.head = nn.Conv2d(num_in_ch + 1, w0, 3, 1, 1)
        self.enc0, self.down0 = _stage(w0, blocks), nn.Conv2d(w0, w1, 2, 2)
        self.enc1, self.down1 = _stage(w1, blocks), nn.Conv2d(w1, w2, 2, 2)
        self.bottleneck = _stage(w2, blocks)
        self.up1, self.dec1 = nn.ConvTranspose2d(w2, w1, 2, 2), _stage(w1, blocks)
        self.up0, self.dec0 = nn.ConvTranspose2d(w1, w0, 2, 2), _stage(w0, blocks)
        self.tail = nn.Conv2d(w0, num_in_ch, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C+1, H, W) -> (N, C, H, W)
        e0 = self.enc0(self.head(x))
        e1 = self.enc1(self.down0(e0))
        b = self.bottleneck(self.down1(e1))
        d1 = self.dec1(self.up1(b) + e1)
        d0 = self.dec0(self.up0(d1) + e0)
        return x[:, : self.num_in_ch] - self.tail(d0)
