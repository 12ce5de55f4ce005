"""Wall-clock timing of a call, shared by the worker's engine choice, the benches and
the speed figures that training writes into cards, so that all of them count the same
thing: untimed warm-up calls first (allocations, kernel selection), then one clock
reading per call, taken after ``sync`` (a GPU's queue drained)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def run_times(
    fn: Callable[[], object], repeats: int, warmup: int = 1, sync: Callable[[], None] | None = None
) -> list[float]:
    """Seconds taken by each of ``repeats`` calls of ``fn``, after ``warmup`` untimed ones."""
    drain = sync or (lambda: None)
    for _ in range(warmup):
        fn()
    drain()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        drain()
        times.append(time.perf_counter() - start)
    return times


def median_seconds(
    fn: Callable[[], object], repeats: int, warmup: int = 1, sync: Callable[[], None] | None = None
) -> float:
    """The median of ``run_times``: one slow call (a page fault, another process) moves it little."""
    return statistics.median(run_times(fn, repeats, warmup, sync))
