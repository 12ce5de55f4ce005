"""Timing helpers shared by the benchmarks: medians of repeated runs after warm-up."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

from imgenhance.timing import run_times


def timings(fn: Callable[[], object], repeats: int, warmup: int = 1) -> list[float]:
    return run_times(fn, repeats, warmup)


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


def wait_for_quiet(limit: float = 1.0, poll: float = 15.0, max_wait: float = 600.0) -> float:
    """Wait (up to ``max_wait`` s) until the 1-minute load average is below ``limit``, since the
    benchmark machines are shared; returns the load average it starts at. Print it with the figures."""
    deadline = time.monotonic() + max_wait
    while os.getloadavg()[0] >= limit and time.monotonic() < deadline:
        time.sleep(poll)
    load = os.getloadavg()[0]
    if load >= limit:
        print(f"(load average still {load:.2f} after {max_wait:.0f} s: measuring anyway)")
    return load


def interleaved(
    fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 1, gap: float = 0.05
) -> dict[str, list[float]]:
    """Seconds per call of each function, taken in turns (A B C A B C ...) so that a change in
    the machine's load hits every engine alike. ``gap``: a pause before each call, so that
    threads one engine leaves spinning do not slow the next."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    out: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            time.sleep(gap)
            start = time.perf_counter()
            fn()
            out[name].append(time.perf_counter() - start)
    return out
