"""What every training loop here shares: the EMA of weights, the learning-rate schedule,
the optimiser choice, and the step-or-time budget."""

from __future__ import annotations

import collections
import copy
import json
import logging
import math
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn


class EMA:
    """Exponential moving average of a model's parameters (buffers copied as-is)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float | None = None) -> None:
        keep = self.decay if decay is None else decay
        # one multi-tensor kernel, not one per tensor: a 23-block RRDBNet has 700 of them,
        # and their launches cost 12 ms a step on an H100 (the step itself: 180 ms)
        torch._foreach_lerp_(list(self.model.parameters()), [p.detach() for p in model.parameters()], 1 - keep)
        for ema_b, b in zip(self.model.buffers(), model.buffers(), strict=True):
            ema_b.copy_(b)


def cpu_has_bf16() -> bool:
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def use_bf16(device: torch.device, wanted: bool) -> bool:
    """Whether a run that asks for bf16 autocast (``amp``) gets it: on CUDA, or on a CPU with
    bf16 instructions (AVX512-BF16 or AMX; there a style step takes 0.7x the fp32 time).
    Elsewhere bf16 would be emulated, slower than fp32, so the run stays fp32 and says so
    (once: callers decide at the start of the run and pass the answer to torch.autocast)."""
    usable = device.type == "cuda" or (device.type == "cpu" and cpu_has_bf16())
    if wanted and not usable:
        logging.getLogger("training").warning("amp: this %s has no bf16 instructions; training in fp32", device)
    return wanted and usable


class SpikeClip:
    """Clips the gradient norm to ``factor`` x the median of the last ``window`` steps' norms:
    one bad batch (a saturated output whose Gram loss is 1e4 times the usual) then moves
    the weights no further than a usual step does. Scale-free, so no norm has to be known
    in advance. ``factor = 0`` turns it off."""

    def __init__(self, factor: float, window: int = 200) -> None:
        self.factor = factor
        self.norms: collections.deque[float] = collections.deque(maxlen=window)

    def __call__(self, params: list[nn.Parameter]) -> bool:
        """Clip in place; True when this step was clipped."""
        if not self.factor:
            return False
        limit = self.factor * statistics.median(self.norms) if len(self.norms) >= 20 else math.inf
        norm = float(torch.nn.utils.clip_grad_norm_(params, limit))
        self.norms.append(min(norm, limit))
        return norm > limit


def cosine_lr(base: float, minimum: float, progress: float) -> float:
    return minimum + 0.5 * (base - minimum) * (1 + math.cos(math.pi * min(progress, 1.0)))


def make_optimizer(kind: str, params: Any, lr: float, betas: tuple[float, float]) -> torch.optim.Optimizer:
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    return torch.optim.Adam(params, lr=lr, betas=betas)


def start_run(config: dict[str, Any], out_dir: Path, device: str, seed: int, threads: int = 0) -> torch.device:
    """Seed, threads and the run folder (with the config that made it) for a training run."""
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    torch.backends.cudnn.benchmark = dev.type == "cuda"  # fixed shapes: let cuDNN pick kernels
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.json").write_text(json.dumps(config, indent=2))
    return dev


class Budget:
    """How far a run is, as the larger of steps done and time used (a minutes budget of 0 = none).
    A run of 0 steps is done before it starts: it only writes its starting weights."""

    def __init__(self, steps: int, minutes: float, elapsed_before: float = 0.0) -> None:
        self.steps, self.seconds = steps, minutes * 60
        self.clock = time.monotonic() - elapsed_before

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.clock

    def fraction(self, step: int) -> float:
        if self.steps <= 0:
            return 1.0
        return max(step / self.steps, self.elapsed / self.seconds if self.seconds else 0.0)
