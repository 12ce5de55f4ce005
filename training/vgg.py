"""VGG features: the loss network of style transfer and the SR perceptual loss.

Input is RGB in [0, 1]; the ImageNet normalisation is inside the module. Layer names
follow the papers (``relu2_2``, ``conv5_4``) and the ``features`` indices follow
torchvision, so torchvision-layout weights load as they are: the cached VGG16
(``training.pretrained``), or a local VGG19 file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

VGG16_CFG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
VGG19_CFG: list[int | str] = [
    *[64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M"],
    *[512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def layer_names(cfg: list[int | str]) -> list[str]:
    """conv1_1, relu1_1, conv1_2, relu1_2, pool1, conv2_1, ... (torchvision's order)."""
    names, block, conv = [], 1, 1
    for v in cfg:
        if v == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return names


def vgg16_layer_names() -> list[str]:
    return layer_names(VGG16_CFG)


class VGGFeatures(nn.Module):
    """torchvision's ``features`` of a VGG up to ``last_layer``, frozen, returning the named taps."""

    cfg: list[int | str] = VGG16_CFG

    def __init__(self, last_layer: str = "relu4_3") -> None:
        super().__init__()
        names = layer_names(self.cfg)
        if last_layer not in names:
            raise ValueError(f"unknown {type(self).__name__} layer {last_layer!r}; known: {names}")
        layers: list[nn.Module] = []
        in_ch = 3
        for v in self.cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(in_ch, int(v), 3, 1, 1), nn.ReLU(inplace=False)]
                in_ch = int(v)
        self.names = names[: names.index(last_layer) + 1]
        self.features = nn.Sequential(*layers[: len(self.names)])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False).eval()

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], last_layer: str = "relu4_3") -> VGGFeatures:
        vgg = cls(last_layer)
        own = vgg.features.state_dict()
        vgg.features.load_state_dict({k: torch.from_numpy(np.array(arrays[f"features.{k}"])) for k in own})
        return vgg

    def train(self, mode: bool = True) -> VGGFeatures:
        return super().train(False)  # a loss network never leaves eval mode

    def forward(self, x: torch.Tensor, layers: set[str]) -> dict[str, torch.Tensor]:
        out = {}
        x = (x - self.mean) / self.std
        for name, layer in zip(self.names, self.features, strict=True):
            x = layer(x)
            if name in layers:
                out[name] = x
                if len(out) == len(layers):
                    break
        return out


class VGG16Features(VGGFeatures):
    cfg = VGG16_CFG

    @classmethod
    def pretrained(cls, last_layer: str = "relu4_3", path: Path | None = None) -> VGGFeatures:
        """ImageNet weights from the cache (``python -m training weights fetch``)."""
        from training.pretrained import load_vgg16_arrays

        return cls.from_arrays(load_vgg16_arrays(path), last_layer)


class VGG19Features(VGGFeatures):
    cfg = VGG19_CFG
