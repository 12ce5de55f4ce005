"""Checkpoints that carry their config, so a loader rebuilds the model without guessing.

Layout (a plain dict, loadable with ``torch.load(weights_only=True)``)::

    format      "imgenhance-ckpt/1"
    config      TrainConfig as a dict
    arch        {"name": ..., "args": {...}}   constructor arguments, scale included
    params      generator state dict (BasicSR / Real-ESRGAN key names)
    params_ema  EMA of the generator weights: what export uses
    step, history, best, command, device, torch
    optimizer   only in ``last.pt`` (for resume)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from training import archs

FORMAT = "imgenhance-ckpt/1"


def save(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"format": FORMAT, **state}, tmp)
    tmp.replace(path)  # never leave a half-written checkpoint behind


def load(path: Path) -> dict[str, Any]:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    assert ckpt.get("format") == FORMAT, f"{path} is not an imgenhance checkpoint (use `import` for others)"
    return ckpt


def build_generator(ckpt: dict[str, Any], use_ema: bool = True) -> nn.Module:
    model = archs.build(ckpt["arch"]["name"], ckpt["arch"]["args"])
    key = "params_ema" if use_ema and "params_ema" in ckpt else "params"
    model.load_state_dict(ckpt[key])
    return model.eval()
