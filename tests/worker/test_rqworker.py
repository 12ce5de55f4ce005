"""The worker's own loop rules, on a real Redis: it starts RQ's loop again after any end
that was not a stop request, waits for Redis rather than exiting, and registers again
when Redis forgot it."""

from __future__ import annotations

from typing import Any

import pytest
import redis as redis_lib
from redis import Redis
from rq import SimpleWorker
from rq.queue import Queue

from imgenhance.jobs import SERIALIZER
from worker.rqworker import InferenceWorker


def make_worker(connection: Redis) -> InferenceWorker:
    queue = Queue("super-resolve", connection=connection, serializer=SERIALIZER)
    return InferenceWorker([queue], connection=connection, serializer=SERIALIZER, name="test-worker")


def test_the_work_loop_restarts_after_an_unexpected_end_and_after_a_lost_connection(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = make_worker(redis)
    endings: list[str] = []

    def fake_work(self: InferenceWorker, burst: bool = False, **kwargs: Any) -> bool:
        # What RQ's loop does on an error it does not expect: log, break, return.
        endings.append(["returned", "connection-error", "stopped"][len(endings)])
        if endings[-1] == "connection-error":
            raise redis_lib.ConnectionError("Redis went away")
        if endings[-1] == "stopped":
            self._stop_requested = True
        return True

    monkeypatch.setattr(SimpleWorker, "work", fake_work)
    monkeypatch.setattr("worker.rqworker.time.sleep", lambda _: None)
    assert worker.work() is True
    assert endings == ["returned", "connection-error", "stopped"]


def test_a_signal_while_idle_ends_the_loop_for_good(redis: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    worker = make_worker(redis)
    calls = []
    monkeypatch.setattr("signal.signal", lambda *args: None)  # RQ would arm its handlers in pytest's process

    def fake_work(self: InferenceWorker, burst: bool = False, **kwargs: Any) -> bool:
        calls.append(1)
        with pytest.raises(Exception):  # noqa: B017 (RQ's StopRequested, raised when idle)
            self.request_stop(15, None)
        return False

    monkeypatch.setattr(SimpleWorker, "work", fake_work)
    assert worker.work() is False
    assert calls == [1]


def test_a_worker_redis_forgot_registers_again_at_its_heartbeat(redis: Redis) -> None:
    worker = make_worker(redis)
    worker.register_birth()  # type: ignore[no-untyped-call]
    assert redis.hexists(worker.key, "birth")
    redis.flushdb()  # a restart without persistence
    worker.heartbeat()
    assert redis.hexists(worker.key, "birth")
    assert worker.key.encode() in redis.smembers("rq:workers")
