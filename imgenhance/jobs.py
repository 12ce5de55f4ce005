"""The job contract shared by the gateway and the workers.

A job is an RQ job whose function is ``worker.tasks.run_job`` (named by string, so
the gateway never imports the worker) with JSON-serialised keyword arguments
``task`` and ``params`` (``imgenhance.params``). Image bytes never travel in the job:
the gateway stores each upload under ``input_key(job_id, name)`` and the worker writes
the encoded output under ``result_key(job_id)``, both with the data TTL. What the job
carries besides its arguments (owner, uploads, progress, timings, error) is a ``JobMeta``
in ``job.meta``; state changes are announced on ``events_channel(job_id)`` so a waiting request wakes
at once instead of polling.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from prometheus_client import Counter
from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from redis import Redis
from rq.exceptions import AbandonedJobError
from rq.job import Job
from rq.job import JobStatus as RQStatus
from rq.serializers import JSONSerializer
from rq.timeouts import JobTimeoutException

from imgenhance import REDIS_NAMESPACE, webhooks
from imgenhance.cards import Task
from imgenhance.params import TASK_PARAMS, JobParams

NAMESPACE = REDIS_NAMESPACE
ENTRYPOINT = "worker.tasks.run_job"
SERIALIZER = JSONSerializer


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED)

    @classmethod
    def from_rq(cls, status: RQStatus | None) -> JobStatus:
        return _FROM_RQ.get(status, JobStatus.QUEUED) if status is not None else JobStatus.QUEUED


_FROM_RQ = {
    RQStatus.CREATED: JobStatus.QUEUED,
    RQStatus.QUEUED: JobStatus.QUEUED,
    RQStatus.DEFERRED: JobStatus.QUEUED,
    RQStatus.SCHEDULED: JobStatus.QUEUED,
    RQStatus.STARTED: JobStatus.RUNNING,
    RQStatus.FINISHED: JobStatus.SUCCEEDED,
    RQStatus.FAILED: JobStatus.FAILED,
    RQStatus.STOPPED: JobStatus.FAILED,
    RQStatus.CANCELED: JobStatus.CANCELED,
}


@dataclass(frozen=True)
class JobArguments:
    """RQ's keyword arguments to ``ENTRYPOINT``, typed: the task and its parameters."""

    task: Task
    params: JobParams

    def as_kwargs(self) -> dict[str, Any]:
        return {"task": self.task, "params": self.params.model_dump(mode="json")}

    @classmethod
    def parse(cls, task: str, params: dict[str, Any]) -> JobArguments:
        """``JobError`` for a task this release does not know; pydantic's
        ``ValidationError`` for parameters that do not fit it."""
        for known, kind in TASK_PARAMS.items():
            if task == known:
                return cls(known, kind.model_validate(params))
        raise JobError(f"this release has no task {task!r}")

    @classmethod
    def of(cls, job: Job) -> JobArguments:
        return cls.parse(task_of(job), job.kwargs.get("params", {}))


def task_of(job: Job) -> str:
    """The job's task without reading its parameters (a failure callback must work for a
    job whose parameters were the failure)."""
    return str(job.kwargs.get("task", "unknown"))


class UploadFacts(BaseModel):
    """One stored upload as the gateway verified it."""

    format: str
    width: int
    height: int
    bytes: int


class JobMeta(BaseModel):
    """``job.meta``, typed. The gateway writes owner, creation time, uploads and webhook
    at submit; the worker adds attempts, progress and timings as it runs; the failure
    callback adds the error. Each writer reads it with ``of`` and writes it whole with
    ``save_to``; the job's arguments stay in RQ's kwargs."""

    model_config = ConfigDict(validate_assignment=True)

    owner: str | None = None
    # RQ resets enqueued_at when it retries a job; this is when it was submitted.
    created_at: datetime | None = None
    inputs: dict[str, UploadFacts] = Field(default_factory=dict)
    webhook: str | None = None
    attempts: int = 0
    model: str | None = None
    progress: float = 0.0
    tiles: tuple[int, int] | None = None
    run_seconds: float | None = None
    inference_seconds: float | None = None
    canceled: bool = False
    error: str | None = None
    error_kind: Literal["input", "internal"] | None = None
    # When the job ended, for the ends RQ does not stamp: failed by registry cleanup (its
    # worker died) or canceled while queued. Jobs stored by earlier releases call it failed_at.
    ended_at: datetime | None = Field(None, validation_alias=AliasChoices("ended_at", "failed_at"))
    # The Redis key of the Idempotency-Key record naming this job: it lives as long as the job.
    idempotency: str | None = None

    @classmethod
    def of(cls, job: Job) -> JobMeta:
        return cls.model_validate(job.meta)

    def apply_to(self, job: Job) -> None:
        """Set the job's meta in memory; RQ stores it with the job's next save."""
        job.meta = self.model_dump(mode="json", exclude_none=True)

    def save_to(self, job: Job) -> None:
        self.apply_to(job)
        job.save_meta()


def status_of(job: Job, meta: JobMeta) -> JobStatus:
    """The API's status of an RQ job (as last fetched; ``meta`` is its): a running job
    stopped on request fails in RQ's terms and is canceled in ours."""
    status = JobStatus.from_rq(job.get_status(refresh=False))
    return JobStatus.CANCELED if status is JobStatus.FAILED and meta.canceled else status


def links(job_id: str) -> dict[str, str]:
    """Where a job and its result are, for the job view and the webhook event."""
    return {"self": f"/v1/jobs/{job_id}", "result": f"/v1/jobs/{job_id}/result"}


def input_key(job_id: str, name: str) -> str:
    return f"{NAMESPACE}:input:{job_id}:{name}"


def result_key(job_id: str) -> str:
    return f"{NAMESPACE}:result:{job_id}"


def cancel_key(job_id: str) -> str:
    return f"{NAMESPACE}:cancel:{job_id}"


def events_channel(job_id: str) -> str:
    return f"{NAMESPACE}:events:{job_id}"


def wind_up(connection: Redis, job: Job) -> None:
    """What follows a job's end, wherever it is seen (the worker, the failure callback
    that registry cleanup also runs, a cancel while queued): its uploads go at once
    rather than at the end of their TTL, the Idempotency-Key record naming it now
    expires with the job's data, and its webhook event is due."""
    meta = JobMeta.of(job)
    keys = [input_key(job.id, name) for name in meta.inputs]
    ttl = job.failure_ttl if job.failure_ttl is not None else job.result_ttl
    with connection.pipeline() as pipe:
        if keys:
            pipe.delete(*keys)
        if meta.idempotency and ttl is not None and ttl > 0:
            pipe.expire(meta.idempotency, ttl)
        pipe.execute()
    if meta.webhook:
        webhooks.schedule(connection, job.id)


def publish(connection: Redis, job_id: str, **event: Any) -> None:
    connection.publish(events_channel(job_id), json.dumps(event))


# -- failures ----------------------------------------------------------------------


class JobError(Exception):
    """A failure whose message is meant for the API client (bad input found late,
    expired upload); anything else is reported as an internal error."""


class JobCanceled(JobError):
    def __init__(self) -> None:
        super().__init__("canceled on request")


class WorkerNotEquipped(Exception):
    """The worker that took the job cannot run it as installed (a model file missing):
    the operator's fault, not the client's, so an internal error whose message says what
    to install; it is retried, maybe on a worker that has it."""


JOB_FAILURES = Counter(
    "imgenhance_job_failures_total",
    "Failed job attempts, by reason (input, internal, timeout, abandoned, canceled); retried ones included",
    ["task", "reason"],
)


def describe_failure(exc_type: type[BaseException] | None, exc: BaseException | None, job: Job) -> tuple[str, str]:
    """(a message a person understands, a reason for metrics)."""
    if isinstance(exc, JobCanceled):
        return str(exc), "canceled"
    if isinstance(exc, JobError):
        return str(exc), "input"
    if isinstance(exc, WorkerNotEquipped):
        return str(exc), "internal"
    if exc_type is AbandonedJobError or isinstance(exc, AbandonedJobError):
        return "the worker running this job stopped unexpectedly", "abandoned"
    if exc_type is not None and issubclass(exc_type, JobTimeoutException):
        return f"the job ran longer than its {job.timeout} s limit", "timeout"
    name = exc_type.__name__ if exc_type else "unknown"
    return f"internal error in the worker ({name}); the worker log has the details under job {job.id}", "internal"


def on_failure(job: Job, connection: Redis, exc_type: Any, exc: Any, tb: Any) -> None:
    """RQ failure callback (also run by registry cleanup for abandoned jobs): keep a
    message a person understands beside RQ's traceback, and count the reason."""
    message, reason = describe_failure(exc_type, exc, job)
    meta = JobMeta.of(job)
    meta.error = message
    meta.error_kind = "input" if reason == "input" else "internal"
    meta.ended_at = datetime.now(UTC)
    meta.save_to(job)
    if not job.should_retry:
        wind_up(connection, job)
    JOB_FAILURES.labels(task=task_of(job), reason=reason).inc()
    publish(connection, job.id, status="failing", error=message)
