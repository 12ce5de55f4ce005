"""Jobs in Redis through RQ: submit, look up, fetch results, cancel.

Synchronous (RQ is); the async routes call it through the thread pool. Every job
belongs to the API key that made it: for any other key it does not exist (404).
Admission (queue length, the key's active jobs) is decided under a Redis lock, so
concurrent submits cannot overshoot a limit, whichever gateway replica they reach.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from redis import Redis
from rq import Callback, Queue, Retry
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.job import JobStatus as RQStatus
from rq.registry import CanceledJobRegistry

from app.errors import (
    BackendFull,
    InvalidParameter,
    JobNotCancelable,
    JobNotFinished,
    JobNotFound,
    QueueFull,
    ResultNotFound,
    TooManyActiveJobs,
)
from app.ratelimit import Caller
from app.schemas import JobView, ResultInfo, Timings, WebhookView
from imgenhance import jobs, webhooks
from imgenhance.cards import Task
from imgenhance.jobs import JobMeta, JobStatus
from imgenhance.params import JobParams, JobResult
from imgenhance.settings import Settings


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None:
        return None
    return round(((end or datetime.now(UTC)) - start).total_seconds(), 4)


def _utc(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


# What RQ accepts as a job id; anything else cannot name a job (and RQ would raise).
JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
RESULT_CHUNK = 1024 * 1024
ADMISSION_LOCK_SECONDS = 10
PRUNE_PER_SUBMIT = 4  # expired entries of an owner's job list checked and dropped per submit


@dataclass(frozen=True)
class Idempotency:
    """An ``Idempotency-Key`` and a digest of the request it came with."""

    key: str
    fingerprint: str

    def redis_key(self, owner: str) -> str:
        digest = hashlib.sha256(self.key.encode()).hexdigest()
        return f"{jobs.NAMESPACE}:idempotency:{owner}:{digest}"


def fingerprint(task: str, params: JobParams, uploads: dict[str, bytes], webhook: str | None) -> str:
    """What makes two submits the same request: the task, its parameters, the uploads'
    bytes and where its end is announced."""
    digest = hashlib.sha256(task.encode() + b"\0" + params.model_dump_json().encode())
    digest.update(b"\0webhook\0" + (webhook or "").encode())
    for name in sorted(uploads):
        digest.update(b"\0" + name.encode() + b"\0" + hashlib.sha256(uploads[name]).digest())
    return digest.hexdigest()


@dataclass(frozen=True)
class PageCursor:
    """Where a page of ``GET /v1/jobs`` ended: the last job's creation time (its score
    in the owner's index) and its id. Jobs made in the same instant tie on the score;
    Redis orders those by id, so the id carries on from the right one and a page
    boundary neither skips nor repeats a job."""

    score: float
    job_id: str

    def __str__(self) -> str:
        return f"{self.score!r}:{self.job_id}"

    @classmethod
    def parse(cls, text: str) -> PageCursor:
        score, separator, job_id = text.partition(":")
        try:
            value = float(score)
        except ValueError:
            value = math.nan
        if not separator or not math.isfinite(value) or not JOB_ID.fullmatch(job_id):
            raise InvalidParameter("not a cursor this service gave out; follow a page's `next`", field="cursor")
        return cls(value, job_id)


@dataclass(frozen=True)
class ResultStream:
    """A result read from Redis a chunk at a time, so serving it never holds it whole."""

    size: int
    content_type: str
    chunks: Iterator[bytes]


class JobStore:
    def __init__(self, connection: Redis, settings: Settings) -> None:
        self.connection = connection
        self.settings = settings

    def queue(self, task: str) -> Queue:
        return Queue(task, connection=self.connection, serializer=jobs.SERIALIZER)

    def submit(
        self,
        task: Task,
        params: JobParams,
        uploads: dict[str, bytes],
        meta: JobMeta,
        owner: Caller,
        idempotency: Idempotency | None = None,
    ) -> tuple[str, bool]:
        """Admit and enqueue a job: (its id, whether it is an earlier job replayed for the
        same ``Idempotency-Key``)."""
        self.check_memory(sum(len(data) for data in uploads.values()))
        job_id = uuid.uuid4().hex
        ttl = self.settings.data_ttl_seconds
        input_keys = [jobs.input_key(job_id, name) for name in uploads]
        # Uploads are stored before the job exists (so a worker never finds a job without
        # its inputs) and outside the lock (so a large one does not hold up other submits).
        with self.connection.pipeline() as pipe:
            for key, data in zip(input_keys, uploads.values(), strict=True):
                pipe.set(key, data, ex=ttl)
            pipe.execute()
        try:
            with self._admission():
                if idempotency is not None:
                    earlier = self._replay(owner, idempotency)
                    if earlier is not None:
                        self._drop(input_keys)
                        return earlier, True
                queue = self.queue(task)
                if queue.count >= self.settings.max_queue_length:
                    raise QueueFull(
                        f"{queue.count} {task} jobs are already waiting; try again shortly",
                        headers={"Retry-After": "10"},
                    )
                self.check_active(owner)
                # The job's indexes first and the enqueue last: a failure on the way
                # leaves no queued job that the client was told (503) does not exist,
                # and a retry with the same Idempotency-Key finds no record of it.
                indexes = self._index(owner, job_id, idempotency)
                try:
                    record = idempotency.redis_key(owner.name) if idempotency is not None else None
                    meta = meta.model_copy(update={"owner": owner.name, "idempotency": record})
                    self._enqueue(queue, job_id, task, params, meta)
                except BaseException:
                    with contextlib.suppress(Exception):
                        self._unindex(owner, job_id, indexes)
                    raise
        except BaseException:
            with contextlib.suppress(Exception):
                self._drop(input_keys)
            raise
        return job_id, False

    def _index(self, owner: Caller, job_id: str, idempotency: Idempotency | None) -> list[str]:
        """The keys a new job is recorded under (active set, owner's list, idempotency);
        returns the idempotency key written, if any, for ``_unindex``. None of them
        expires while the job waits, however long (a queued job does not either): the
        active set and the list drop ended jobs as they are read, and the idempotency
        record is given the data TTL when the job ends (``jobs.wind_up``)."""
        if owner.limits.max_active_jobs:
            self.connection.sadd(self._active_key(owner.name), job_id)
        self._remember(owner, job_id)
        if idempotency is None:
            return []
        record = json.dumps({"job": job_id, "fingerprint": idempotency.fingerprint})
        self.connection.set(idempotency.redis_key(owner.name), record)
        return [idempotency.redis_key(owner.name)]

    def _unindex(self, owner: Caller, job_id: str, written: list[str]) -> None:
        self.connection.srem(self._active_key(owner.name), job_id)
        self.connection.zrem(self._owned_key(owner.name), job_id)
        if written:
            self.connection.delete(*written)

    @staticmethod
    def _owned_key(owner: str) -> str:
        return f"{jobs.NAMESPACE}:jobs:{owner}"

    def _remember(self, owner: Caller, job_id: str) -> None:
        """Index the job under its owner, by creation time, for ``GET /v1/jobs``, and
        drop the oldest entries whose jobs have expired: a few per submit keep the
        index to about the owner's live jobs without a scan."""
        key = self._owned_key(owner.name)
        with self.connection.pipeline() as pipe:  # one round trip: this runs under the admission lock
            pipe.zadd(key, {job_id: time.time()})
            pipe.zrange(key, 0, PRUNE_PER_SUBMIT - 1)
            oldest = [m.decode() for m in pipe.execute()[1]]
        with self.connection.pipeline() as pipe:
            for old in oldest:
                pipe.exists(Job.key_for(old))
            alive = pipe.execute()
        gone = [old for old, exists in zip(oldest, alive, strict=True) if not exists and old != job_id]
        if gone:
            self.connection.zrem(key, *gone)

    def owned(self, owner: Caller, limit: int, after: PageCursor | None) -> tuple[list[JobView], PageCursor | None]:
        """The owner's jobs, newest first, after ``after`` (the previous page's cursor);
        returns the page and the cursor of the next one (None at the end)."""
        key = self._owned_key(owner.name)
        # Inclusive of the cursor's score: jobs tied with the last one shown come next.
        top = repr(after.score) if after is not None else "+inf"
        page: list[JobView] = []
        expired: list[str] = []
        offset = 0
        try:
            while True:
                batch: list[tuple[bytes, float]] = self.connection.zrevrangebyscore(  # type: ignore[assignment]
                    key, top, "-inf", start=offset, num=limit, withscores=True
                )
                if not batch:
                    return page, None
                offset += len(batch)
                for member, score in batch:
                    job_id = member.decode()
                    if after is not None and score == after.score and job_id >= after.job_id:
                        continue  # on an earlier page
                    try:
                        page.append(self.view(job_id, owner))
                    except JobNotFound:
                        # A job indexed moments ago may not be enqueued yet (the admission
                        # lock covers both): only older entries are expired ones.
                        if score < time.time() - ADMISSION_LOCK_SECONDS:
                            expired.append(job_id)
                        continue
                    if len(page) == limit:
                        last = PageCursor(score, job_id)
                        return page, last if self._any_older(key, last) else None
        finally:
            if expired:  # removed only now: removing them while paging would shift the offsets
                self.connection.zrem(key, *expired)

    def _any_older(self, key: str, cursor: PageCursor) -> bool:
        if self.connection.zcount(key, "-inf", f"({cursor.score!r}"):
            return True
        tied: list[bytes] = self.connection.zrangebyscore(key, cursor.score, cursor.score)  # type: ignore[assignment]
        return any(member.decode() < cursor.job_id for member in tied)

    def _drop(self, keys: list[str]) -> None:
        if keys:
            self.connection.delete(*keys)

    def _replay(self, owner: Caller, idempotency: Idempotency) -> str | None:
        """The job an earlier submit with this key made, if it still exists; 422 if that
        submit asked for something else."""
        raw = self.connection.get(idempotency.redis_key(owner.name))
        if raw is None:
            return None
        record = json.loads(raw)
        if record["fingerprint"] != idempotency.fingerprint:
            raise InvalidParameter(
                "this Idempotency-Key was used for a different request; use a new key for a new job",
                field="Idempotency-Key",
            )
        job_id: str = record["job"]
        return job_id if self.connection.exists(Job.key_for(job_id)) else None

    @contextlib.contextmanager
    def _admission(self) -> Iterator[None]:
        lock = self.connection.lock(
            f"{jobs.NAMESPACE}:admission", timeout=ADMISSION_LOCK_SECONDS, blocking_timeout=ADMISSION_LOCK_SECONDS
        )
        if not lock.acquire():
            raise QueueFull("the service is admitting too many jobs at once; try again", headers={"Retry-After": "2"})
        try:
            yield
        finally:
            with contextlib.suppress(Exception):  # it expires on its own
                lock.release()

    def check_memory(self, incoming: int) -> None:
        """503 when the new inputs would take Redis past its budget (inputs and results
        live in Redis: a full Redis would fail jobs that are already accepted)."""
        info = self.connection.info("memory")
        budget = self.settings.redis_memory_budget_bytes or int(info.get("maxmemory", 0))
        if not budget:
            return
        used = int(info.get("used_memory", 0))
        if used + incoming > budget * self.settings.redis_memory_headroom:
            raise BackendFull(
                f"the job store holds {used:,} of its {budget:,}-byte budget; try again when jobs have finished",
                headers={"Retry-After": "30"},
            )

    @staticmethod
    def _active_key(owner: str) -> str:
        return f"{jobs.NAMESPACE}:active:{owner}"

    def check_active(self, owner: Caller) -> None:
        """429 when the key already has its limit of unfinished jobs (finished ones are
        dropped from its set here, lazily)."""
        cap = owner.limits.max_active_jobs
        if not cap:
            return
        key = self._active_key(owner.name)
        ids = [m.decode() for m in self.connection.smembers(key)]  # type: ignore[union-attr]
        if len(ids) < cap:
            return
        with self.connection.pipeline() as pipe:
            for job_id in ids:
                pipe.hget(Job.key_for(job_id), "status")
            statuses = pipe.execute()
        done = [
            job_id
            for job_id, status in zip(ids, statuses, strict=True)
            if status is None or JobStatus.from_rq(RQStatus(status.decode())).finished
        ]
        if done:
            self.connection.srem(key, *done)
        if len(ids) - len(done) >= cap:
            raise TooManyActiveJobs(
                f"key {owner.name!r} has {len(ids) - len(done)} unfinished jobs, its limit; "
                "wait for one to finish or cancel one",
                headers={"Retry-After": "5"},
            )

    def _enqueue(self, queue: Queue, job_id: str, task: Task, params: JobParams, meta: JobMeta) -> None:
        ttl = self.settings.data_ttl_seconds
        queue.enqueue_call(
            jobs.ENTRYPOINT,
            kwargs=jobs.JobArguments(task, params).as_kwargs(),
            job_id=job_id,
            timeout=self.settings.job_timeout_seconds,
            result_ttl=ttl,
            failure_ttl=ttl,
            # No ttl while queued: a job no worker took within the data TTL must still be
            # there for one to fail it visibly (its inputs have expired), not vanish.
            retry=Retry(max=self.settings.job_retries) if self.settings.job_retries else None,
            on_failure=Callback(jobs.on_failure),
            meta=meta.model_copy(update={"created_at": datetime.now(UTC)}).model_dump(mode="json", exclude_none=True),
        )

    def _end_canceled(self, job: Job) -> None:
        """A job canceled while queued has no expiry (queued jobs keep none) and RQ never
        cleans its canceled registry: give it the lifetime of a finished job's data and
        the end time RQ does not stamp."""
        meta = JobMeta.of(job)
        meta.ended_at = meta.ended_at or datetime.now(UTC)
        meta.save_to(job)
        with self.connection.pipeline() as pipe:
            pipe.expire(job.key, self.settings.data_ttl_seconds)
            pipe.zrem(CanceledJobRegistry(job.origin, connection=self.connection).key, job.id)
            pipe.execute()

    def fetch(self, job_id: str, owner: Caller) -> Job:
        missing = JobNotFound(
            f"no job {job_id!r} for this key: it never existed, belongs to another key, "
            f"or expired after {self.settings.data_ttl_seconds} s"
        )
        if not JOB_ID.fullmatch(job_id):
            raise missing
        try:
            job = Job.fetch(job_id, connection=self.connection, serializer=jobs.SERIALIZER)
        except NoSuchJobError as exc:
            raise missing from exc
        if JobMeta.of(job).owner not in (None, owner.name):
            raise missing
        return job

    def view(self, job_id: str, owner: Caller) -> JobView:
        return self.view_of(self.fetch(job_id, owner))

    def view_of(self, job: Job) -> JobView:
        meta = JobMeta.of(job)
        status = jobs.status_of(job, meta)
        arguments = jobs.JobArguments.of(job)
        result = job.return_value(refresh=False) if status is JobStatus.SUCCEEDED else None
        started = _utc(job.started_at)
        ended = (_utc(job.ended_at) or _utc(meta.ended_at)) if status.finished else None
        enqueued = _utc(meta.created_at) or _utc(job.enqueued_at)
        error = None
        if status is JobStatus.FAILED:
            error = meta.error or "the job failed"
        elif status is JobStatus.CANCELED:
            error = "canceled on request"
        links = jobs.links(job.id)
        return JobView(
            id=job.id,
            task=arguments.task,
            status=status,
            progress=1.0 if status is JobStatus.SUCCEEDED else meta.progress,
            params=arguments.params.model_dump(mode="json"),
            model=arguments.params.model,
            created_at=enqueued,
            started_at=started,
            finished_at=ended,
            timings=Timings(
                queued_seconds=_seconds(enqueued, started) if status is not JobStatus.CANCELED or started else None,
                run_seconds=_seconds(started, ended) if started else None,
                inference_seconds=meta.inference_seconds,
            ),
            attempts=meta.attempts,
            error=error,
            error_kind=(meta.error_kind or "internal") if status is JobStatus.FAILED else None,
            result=ResultInfo.from_result(JobResult.model_validate(result)) if result else None,
            webhook=WebhookView(url=meta.webhook, deliveries=webhooks.deliveries(self.connection, job.id))
            if meta.webhook
            else None,
            links=links,
        )

    def result(self, job_id: str, owner: Caller) -> ResultStream:
        view = self.view(job_id, owner)
        if view.status is not JobStatus.SUCCEEDED:
            reason = f": {view.error}" if view.error else ""
            raise JobNotFinished(f"job {job_id} is {view.status.value}{reason}", status_of_job=view.status.value)
        key = jobs.result_key(job_id)
        size = int(self.connection.strlen(key))
        if not size or view.result is None:
            raise ResultNotFound(f"the result of job {job_id} expired")
        return ResultStream(size, view.result.content_type, self._chunks(key, size))

    def _chunks(self, key: str, size: int) -> Iterator[bytes]:
        for start in range(0, size, RESULT_CHUNK):
            chunk = self.connection.getrange(key, start, min(start + RESULT_CHUNK, size) - 1)
            if not chunk:
                return  # expired while being sent: the client sees a short body
            yield bytes(chunk)  # type: ignore[arg-type]

    def cancel(self, job_id: str, owner: Caller) -> JobView:
        """Queued: removed from the queue at once. Running: the worker stops at its next
        tile. Finished: 409."""
        job = self.fetch(job_id, owner)
        status = job.get_status(refresh=False)
        # Taking the id off its queue is the atomic test of "still queued": a worker may
        # have dequeued the job since its status was read, and then it is running.
        if status == RQStatus.QUEUED and not self.connection.lrem(self.queue(job.origin).key, 0, job_id):
            status = RQStatus.STARTED
        if status in (RQStatus.QUEUED, RQStatus.DEFERRED, RQStatus.SCHEDULED):
            with contextlib.suppress(InvalidJobOperation):  # already canceled by a concurrent request
                job.cancel()
            self._end_canceled(job)
            jobs.wind_up(self.connection, job)
        elif status == RQStatus.STARTED:
            self.connection.set(jobs.cancel_key(job_id), 1, ex=self.settings.job_timeout_seconds + 60)
        else:
            already = self.view_of(job).status.value
            raise JobNotCancelable(f"job {job_id} is already {already}", status_of_job=already)
        jobs.publish(self.connection, job_id, status="canceling")
        return self.view_of(Job.fetch(job_id, connection=self.connection, serializer=jobs.SERIALIZER))
