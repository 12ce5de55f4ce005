"""The one timing helper the worker, the benches and training's speed figures share."""

from __future__ import annotations

import pytest

from imgenhance import timing
from imgenhance.timing import run_times


def test_warm_up_calls_are_not_timed_and_every_timed_call_is_synced_before_the_clock_stops() -> None:
    calls: list[str] = []
    times = run_times(lambda: calls.append("run"), repeats=3, warmup=2, sync=lambda: calls.append("sync"))
    assert len(times) == 3 and all(t >= 0 for t in times)
    assert calls == ["run", "run", "sync"] + ["run", "sync"] * 3


def test_the_median_ignores_one_slow_call(monkeypatch: pytest.MonkeyPatch) -> None:
    # clock readings as (start, end) per timed call: 5 s, then 1, 2 and 3 ms
    readings = iter([0.0, 5.0, 10.0, 10.001, 20.0, 20.002, 30.0, 30.003])
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(readings))
    assert timing.median_seconds(lambda: None, repeats=4, warmup=0) == pytest.approx(0.0025)
