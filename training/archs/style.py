"""Style-transfer networks: one per named style (Johnson et al. 2016), and one for any style
(AdaIN, Huang & Belongie 2017).

TransformerNet (Johnson): reflection-padded convolutions, instance norm, ReLU::

    x ─ conv9 32 ─ conv3/2 64 ─ conv3/2 128 ─ 5 x residual(128) ─ up2+conv3 64 ─ up2+conv3 32 ─ conv9 3 ─ y

Sides must be multiples of 4 (two stride-2 stages). Nearest upsampling followed by a
convolution instead of a transposed convolution avoids checkerboard artefacts.

With ``styles = N > 1`` the instance norms are conditional (Dumoulin et al. 2017): one
scale and shift per style and channel, every convolution shared, so N paintings train
in one run at little more than the cost of one. ``single_style(state, k)`` cuts out
painting k as the state dict of a plain (``styles = 1``) TransformerNet: what is
exported and served is Johnson's network.

AdaINNet: VGG16 up to relu4_1 encodes content and style; adaptive instance norm gives
the content features the style's channel means and standard deviations; a decoder that
mirrors the encoder paints the result. ``alpha`` blends, in feature space, between the
content's own features (0) and the fully stylised ones (1). One graph, three inputs
(content, style, alpha), any sizes (multiples of 8)::

    content ─ VGG16[:relu4_1] ─┐
                               AdaIN(·, alpha) ─ decoder ─ y
    style ─── VGG16[:relu4_1] ─┘
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.vgg import VGG16Features


def _conv(in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.ReflectionPad2d(kernel // 2), nn.Conv2d(in_ch, out_ch, kernel, stride))


class ConditionalInstanceNorm(nn.Module):
    """Instance norm with a scale and shift per style; ``style`` picks the row."""

    def __init__(self, channels: int, styles: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.weight = nn.Parameter(torch.ones(styles, channels))
        self.bias = nn.Parameter(torch.zeros(styles, channels))
        self.style = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight[self.style].view(1, -1, 1, 1)
        b = self.bias[self.style].view(1, -1, 1, 1)
        out: torch.Tensor = self.norm(x) * w + b
        return out


def _norm(channels: int, styles: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=True) if styles == 1 else ConditionalInstanceNorm(channels, styles)


class _ConvNormReLU(nn.Sequential):
    def __init__(
        self, in_ch: int, out_ch: int, kernel: int, styles: int, stride: int = 1, upsample: bool = False
    ) -> None:
        layers: list[nn.Module] = [nn.Upsample(scale_factor=2, mode="nearest")] if upsample else []
        layers += [_conv(in_ch, out_ch, kernel, stride), _norm(out_ch, styles), nn.ReLU()]
        super().__init__(*layers)


class _Residual(nn.Module):
    def __init__(self, ch: int, styles: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv(ch, ch, 3),
            _norm(ch, styles),
            nn.ReLU(),
            _conv(ch, ch, 3),
            _norm(ch, styles),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TransformerNet(nn.Module):
    size_multiple = 4

    def __init__(self, width: int = 32, blocks: int = 5, styles: int = 1) -> None:
        super().__init__()
        w = width
        self.styles = styles
        self.net = nn.Sequential(
            _ConvNormReLU(3, w, 9, styles),
            _ConvNormReLU(w, 2 * w, 3, styles, stride=2),
            _ConvNormReLU(2 * w, 4 * w, 3, styles, stride=2),
            *[_Residual(4 * w, styles) for _ in range(blocks)],
            _ConvNormReLU(4 * w, 2 * w, 3, styles, upsample=True),
            _ConvNormReLU(2 * w, w, 3, styles, upsample=True),
            _conv(w, 3, 9),
        )

    def forward(self, x: torch.Tensor, style: int = 0) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] -> (N, 3, H, W), in painting ``style`` (0 when there is one)."""
        if self.styles > 1:
            if not 0 <= style < self.styles:
                raise IndexError(f"style {style} of a {self.styles}-style network")
            for m in self.modules():
                if isinstance(m, ConditionalInstanceNorm):
                    m.style = style
        out: torch.Tensor = self.net(x)
        return out


def single_style(state: dict[str, torch.Tensor], style: int) -> dict[str, torch.Tensor]:
    """A multi-style TransformerNet's state dict -> painting ``style``'s, for ``styles = 1``
    (conditional norms' rows become instance norms' affine parameters)."""
    return {k: v[style].clone() if v.dim() == 2 else v for k, v in state.items()}


def join_styles(states: list[dict[str, torch.Tensor]], template: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of ``single_style``: one single-painting state dict per row of the
    multi-style ``template``'s conditional norms -> the multi-style state dict. The shared
    weights must agree: paintings exported by different runs cannot be joined."""
    rows = {v.shape[0] for v in template.values() if v.dim() == 2}
    if rows != {len(states)}:
        raise ValueError(f"{len(states)} paintings for a network of {sorted(rows)} styles")
    joined: dict[str, torch.Tensor] = {}
    for key, like in template.items():
        values = [s[key] for s in states]
        if like.dim() == 2:
            joined[key] = torch.stack(values)
        elif any(not torch.equal(v, values[0]) for v in values[1:]):
            raise ValueError(f"{key} differs between the paintings: they were not cut from one network")
        else:
            joined[key] = values[0]
    return joined


# -- AdaIN -----------------------------------------------------------------------------


def channel_stats(feat: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel mean and standard deviation over space: (N, C, 1, 1) each."""
    mean = feat.mean(dim=(2, 3), keepdim=True)
    std = (feat.var(dim=(2, 3), keepdim=True, unbiased=False) + eps).sqrt()
    return mean, std


def adain(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    c_mean, c_std = channel_stats(content)
    s_mean, s_std = channel_stats(style)
    return (content - c_mean) / c_std * s_std + s_mean


class AdaINDecoder(nn.Sequential):
    """Mirror of VGG16 up to relu4_1: convolutions with ReLU, nearest upsampling for pools."""

    def __init__(self) -> None:
        def cr(i: int, o: int) -> list[nn.Module]:
            return [_conv(i, o, 3), nn.ReLU()]

        up = nn.Upsample(scale_factor=2, mode="nearest")
        super().__init__(
            *cr(512, 256),
            up,
            *cr(256, 256),
            *cr(256, 256),
            *cr(256, 128),
            nn.Upsample(scale_factor=2, mode="nearest"),
            *cr(128, 128),
            *cr(128, 64),
            nn.Upsample(scale_factor=2, mode="nearest"),
            *cr(64, 64),
            _conv(64, 3, 3),
        )


class AdaINNet(nn.Module):
    """Encoder (frozen VGG16 to relu4_1), AdaIN and a trained decoder."""

    size_multiple = 8
    encoder_layer = "relu4_1"

    def __init__(self) -> None:
        super().__init__()
        self.encoder = VGG16Features(self.encoder_layer)
        self.decoder = AdaINDecoder()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x, {self.encoder_layer})[self.encoder_layer]

    def forward(self, content: torch.Tensor, style: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """content (N, 3, H, W), style (N, 3, h, w), alpha (N,) in [0, 1] -> (N, 3, H, W)."""
        fc = self.encode(content)
        target = adain(fc, self.encode(style))
        a = alpha.reshape(-1, 1, 1, 1)
        out: torch.Tensor = self.decoder(a * target + (1 - a) * fc)
        return out


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="reflect")
    return x, h, w
