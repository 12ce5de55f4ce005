"""Community checkpoints -> our checkpoint layout, ready for ONNX export and a card.

Accepted: ESRGAN / Real-ESRGAN ``RRDBNet`` (BasicSR key names, or the older ESRGAN
style ``model.0``, ``model.1.sub.N.RDBk.convj.0``, ...) and Real-ESRGAN
``SRVGGNetCompact`` (``body.N``), as ``.pth`` (loaded with ``weights_only=True``:
tensors and plain containers only, never arbitrary pickled objects) or
``.safetensors``. Wrapped state dicts (``params_ema``, preferred, then ``params``,
``state_dict``) are unwrapped. The architecture's arguments are read from tensor shapes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from training.checkpoint import ArchSpec, Checkpoint

StateDict = dict[str, torch.Tensor]
WRAPPERS = ("params_ema", "params", "state_dict", "model")


class UnsupportedCheckpoint(ValueError):
    pass


def load_state_dict(path: Path) -> StateDict:
    if Path(path).suffix == ".safetensors":
        from safetensors.torch import load_file

        state: Any = load_file(str(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickled objects beyond tensors and containers are refused
            raise UnsupportedCheckpoint(
                f"{Path(path).name} is not a plain weights file (it would need arbitrary unpickling, which is "
                f"refused): {str(exc).splitlines()[0]}"
            ) from exc
    for key in WRAPPERS:
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UnsupportedCheckpoint(f"{Path(path).name} holds no state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def from_old_esrgan(state: StateDict) -> StateDict:
    """The 2018 ESRGAN key style (x4 only) -> BasicSR names."""
    subs = [int(m.group(1)) for k in state if (m := re.match(r"model\.1\.sub\.(\d+)\.weight$", k))]
    trunk = max(subs) if subs else -1
    fixed = {
        "model.0": "conv_first",
        "model.3": "conv_up1",
        "model.6": "conv_up2",
        "model.8": "conv_hr",
        "model.10": "conv_last",
        f"model.1.sub.{trunk}": "conv_body",
    }
    out: StateDict = {}
    for key, value in state.items():
        if m := re.match(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)$", key):
            out[f"body.{m.group(1)}.rdb{m.group(2)}.conv{m.group(3)}.{m.group(4)}"] = value
            continue
        prefix, _, param = key.rpartition(".")
        if prefix not in fixed:
            raise UnsupportedCheckpoint(f"unexpected key {key!r} for an old-style ESRGAN checkpoint")
        out[f"{fixed[prefix]}.{param}"] = value
    return out


def infer_arch(state: StateDict) -> tuple[str, dict[str, Any]]:
    if "conv_first.weight" in state:
        blocks = {int(m.group(1)) for k in state if (m := re.match(r"body\.(\d+)\.rdb1\.conv1\.weight$", k))}
        first = state["conv_first.weight"]
        scale = {3: 4, 12: 2, 48: 1}.get(first.shape[1])
        if scale is None:
            raise UnsupportedCheckpoint(f"RRDBNet with {first.shape[1]} input channels: not a 3-channel x1/x2/x4 model")
        return "RRDBNet", {
            "num_in_ch": 3,
            "num_out_ch": state["conv_last.weight"].shape[0],
            "scale": scale,
            "num_feat": first.shape[0],
            "num_block": len(blocks),
            "num_grow_ch": state["body.0.rdb1.conv1.weight"].shape[0],
        }
    if "body.0.weight" in state:
        convs = sorted(
            int(m.group(1)) for k, v in state.items() if (m := re.match(r"body\.(\d+)\.weight$", k)) and v.dim() == 4
        )
        last = state[f"body.{convs[-1]}.weight"]
        upscale = round((last.shape[0] / 3) ** 0.5)
        act = "prelu" if "body.1.weight" in state else "leakyrelu"
        return "SRVGGNetCompact", {
            "num_in_ch": state["body.0.weight"].shape[1],
            "num_out_ch": 3,
            "num_feat": state["body.0.weight"].shape[0],
            "num_conv": len(convs) - 2,
            "upscale": upscale,
            "act_type": act,
        }
    raise UnsupportedCheckpoint("not an RRDBNet or SRVGGNetCompact checkpoint (no conv_first / body.0 weights)")


def to_checkpoint(path: Path, task: str, command: str) -> Checkpoint:
    state = load_state_dict(path)
    if any(k.startswith("model.1.sub.") for k in state):
        state = from_old_esrgan(state)
    name, args = infer_arch(state)
    arch = ArchSpec(name, args)
    model = arch.build()
    model.load_state_dict(state)  # strict: every key must match
    scale = args.get("scale", args.get("upscale", 1))
    return Checkpoint(
        config={
            "task": task,
            "scale": scale,
            "train_sets": [f"imported from {Path(path).name}"],
            "eval_sets": ["Set5", "Set14"],
            "stage": "imported",
        },
        arch=arch,
        params=model.state_dict(),
        params_ema=model.state_dict(),
        command=command,
        device="n/a (imported)",
        data_terms=f"Imported from {Path(path).name}: the original model's training data and license apply.",
    )
