"""``python -m training speed``: milliseconds per output megapixel of a shipped model, on
the engines this machine has, written into its card's ``speed`` list (with the graph's
convolution FLOPs per input pixel, ``Architecture.flops_per_pixel``).

ONNX Runtime runs the card's file through the worker's own loader (the CPU provider, and
CUDA where onnxruntime-gpu is installed); ``--torch`` adds PyTorch eager on a CUDA GPU
(fp32 and fp16 with channels-last: the RealESRGANer path), on the weights rebuilt from the
same file. One square random image per run, no tiling; the median of ``repeats`` runs
after two warm-ups. A figure replaces the card's earlier one for the same device, engine
and precision.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from imgenhance.cards import ModelCard, SpeedFigure, read_card, write_card
from imgenhance.onnx_cost import card_flops_per_pixel
from imgenhance.timing import median_seconds


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({_cores()} cores)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({_cores()} cores)"


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def median_ms(run: Callable[[], object], repeats: int, sync: Callable[[], None] | None = None) -> float:
    return 1000 * median_seconds(run, repeats, warmup=2, sync=sync)


def _input(card: ModelCard, side: int) -> np.ndarray:
    if card.task not in ("super-resolve", "denoise"):
        raise SystemExit(f"{card.id}: speed is measured for the pixel-to-pixel tasks (super-resolve, denoise)")
    channels = card.io.inputs[0].shape[1]
    return np.random.default_rng(0).random((1, channels, side, side), dtype=np.float32)


def onnxruntime_figures(card: ModelCard, path: Path, side: int, repeats: int, command: str) -> list[SpeedFigure]:
    import onnxruntime as ort

    from worker.runtime import load_model

    x = _input(card, side)
    out_mp = (side * card.scale) ** 2 / 1e6
    figures = []
    available = ort.get_available_providers()
    for provider in [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]:
        model = load_model(card, str(path), [provider], 0)
        ms = median_ms(lambda m=model: m(x), repeats)
        device = cpu_name() if provider == "CPUExecutionProvider" else _gpu_name()
        figures.append(_figure(device, f"onnxruntime {ort.__version__} {provider}", "fp32", side, ms / out_mp, command))
    return figures


def torch_figures(card_path: Path, side: int, repeats: int, command: str) -> list[SpeedFigure]:
    import torch

    from training.from_onnx import load_from_card

    if not torch.cuda.is_available():
        raise SystemExit("--torch measures PyTorch on a CUDA GPU, and none is visible")
    card = read_card(card_path)
    net = load_from_card(card_path).cuda().eval()
    x = torch.from_numpy(_input(card, side)).cuda()
    out_mp = (side * card.scale) ** 2 / 1e6
    figures = []
    for dtype, name in ((torch.float32, "fp32"), (torch.float16, "fp16")):
        model = net.to(dtype=dtype, memory_format=torch.channels_last)
        xx = x.to(dtype).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            ms = median_ms(lambda m=model, i=xx: m(i), repeats, torch.cuda.synchronize)
        engine = f"torch {torch.__version__} eager, channels-last"
        figures.append(_figure(_gpu_name(), engine, name, side, ms / out_mp, command))
    return figures


def _gpu_name() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return "CUDA GPU"


def _figure(device: str, engine: str, precision: str, side: int, ms_per_mp: float, command: str) -> SpeedFigure:
    return SpeedFigure(
        device=device,
        engine=engine,
        precision=precision,
        input_side=side,
        ms_per_output_mp=round(ms_per_mp, 2),
        measured_by=command,
        measured_at=datetime.now(UTC).replace(microsecond=0).isoformat(),
    )


def merged(card: ModelCard, figures: list[SpeedFigure]) -> ModelCard:
    """The card with ``figures`` replacing its earlier ones of the same device, engine and precision."""
    key = {(f.device, f.engine, f.precision) for f in figures}
    kept = [f for f in card.speed if (f.device, f.engine, f.precision) not in key]
    return card.model_copy(update={"speed": kept + figures})


def measure_speed(card_path: Path, side: int, repeats: int, with_torch: bool, write: bool, command: str) -> None:
    card = read_card(card_path)
    figures = onnxruntime_figures(card, card_path.parent / card.file, side, repeats, command)
    if with_torch:
        figures += torch_figures(card_path, side, repeats, command)
    for f in figures:
        print(
            f"{card.id}: {f.ms_per_output_mp:9.2f} ms per output MP  {f.engine} {f.precision} "
            f"on {f.device}, {side}px input"
        )
    flops = card_flops_per_pixel(card_path.parent / card.file, card.io.size_multiple)
    print(f"{card.id}: {card.architecture.params:,} parameters, {flops / 1e6:.2f} MFLOP per input pixel")
    if write:
        latest = read_card(card_path)
        architecture = latest.architecture.model_copy(update={"flops_per_pixel": flops})
        write_card(merged(latest, figures).model_copy(update={"architecture": architecture}), card_path)
        print(f"wrote {len(figures)} speed figure(s) and the FLOP count into {card_path}")
