"""The job function RQ runs: ``run_job(task, params)`` (``imgenhance.jobs.ENTRYPOINT``).

Uploads come from Redis under the job's input keys, the task's pipeline turns them
into a picture, the encoded result goes back under the result key, progress and
timings go into the job's ``JobMeta``, and a ``JobResult`` is what RQ stores as the return value.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import redis
from redis import Redis
from rq import get_current_job
from rq.job import Job
from rq.timeouts import JobTimeoutException

from imgenhance.jobs import JobArguments, JobCanceled, JobError, JobMeta, cancel_key, publish, result_key
from imgenhance.params import JobResult
from worker import context, metrics
from worker.codec import Encoded, encode
from worker.inputs import RedisInputs
from worker.pipelines import PIPELINES, TileSettings

log = logging.getLogger("imgenhance.worker")


class ProgressReporter:
    """Stores progress in the job's ``JobMeta`` (at most every ``interval`` s) and announces it;
    between tile batches it honours a cancel request. Without Redis the job goes on:
    progress and cancel checks resume when it is back."""

    def __init__(self, job: Job, connection: Redis, interval: float = 0.25) -> None:
        self.job, self.connection, self.interval = job, connection, interval
        self.last = 0.0
        self.offline = False

    def __call__(self, done: int, total: int) -> None:
        try:
            canceled = self.connection.exists(cancel_key(self.job.id))
        except redis.RedisError as exc:
            self._lost(exc)
            return
        if canceled:
            raise JobCanceled()
        now = time.monotonic()
        if done < total and now - self.last < self.interval:
            return
        self.last = now
        meta = JobMeta.of(self.job)
        meta.progress = round(done / total, 4)
        meta.tiles = (done, total)
        try:
            meta.save_to(self.job)
            publish(self.connection, self.job.id, status="running", progress=meta.progress)
        except redis.RedisError as exc:
            self._lost(exc)
            return
        if self.offline:
            log.info("job %s: Redis is back", self.job.id)
            self.offline = False

    def _lost(self, exc: redis.RedisError) -> None:
        if not self.offline:
            log.warning("job %s: Redis unreachable (%s); working on without progress reports", self.job.id, exc)
            self.offline = True


def persist(action: Callable[[], object], what: str, deadline: float) -> None:
    """Run a Redis write, retrying with backoff through an outage until ``deadline``
    (monotonic): a finished result is worth waiting for."""
    wait = 0.25
    while True:
        try:
            action()
            return
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            if time.monotonic() + wait > deadline:
                raise
            log.warning("%s: Redis unreachable (%s); retrying in %.2fs", what, exc, wait)
            time.sleep(wait)
            wait = min(wait * 2, 2.0)


def check_result_size(size: int, limit: int) -> None:
    if size > limit:
        raise JobError(
            f"the result is {size:,} bytes, over the service's {limit:,}-byte limit; "
            "ask for jpeg or webp, or a smaller output"
        )


def run_job(task: str, params: dict[str, Any]) -> dict[str, Any]:
    job = get_current_job()
    if job is None:
        raise RuntimeError("run_job must run inside an RQ worker")
    ctx = context.current()
    if task not in PIPELINES:
        raise JobError(f"this worker has no pipeline for task {task!r}")
    spec = JobArguments.parse(task, params).params
    model = ctx.runtime.get(spec.model)
    labels = {"task": task, "model": spec.model}
    start = time.perf_counter()
    deadline = time.monotonic() + (job.timeout or ctx.settings.job_timeout_seconds)
    if job.enqueued_at and job.started_at:
        metrics.JOB_QUEUE_WAIT_SECONDS.labels(task=task).observe((job.started_at - job.enqueued_at).total_seconds())
    meta = JobMeta.of(job)
    meta.progress, meta.attempts, meta.model = 0.0, meta.attempts + 1, spec.model
    meta.save_to(job)
    publish(ctx.connection, job.id, status="running", progress=0.0)
    try:
        inputs = RedisInputs(ctx.connection, job.id, ctx.settings.data_ttl_seconds)
        infer_start = time.perf_counter()
        result = PIPELINES[task](
            inputs, spec, model, TileSettings.from_settings(ctx.settings), ProgressReporter(job, ctx.connection)
        )
        inference = time.perf_counter() - infer_start
        if isinstance(result, Encoded):
            body, content_type = result.data, result.content_type
        else:
            body, content_type = encode(result, spec.output_format, spec.quality)
        check_result_size(len(body), ctx.settings.max_result_bytes)
        persist(
            lambda: ctx.connection.set(result_key(job.id), body, ex=ctx.settings.data_ttl_seconds),
            f"job {job.id}: storing the result",
            deadline,
        )
    except JobCanceled:
        job.retries_left = 0  # a canceled job must not be retried
        canceled = JobMeta.of(job)
        canceled.canceled = True
        canceled.apply_to(job)  # stored by the failure callback
        metrics.JOBS.labels(**labels, status="canceled").inc()
        raise
    except (JobError, JobTimeoutException):
        # The same input would fail the same way, or take as long again: retries are for
        # workers that died under a job.
        job.retries_left = 0
        metrics.JOBS.labels(**labels, status="failed").inc()
        raise
    except Exception:
        metrics.JOBS.labels(**labels, status="failed").inc()
        raise
    run_seconds = time.perf_counter() - start
    metrics.JOBS.labels(**labels, status="succeeded").inc()
    metrics.JOB_RUN_SECONDS.labels(**labels).observe(run_seconds)
    metrics.INFERENCE_SECONDS.labels(**labels).observe(inference)
    meta = JobMeta.of(job)
    meta.progress, meta.run_seconds, meta.inference_seconds = 1.0, round(run_seconds, 4), round(inference, 4)
    persist(lambda: meta.save_to(job), f"job {job.id}: saving its timings", deadline)
    log.info("job %s: %s -> %dx%d in %.3fs", job.id, task, result.width, result.height, run_seconds)
    return JobResult(
        content_type=content_type, bytes=len(body), width=result.width, height=result.height, model=spec.model
    ).model_dump()
