"""Losses: pixel (L1 / Charbonnier), perceptual (VGG19 features), adversarial.

Perceptual loss needs VGG19 weights, and nothing is downloaded at run time. Pass a
local file: torchvision's ``vgg19-dcbedf0e.pth`` (ImageNet, keys ``features.N.*``) or
any state dict with those keys. Without one, ``fallback="random"`` uses a VGG19 with
fixed random weights (seed 0). Random conv features still measure multi-scale
structure and texture statistics, but weaker than ImageNet features do. The run logs
that it used the fallback, and the model card records it. ``fallback="refuse"``
stops instead.

GAN losses, selectable by name: ``vanilla`` (BCE), ``lsgan``, ``hinge``, ``wgan-gp``
and ``ragan`` (relativistic average, ESRGAN's).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger("training")

GAN_TYPES = ("vanilla", "lsgan", "hinge", "wgan-gp", "ragan")


def pixel_loss(kind: str, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if kind == "charbonnier":
        return torch.sqrt((pred - target) ** 2 + 1e-6).mean()
    return F.l1_loss(pred, target)


# -- perceptual --------------------------------------------------------------------

_VGG19 = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]


def _vgg19_layer_names() -> list[str]:
    """Names of torchvision's vgg19().features entries: conv1_1, relu1_1, ..., pool5."""
    names, block, conv = [], 1, 1
    for v in _VGG19:
        if v == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return names


class VGG19Features(nn.Module):
    """torchvision's VGG19 ``features`` with the same indices, so its weights load."""

    def __init__(self, last_layer: str) -> None:
        super().__init__()
        names = _vgg19_layer_names()
        layers: list[nn.Module] = []
        in_ch = 3
        for v in _VGG19:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(in_ch, int(v), 3, 1, 1), nn.ReLU(inplace=False)]
                in_ch = int(v)
        self.names = names[: names.index(last_layer) + 1]
        self.features = nn.Sequential(*layers[: len(self.names)])
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, layers: set[str]) -> dict[str, torch.Tensor]:
        out = {}
        x = (x - self.mean) / self.std
        for name, layer in zip(self.names, self.features, strict=True):
            x = layer(x)
            if name in layers:
                out[name] = x
        return out


def load_vgg19(weights: Path | None, last_layer: str, fallback: str) -> tuple[VGG19Features, str]:
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


class PerceptualLoss(nn.Module):
    """Weighted L1 between VGG19 features of prediction and target (ESRGAN uses
    features before activation; Real-ESRGAN uses conv1_2 ... conv5_4)."""

    def __init__(self, layer_weights: dict[str, float], weights: Path | None, fallback: str = "refuse") -> None:
        super().__init__()
        order = _vgg19_layer_names()
        last = max(layer_weights, key=order.index)
        self.vgg, self.source = load_vgg19(weights, last, fallback)
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
