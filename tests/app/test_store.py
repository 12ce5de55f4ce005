"""The job store's admission on a real Redis, called from many threads at once (more
concurrency than HTTP clients on 2 cores can produce): limits hold exactly."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from redis import Redis, RedisError

from app.errors import InvalidParameter, QueueFull, TooManyActiveJobs
from app.ratelimit import Caller
from app.store import Idempotency, JobStore, PageCursor
from imgenhance import jobs
from imgenhance.jobs import JobMeta, JobStatus, UploadFacts
from imgenhance.params import SuperResolveParams
from imgenhance.settings import KeyLimits, Settings

PARAMS = SuperResolveParams(model="sr-compact-x4", scale=4, output_format="png")
UPLOADED = JobMeta(inputs={"image": UploadFacts(format="png", width=8, height=8, bytes=64)})  # as the routes write it


def admitted(store: JobStore, caller: Caller, attempts: int) -> list[str]:
    def submit(_: int) -> str:
        try:
            store.submit("super-resolve", PARAMS, {"image": b"x" * 64}, JobMeta(), caller)
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


def test_a_queued_job_does_not_expire_before_a_worker_can_fail_it(redis: Redis) -> None:
    """Its inputs expire with the data TTL; the job must stay for a worker to fail it
    visibly ("expired before a worker took the job") rather than vanish from the queue."""
    store = JobStore(redis, Settings(data_ttl_seconds=60))
    job_id, _ = store.submit("super-resolve", PARAMS, {"image": b"x" * 64}, JobMeta(), Caller("anonymous", KeyLimits()))
    assert redis.ttl(f"rq:job:{job_id}") == -1  # no expiry while queued
    assert 0 < redis.ttl(jobs.input_key(job_id, "image")) <= 60


def test_a_submit_that_fails_to_enqueue_leaves_nothing_behind(redis: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    """No inputs, no entry in the owner's list or active set, no idempotency record: a retry
    with the same key makes the job afresh instead of replaying one that never existed."""
    store = JobStore(redis, Settings())
    caller = Caller("ci", KeyLimits(max_active_jobs=3))
    key = Idempotency("retry-me", "fingerprint")

    def broken(*_: object, **__: object) -> None:
        raise RedisError("connection lost")

    monkeypatch.setattr(store, "_enqueue", broken)
    with pytest.raises(RedisError):
        store.submit("super-resolve", PARAMS, {"image": b"x" * 64}, JobMeta(), caller, key)
    assert redis.keys(f"{jobs.NAMESPACE}:input:*") == []
    assert redis.exists(key.redis_key("ci")) == 0
    assert redis.zcard(store._owned_key("ci")) == 0 and redis.scard(store._active_key("ci")) == 0
    monkeypatch.undo()
    job_id, replayed = store.submit("super-resolve", PARAMS, {"image": b"x" * 64}, JobMeta(), caller, key)
    assert not replayed and redis.lrange("rq:queue:super-resolve", 0, -1) == [job_id.encode()]


def test_a_submit_whose_bookkeeping_fails_leaves_no_queued_job(redis: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    """The client is told the submit failed (the error reaches it as a 503), so no job may be
    left queued to run behind its back, and its inputs are gone."""
    store = JobStore(redis, Settings())

    def broken(*_: object, **__: object) -> None:
        raise RedisError("connection lost")

    monkeypatch.setattr(store, "_remember", broken)
    with pytest.raises(RedisError):
        store.submit("super-resolve", PARAMS, {"image": b"x" * 64}, UPLOADED, Caller("anonymous", KeyLimits()))
    assert redis.llen("rq:queue:super-resolve") == 0
    assert redis.keys(f"{jobs.NAMESPACE}:input:*") == [] and redis.keys("rq:job:*") == []


def test_cancel_of_a_job_a_worker_just_took_asks_the_worker_to_stop(redis: Redis) -> None:
    """The status still says queued but the id has left the queue: the job is running, so it
    is not marked canceled under the worker, and its inputs stay until the worker stops."""
    store = JobStore(redis, Settings())
    caller = Caller("anonymous", KeyLimits())
    job_id, _ = store.submit("super-resolve", PARAMS, {"image": b"x" * 64}, UPLOADED, caller)
    assert redis.lpop("rq:queue:super-resolve") == job_id.encode()  # a worker's dequeue
    view = store.cancel(job_id, caller)
    assert view.status is JobStatus.QUEUED
    assert redis.get(jobs.cancel_key(job_id)) == b"1"
    assert redis.exists(jobs.input_key(job_id, "image")) == 1


def test_cancel_of_a_queued_job_takes_it_off_the_queue(redis: Redis) -> None:
    store = JobStore(redis, Settings())
    caller = Caller("anonymous", KeyLimits())
    job_id, _ = store.submit("super-resolve", PARAMS, {"image": b"x" * 64}, UPLOADED, caller)
    assert store.cancel(job_id, caller).status is JobStatus.CANCELED
    assert redis.llen("rq:queue:super-resolve") == 0
    assert redis.exists(jobs.input_key(job_id, "image")) == 0 and redis.exists(jobs.cancel_key(job_id)) == 0


def test_paging_neither_skips_nor_repeats_jobs_made_in_the_same_instant(redis: Redis) -> None:
    """Five of seven jobs share a creation time (replicas admitting at once, a coarse
    clock): pages of two must still give each job exactly once, newest first."""
    store, caller = JobStore(redis, Settings()), Caller("ci", KeyLimits())
    made = [store.submit("super-resolve", PARAMS, {"image": b"x" * 64}, JobMeta(), caller)[0] for _ in range(7)]
    index = f"{jobs.NAMESPACE}:jobs:ci"
    redis.zadd(index, {job_id: 1000.0 for job_id in made[1:6]} | {made[0]: 999.0, made[6]: 1001.0})
    seen, cursor, pages = [], None, 0
    while True:
        page, cursor = store.owned(caller, 2, cursor)
        seen += [view.id for view in page]
        pages += 1
        if cursor is None:
            break
    tied_newest_first = sorted(made[1:6], reverse=True)  # Redis orders equal scores by member
    assert seen == [made[6], *tied_newest_first, made[0]]
    assert pages == 4


def test_a_page_cursor_is_read_back_exactly_and_a_forged_one_is_refused() -> None:
    cursor = PageCursor(1764032000.1234567, "0123abcd")
    assert PageCursor.parse(str(cursor)) == cursor
    for forged in ("1764032000.5", "nan:abc", "inf:abc", "1.0:", "1.0:a b", "x:abc"):
        with pytest.raises(InvalidParameter):
            PageCursor.parse(forged)


def test_a_job_canceled_while_queued_expires_like_a_finished_one_and_says_when_it_ended(redis: Redis) -> None:
    """Queued jobs keep no expiry, and RQ never cleans its canceled registry: without
    this, a job canceled in the queue stayed in Redis, listed and 200, forever."""
    store, caller = JobStore(redis, Settings(data_ttl_seconds=60)), Caller("ci", KeyLimits())
    job_id, _ = store.submit("super-resolve", PARAMS, {"image": b"x" * 64}, UPLOADED, caller, Idempotency("k", "f"))
    view = store.cancel(job_id, caller)
    assert view.status is JobStatus.CANCELED and view.finished_at is not None
    assert 0 < redis.ttl(f"rq:job:{job_id}") <= 60
    assert redis.zcard("rq:canceled:super-resolve") == 0
    assert 0 < redis.ttl(Idempotency("k", "f").redis_key("ci")) <= 60  # the record now ends with the job
    assert redis.keys(f"{jobs.NAMESPACE}:input:*") == []


def test_a_keys_records_of_a_queued_job_outlive_the_data_ttl_as_the_job_does(redis: Redis) -> None:
    """With no worker for longer than the data TTL, the queued jobs still count against
    the key's active limit, are still listed, and a retry with the same Idempotency-Key
    still finds its job instead of making a second one."""
    store, caller = JobStore(redis, Settings(data_ttl_seconds=1)), Caller("ci", KeyLimits(max_active_jobs=2))
    first, _ = store.submit("super-resolve", PARAMS, {"image": b"x" * 64}, JobMeta(), caller, Idempotency("k", "f"))
    store.submit("super-resolve", PARAMS, {"image": b"x" * 64}, JobMeta(), caller)
    time.sleep(1.6)
    with pytest.raises(TooManyActiveJobs):
        store.submit("super-resolve", PARAMS, {"image": b"x" * 64}, JobMeta(), caller)
    page, _ = store.owned(caller, 10, None)
    assert len(page) == 2
    assert store.submit("super-resolve", PARAMS, {"image": b"y" * 64}, JobMeta(), caller, Idempotency("k", "f")) == (
        first,
        True,
    )
