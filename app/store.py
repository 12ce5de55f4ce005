"""Jobs in Redis through RQ: submit, look up, fetch results, cancel.

Synchronous (RQ is); the async routes call it through the thread pool.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from rq import Callback, Queue, Retry
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.job import JobStatus as RQStatus

from app.errors import JobNotCancelable, JobNotFinished, JobNotFound, QueueFull, ResultNotFound
from app.schemas import JobView, ResultInfo, Timings
from imgenhance import jobs
from imgenhance.jobs import JobStatus
from imgenhance.params import JobParams, JobResult
from imgenhance.settings import Settings


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None:
        return None
    return round(((end or datetime.now(UTC)) - start).total_seconds(), 4)


def _utc(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


class JobStore:
    def __init__(self, connection: Redis, settings: Settings) -> None:
        self.connection = connection
        self.settings = settings

    def queue(self, task: str) -> Queue:
        return Queue(task, connection=self.connection, serializer=jobs.SERIALIZER)

    def submit(self, task: str, params: JobParams, uploads: dict[str, bytes], meta: dict[str, Any]) -> str:
        queue = self.queue(task)
        if queue.count >= self.settings.max_queue_length:
            raise QueueFull(
                f"{queue.count} {task} jobs are already waiting; try again shortly", headers={"Retry-After": "10"}
            )
        job_id = uuid.uuid4().hex
        ttl = self.settings.data_ttl_seconds
        # Uploads are stored before the job exists, so a worker never finds a job without its inputs.
        with self.connection.pipeline() as pipe:
            for name, data in uploads.items():
                pipe.set(jobs.input_key(job_id, name), data, ex=ttl)
            pipe.execute()
        queue.enqueue_call(
            jobs.ENTRYPOINT,
            kwargs={"task": task, "params": params.model_dump(mode="json")},
            job_id=job_id,
            timeout=self.settings.job_timeout_seconds,
            result_ttl=ttl,
            failure_ttl=ttl,
            ttl=ttl,
            retry=Retry(max=self.settings.job_retries) if self.settings.job_retries else None,
            on_failure=Callback(jobs.on_failure),
            meta={"progress": 0.0, "attempts": 0, **meta},
        )
        return job_id

    def fetch(self, job_id: str) -> Job:
        try:
            return Job.fetch(job_id, connection=self.connection, serializer=jobs.SERIALIZER)
        except NoSuchJobError as exc:
            raise JobNotFound(
                f"no job {job_id}: it never existed or expired after {self.settings.data_ttl_seconds} s"
            ) from exc

    def view(self, job_id: str) -> JobView:
        job = self.fetch(job_id)
        status = JobStatus.from_rq(job.get_status(refresh=False))
        if status is JobStatus.FAILED and job.meta.get("canceled"):
            status = JobStatus.CANCELED
        kwargs = job.kwargs
        result = job.return_value(refresh=False) if status is JobStatus.SUCCEEDED else None
        started = _utc(job.started_at)
        ended = _utc(job.ended_at) if status.finished else None
        enqueued = _utc(job.enqueued_at)
        error = None
        if status is JobStatus.FAILED:
            error = job.meta.get("error") or "the job failed"
        elif status is JobStatus.CANCELED:
            error = "canceled on request"
        links = {"self": f"/v1/jobs/{job.id}", "result": f"/v1/jobs/{job.id}/result"}
        return JobView(
            id=job.id,
            task=kwargs["task"],
            status=status,
            progress=1.0 if status is JobStatus.SUCCEEDED else float(job.meta.get("progress", 0.0)),
            params=kwargs["params"],
            model=kwargs["params"]["model"],
            created_at=enqueued,
            started_at=started,
            finished_at=ended,
            timings=Timings(
                queued_seconds=_seconds(enqueued, started) if status is not JobStatus.CANCELED or started else None,
                run_seconds=_seconds(started, ended) if started else None,
                inference_seconds=job.meta.get("inference_seconds"),
            ),
            attempts=int(job.meta.get("attempts", 0)),
            error=error,
            error_kind=job.meta.get("error_kind", "internal") if status is JobStatus.FAILED else None,
            result=ResultInfo.from_result(JobResult.model_validate(result)) if result else None,
            links=links,
        )

    def result(self, job_id: str) -> tuple[bytes, str]:
        view = self.view(job_id)
        if view.status is not JobStatus.SUCCEEDED:
            reason = f": {view.error}" if view.error else ""
            raise JobNotFinished(f"job {job_id} is {view.status.value}{reason}", status_of_job=view.status.value)
        data = self.connection.get(jobs.result_key(job_id))
        if not isinstance(data, bytes) or view.result is None:
            raise ResultNotFound(f"the result of job {job_id} expired")
        return data, view.result.content_type

    def cancel(self, job_id: str) -> JobView:
        """Queued: removed from the queue at once. Running: the worker stops at its next
        tile. Finished: 409."""
        job = self.fetch(job_id)
        status = job.get_status(refresh=False)
        if status in (RQStatus.QUEUED, RQStatus.DEFERRED, RQStatus.SCHEDULED):
            with contextlib.suppress(InvalidJobOperation):  # already canceled by a concurrent request
                job.cancel()
            uploads = [jobs.input_key(job_id, name) for name in job.meta.get("inputs", {})]
            if uploads:
                self.connection.delete(*uploads)
        elif status == RQStatus.STARTED:
            self.connection.set(jobs.cancel_key(job_id), 1, ex=self.settings.job_timeout_seconds + 60)
        else:
            raise JobNotCancelable(f"job {job_id} is already {JobStatus.from_rq(status).value}")
        jobs.publish(self.connection, job_id, status="canceling")
        return self.view(job_id)
