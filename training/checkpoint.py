"""Checkpoints that carry their config, so a loader rebuilds the model without guessing.

A ``Checkpoint`` is saved as a plain dict, loadable with
``torch.load(weights_only=True)`` (tensors and containers only, never code)::

    format      "imgenhance-ckpt/1"
    config      the run's TrainConfig or StyleConfig, as a dict
    arch        {"name": ..., "args": {...}}   constructor arguments, scale included
    params      generator state dict (BasicSR / Real-ESRGAN key names)
    params_ema  EMA of the generator weights: what export uses
    step, history, best, command, device, torch, perceptual, data_terms
    optimizer   (and discriminator, optimizer_d) only in ``last.pt``, for resume
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training import archs

FORMAT = "imgenhance-ckpt/1"


def _save(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # never leave a half-written checkpoint behind


StateDict = dict[str, torch.Tensor]


@dataclass(frozen=True)
class ArchSpec:
    name: str  # key of training.archs.ARCHS
    args: dict[str, Any]  # constructor arguments, scale included

    def build(self) -> nn.Module:
        return archs.build(self.name, self.args)

    @property
    def size_multiple(self) -> int:
        return archs.size_multiple(self.name, self.args)


@dataclass
class Checkpoint:
    """What a training run saves, and what ``export`` and ``eval`` read back.

    Stored as a plain dict (``to_dict``) so ``torch.load(weights_only=True)`` reads it;
    ``optimizer`` (and a GAN's ``discriminator`` / ``optimizer_d``) only in ``last.pt``.
    """

    config: dict[str, Any]  # the run's config (TrainConfig or StyleConfig) as a dict
    arch: ArchSpec
    params: StateDict
    params_ema: StateDict | None = None
    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best: dict[str, float] = field(default_factory=dict)
    command: str = ""
    device: str = ""
    torch: str = field(default_factory=lambda: str(torch.__version__))
    perceptual: str = "none"
    data_terms: str = ""
    optimizer: dict[str, Any] | None = None
    discriminator: StateDict | None = None
    optimizer_d: dict[str, Any] | None = None

    @property
    def task(self) -> str:
        return str(self.config.get("task", "super-resolve"))

    @property
    def elapsed(self) -> float:
        return float(self.history[-1].get("elapsed", 0.0)) if self.history else 0.0

    def generator(self, use_ema: bool = True) -> nn.Module:
        model = self.arch.build()
        model.load_state_dict(self.params_ema if use_ema and self.params_ema is not None else self.params)
        return model.eval()

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["arch"] = {"name": self.arch.name, "args": self.arch.args}
        return {"format": FORMAT, **{k: v for k, v in out.items() if v is not None}}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "checkpoint") -> Checkpoint:
        if data.get("format") != FORMAT:
            raise CheckpointError(f"{source} is not an imgenhance checkpoint (use `import` for others)")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        try:
            values["arch"] = ArchSpec(data["arch"]["name"], dict(data["arch"]["args"]))
            return cls(**values)
        except (KeyError, TypeError) as exc:
            raise CheckpointError(f"{source} is damaged or from another version: {exc}") from exc

    def save(self, path: Path) -> None:
        _save(path, self.to_dict())

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        return cls.from_dict(torch.load(path, map_location="cpu", weights_only=True), str(path))


class CheckpointError(ValueError):
    pass
