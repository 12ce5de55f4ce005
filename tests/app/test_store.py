"""The job store's admission on a real Redis, called from many threads at once (more
concurrency than HTTP clients on 2 cores can produce): limits hold exactly."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from redis import Redis

from app.errors import QueueFull, TooManyActiveJobs
from app.ratelimit import Caller
from app.store import JobStore
from imgenhance.params import SuperResolveParams
from imgenhance.settings import KeyLimits, Settings

PARAMS = SuperResolveParams(model="sr-compact-x4", scale=4, output_format="png")


def admitted(store: JobStore, caller: Caller, attempts: int) -> list[str]:
    def submit(_: int) -> str:
        try:
            store.submit("super-resolve", PARAMS, {"image": b"x" * 64}, {}, caller)
            return "admitted"
        except (QueueFull, TooManyActiveJobs) as exc:
            return type(exc).__name__

    with ThreadPoolExecutor(64) as pool:
        return list(pool.map(submit, range(attempts)))


def test_the_queue_limit_holds_exactly_under_concurrent_submits(redis: Redis) -> None:
    store = JobStore(redis, Settings(max_queue_length=50))
    outcomes = admitted(store, Caller("anonymous", KeyLimits()), 300)
    assert outcomes.count("admitted") == 50 and set(outcomes) == {"admitted", "QueueFull"}
    assert redis.llen("rq:queue:super-resolve") == 50


def test_the_active_job_limit_holds_exactly_under_concurrent_submits(redis: Redis) -> None:
    store = JobStore(redis, Settings())
    outcomes = admitted(store, Caller("ci", KeyLimits(max_active_jobs=7)), 100)
    assert outcomes.count("admitted") == 7 and set(outcomes) == {"admitted", "TooManyActiveJobs"}
