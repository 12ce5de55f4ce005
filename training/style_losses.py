"""The losses of style transfer, on the one VGG16 loss network every method shares.

Johnson / Gatys protocol (also what evaluation compares):
- content loss: mean squared error of ``relu2_2`` features (output vs content image);
- style loss: sum over ``relu1_2, relu2_2, relu3_3, relu4_3`` of the mean squared
  error between Gram matrices, each Gram normalised by C x H x W, the painting's
  taken at ``style_size`` (its longer side);
- total variation (optional), a smoothness prior.

AdaIN (Huang & Belongie): content loss against the AdaIN target at ``relu4_1``; style
loss on channel means and standard deviations at ``relu1_1 .. relu4_1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from training.archs.style import channel_stats
from training.vgg import VGG16Features

# The weights of the Gram objective: what the named-style networks are trained with, and
# what Gatys's reference optimises when a model is evaluated. Johnson et al. use 1e5 / 1e10
# for tens of thousands of steps; a short run keeps the content with 4x the content weight.
GRAM_CONTENT_WEIGHT = 4e5
GRAM_STYLE_WEIGHT = 1e10
CONTENT_LAYER = "relu2_2"
STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
ADAIN_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


def gram(feat: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, C), normalised by C x H x W; in fp32 under autocast, since
    the style loss is a small difference of sums over thousands of bf16 products."""
    n, c, h, w = feat.shape
    with torch.autocast(feat.device.type, enabled=False):
        f = feat.float().reshape(n, c, h * w)
        return f @ f.transpose(1, 2) / (c * h * w)


def total_variation(x: torch.Tensor) -> torch.Tensor:
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


@dataclass(frozen=True)
class StyleTerms:
    """Unweighted losses of one batch (means over the batch)."""

    content: torch.Tensor
    style: torch.Tensor
    tv: torch.Tensor

    def total(self, content_weight: float, style_weight: float, tv_weight: float) -> torch.Tensor:
        return content_weight * self.content + style_weight * self.style + tv_weight * self.tv

    def as_floats(self) -> dict[str, float]:
        return {"content": self.content.item(), "style": self.style.item(), "tv": self.tv.item()}


class GramStyleLoss:
    """Content and Gram-style losses of outputs against a content batch and one painting."""

    def __init__(self, vgg: VGG16Features, style: torch.Tensor) -> None:
        """``style``: (1, 3, h, w) in [0, 1], already at the size its statistics are taken."""
        self.vgg = vgg
        with torch.no_grad():
            feats = vgg(style, set(STYLE_LAYERS))
            self.targets = {k: gram(v) for k, v in feats.items()}

    def content_features(self, content: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.vgg(content, {CONTENT_LAYER})[CONTENT_LAYER]

    def terms(self, output: torch.Tensor, content_feat: torch.Tensor) -> StyleTerms:
        feats = self.vgg(output, {CONTENT_LAYER, *STYLE_LAYERS})
        content = F.mse_loss(feats[CONTENT_LAYER], content_feat)
        style = sum(
            (F.mse_loss(gram(feats[k]), self.targets[k].expand(output.shape[0], -1, -1)) for k in STYLE_LAYERS),
            torch.zeros((), device=output.device),
        )
        return StyleTerms(content, style, total_variation(output))


class AdaINLoss:
    """The losses AdaIN's decoder is trained with; ``gram_weight`` adds the Gram style loss
    of the evaluation (relu1_2..relu4_3, each output against its own style sample), which
    mean and std alone do not pin down: textures live in the channels' correlations."""

    def __init__(self, vgg: VGG16Features, gram_weight: float = 0.0) -> None:
        self.vgg = vgg
        self.gram_weight = gram_weight

    def terms(self, output: torch.Tensor, target: torch.Tensor, style: torch.Tensor) -> StyleTerms:
        """``target``: the AdaIN features the decoder was given; ``style``: the style batch."""
        gram_layers = STYLE_LAYERS if self.gram_weight else ()
        layers = {*ADAIN_STYLE_LAYERS, *gram_layers}
        out = self.vgg(output, layers)
        with torch.no_grad():
            ref = self.vgg(style, layers)
        content = F.mse_loss(out["relu4_1"], target)
        style_loss = torch.zeros((), device=output.device)
        for k in ADAIN_STYLE_LAYERS:
            (om, os), (rm, rs) = channel_stats(out[k]), channel_stats(ref[k])
            style_loss = style_loss + F.mse_loss(om, rm) + F.mse_loss(os, rs)
        for k in gram_layers:
            style_loss = style_loss + self.gram_weight * F.mse_loss(gram(out[k]), gram(ref[k]))
        return StyleTerms(content, style_loss, total_variation(output))
