"""Generator architectures by name: the one table that maps a checkpoint's
``arch.name`` to the class that rebuilds it."""

from __future__ import annotations

from typing import Any

from torch import nn

from training.archs.discriminators import UNetDiscriminatorSN, VGGStyleDiscriminator
from training.archs.gan import Generator
from training.archs.rrdb import RRDBNet
from training.archs.srvgg import SRVGGNetCompact
from training.archs.style import AdaINNet, TransformerNet
from training.archs.unet import DenoiseUNet

ARCHS: dict[str, type[nn.Module]] = {
    "SRVGGNetCompact": SRVGGNetCompact,
    "RRDBNet": RRDBNet,
    "DenoiseUNet": DenoiseUNet,
    "TransformerNet": TransformerNet,
    "AdaINNet": AdaINNet,
    "Generator": Generator,
}
DISCRIMINATORS: dict[str, type[nn.Module]] = {
    "VGGStyleDiscriminator": VGGStyleDiscriminator,
    "UNetDiscriminatorSN": UNetDiscriminatorSN,
}


# Each class names its scale argument after its upstream; this keeps that in one place.
SCALE_ARG = {"SRVGGNetCompact": "upscale", "RRDBNet": "scale"}


class UnknownArchitecture(ValueError):
    pass


def _known(name: str, table: dict[str, type[nn.Module]], what: str = "architecture") -> type[nn.Module]:
    if name not in table:
        raise UnknownArchitecture(f"unknown {what} {name!r}; known: {sorted(table)}")
    return table[name]


def full_args(name: str, args: dict[str, Any], scale: int) -> dict[str, Any]:
    """The constructor arguments with the scale filled in, as checkpoints store them."""
    _known(name, ARCHS)
    if name not in SCALE_ARG:
        if scale != 1:
            raise ValueError(f"{name} does not upscale; use scale = 1")
        return dict(args)
    return {**args, SCALE_ARG[name]: scale}


def build_discriminator(name: str, args: dict[str, Any]) -> nn.Module:
    return _known(name, DISCRIMINATORS, "discriminator")(**args)


def build(name: str, args: dict[str, Any]) -> nn.Module:
    return _known(name, ARCHS)(**args)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def size_multiple(name: str, args: dict[str, Any]) -> int:
    """Input sides must be multiples of this (RRDBNet pixel-unshuffles at x2 and x1)."""
    if name == "RRDBNet":
        return {4: 1, 2: 2, 1: 4}[args.get("scale", 4)]
    if name in ("DenoiseUNet", "TransformerNet"):
        return 4
    if name == "AdaINNet":
        return 8
    return 1


def input_channels(name: str, args: dict[str, Any]) -> int:
    """Channels the exported graph takes: RGB, plus the level map for DenoiseUNet."""
    return int(args.get("num_in_ch", 3)) + (1 if name == "DenoiseUNet" else 0)


def receptive_radius(name: str, args: dict[str, Any]) -> int:
    """Low-resolution pixels of context each side that a tile needs to match the
    untiled output; the worker's tiler uses at least this much overlap."""
    if name == "SRVGGNetCompact":
        return SRVGGNetCompact.receptive_radius(args.get("num_conv", 16))
    if name == "DenoiseUNet":
        return 64  # two halvings, 4 convs per stage: far past what tiles need
    if name in ("TransformerNet", "AdaINNet", "Generator"):
        return 0  # never tiled: style networks use whole-image statistics; generators take no image
    # RRDB: 5 convs per RDB, 3 RDBs per block, plus the head and tail convs;
    # the effective field is far smaller than this bound, so cap it.
    return min(64, 15 * args.get("num_block", 23) + 6)
