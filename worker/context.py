"""What a job function needs from its worker process: settings, loaded models and a
Redis connection. RQ calls plain functions, so the worker installs this once at start
and jobs look it up."""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from imgenhance.settings import Settings
from worker.runtime import Runtime


@dataclass(frozen=True)
class WorkerContext:
    settings: Settings
    runtime: Runtime
    connection: Redis


_current: WorkerContext | None = None


def install(ctx: WorkerContext) -> None:
    global _current
    _current = ctx


def current() -> WorkerContext:
    assert _current is not None, "no worker context: start workers with worker.main.build_worker"
    return _current
