"""Discriminators for the GAN stage, with the key names of BasicSR / Real-ESRGAN.

- ``VGGStyleDiscriminator``: ESRGAN's, a strided VGG-like stack with batch norm and
  two linear layers; one realness score per patch (input 128 or 256).
- ``UNetDiscriminatorSN``: Real-ESRGAN's, a U-Net with spectral norm that scores
  every pixel, which gives the generator local feedback on real-world textures.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm


class VGGStyleDiscriminator(nn.Module):
    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, input_size: int = 128) -> None:
        super().__init__()
        assert input_size in (128, 256), f"input_size must be 128 or 256, got {input_size}"
        self.input_size = input_size
        nf = num_feat
        self.conv0_0 = nn.Conv2d(num_in_ch, nf, 3, 1, 1, bias=True)
        self.conv0_1 = nn.Conv2d(nf, nf, 4, 2, 1, bias=False)
        self.bn0_1 = nn.BatchNorm2d(nf, affine=True)
        chans = [nf, nf * 2, nf * 4, nf * 8, nf * 8] + ([nf * 8] if input_size == 256 else [])
        for i in range(1, len(chans)):
            setattr(self, f"conv{i}_0", nn.Conv2d(chans[i - 1], chans[i], 3, 1, 1, bias=False))
            setattr(self, f"bn{i}_0", nn.BatchNorm2d(chans[i], affine=True))
            setattr(self, f"conv{i}_1", nn.Conv2d(chans[i], chans[i], 4, 2, 1, bias=False))
            setattr(self, f"bn{i}_1", nn.BatchNorm2d(chans[i], affine=True))
        self.stages = len(chans)
        self.linear1 = nn.Linear(chans[-1] * 4 * 4, 100)
        self.linear2 = nn.Linear(100, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, S, S) -> (N, 1)
        assert x.shape[-1] == self.input_size, f"input must be {self.input_size}px, got {tuple(x.shape)}"
        act = nn.functional.leaky_relu
        feat = act(self.conv0_0(x), 0.2)
        feat = act(self.bn0_1(self.conv0_1(feat)), 0.2)
        for i in range(1, self.stages):
            feat = act(getattr(self, f"bn{i}_0")(getattr(self, f"conv{i}_0")(feat)), 0.2)
            feat = act(getattr(self, f"bn{i}_1")(getattr(self, f"conv{i}_1")(feat)), 0.2)
        feat = act(self.linear1(feat.flatten(1)), 0.2)
        return self.linear2(feat)


class UNetDiscriminatorSN(nn.Module):
    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, skip_connection: bool = True) -> None:
        super().__init__()
        nf, sn = num_feat, spectral_norm
        self.skip_connection = skip_connection
        self.conv0 = nn.Conv2d(num_in_ch, nf, 3, 1, 1)
        self.conv1 = sn(nn.Conv2d(nf, nf * 2, 4, 2, 1, bias=False))
        self.conv2 = sn(nn.Conv2d(nf * 2, nf * 4, 4, 2, 1, bias=False))
        self.conv3 = sn(nn.Conv2d(nf * 4, nf * 8, 4, 2, 1, bias=False))
        self.conv4 = sn(nn.Conv2d(nf * 8, nf * 4, 3, 1, 1, bias=False))
        self.conv5 = sn(nn.Conv2d(nf * 4, nf * 2, 3, 1, 1, bias=False))
        self.conv6 = sn(nn.Conv2d(nf * 2, nf, 3, 1, 1, bias=False))
        self.conv7 = sn(nn.Conv2d(nf, nf, 3, 1, 1, bias=False))
        self.conv8 = sn(nn.Conv2d(nf, nf, 3, 1, 1, bias=False))
        self.conv9 = nn.Conv2d(nf, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) -> (N, 1, H, W); H, W multiples of 8
        def act(t: torch.Tensor) -> torch.Tensor:
            return F.leaky_relu(t, negative_slope=0.2)

        def up(t: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)

        x0 = act(self.conv0(x))
        x1 = act(self.conv1(x0))
        x2 = act(self.conv2(x1))
        x3 = act(self.conv3(x2))
        x4 = act(self.conv4(up(x3)))
        x4 = x4 + x2 if self.skip_connection else x4
        x5 = act(self.conv5(up(x4)))
        x5 = x5 + x1 if self.skip_connection else x5
        x6 = act(self.conv6(up(x5)))
        x6 = x6 + x0 if self.skip_connection else x6
        out = act(self.conv7(x6))
        out = act(self.conv8(out))
        return self.conv9(out)
