"""RRDBNet: ESRGAN's generator (residual-in-residual dense blocks).

Key names follow BasicSR / Real-ESRGAN (``conv_first``, ``body.N.rdb1.conv1``,
``conv_body``, ``conv_up1``, ``conv_up2``, ``conv_hr``, ``conv_last``) so official
checkpoints load unchanged. The trunk always upsamples x4; for x2 and x1 the input is
first pixel-unshuffled by 2 or 4, as Real-ESRGAN does.

    x ─ [unshuffle] ─ conv_first ─┬─ RRDB x num_block ─ conv_body ─(+)─ up2 ─ conv_up1
                                  └────────────────────────────────┘   up2 ─ conv_up2
                                                                       conv_hr ─ conv_last ─ y
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, negative_slope=0.2)


class ResidualDenseBlock(nn.Module):
    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = _lrelu(self.conv1(x))
        x2 = _lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = _lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = _lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x  # residual scaling keeps deep stacks stable


class RRDB(nn.Module):
    def __init__(self, num_feat: int, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        scale: int = 4,
        num_feat: int = 64,
        num_block: int = 23,
        num_grow_ch: int = 32,
    ) -> None:
        super().__init__()
        assert scale in (1, 2, 4), f"RRDBNet supports scale 1, 2 or 4, got {scale}"
        self.scale = scale
        self.unshuffle = {4: 1, 2: 2, 1: 4}[scale]
        self.conv_first = nn.Conv2d(num_in_ch * self.unshuffle**2, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(num_feat, num_grow_ch) for _ in range(num_block)])
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        for module in self.body.modules():
            if isinstance(module, nn.Conv2d):  # ESRGAN's init: small residuals, so deep stacks start near identity
                nn.init.kaiming_normal_(module.weight)
                module.weight.data.mul_(0.1)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = F.pixel_unshuffle(x, self.unshuffle) if self.unshuffle > 1 else x
        feat = self.conv_first(feat)
        feat = feat + self.conv_body(self.body(feat))
        feat = _lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = _lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(_lrelu(self.conv_hr(feat)))


def keep_blocks(state: dict[str, torch.Tensor], blocks: list[int]) -> dict[str, torch.Tensor]:
    """A deeper RRDBNet's state dict cut to ``blocks`` of its body (renumbered 0, 1, ...),
    every other layer kept: a shallow network that starts from a deep one's features."""
    depth = len({key.split(".")[1] for key in state if key.startswith("body.")})
    if any(not 0 <= b < depth for b in blocks):
        raise ValueError(f"blocks {blocks}: the network has {depth} (0..{depth - 1})")
    cut = {k: v for k, v in state.items() if not k.startswith("body.")}
    for new, old in enumerate(blocks):
        prefix = f"body.{old}."
        cut.update({f"body.{new}.{k[len(prefix) :]}": v for k, v in state.items() if k.startswith(prefix)})
    return cut
