"""Timing helpers shared by the benchmarks: medians of repeated runs after warm-up."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def timings(fn: Callable[[], object], repeats: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def describe(values: list[float], unit: float = 1e3, suffix: str = "ms") -> str:
    return (
        f"median {statistics.median(values) * unit:8.1f} {suffix}   p90 {percentile(values, 90) * unit:8.1f} {suffix}"
        f"   (n={len(values)})"
    )


def ort_providers(name: str) -> list[str]:
    """``--provider cuda`` or ``cpu`` as an ONNX Runtime provider list."""
    return ["CUDAExecutionProvider", "CPUExecutionProvider"] if name == "cuda" else ["CPUExecutionProvider"]
