"""The RQ worker class: in-process execution with a heartbeat that outlives nothing.

Why ``SimpleWorker``: RQ's default ``Worker`` forks a work-horse per job, and an ONNX
Runtime session (a CUDA context above all) created before the fork is unusable in the
child, while one created per job reloads the model every time. ``SimpleWorker`` runs
jobs in the process that loaded the models.

Why a heartbeat thread: a ``SimpleWorker`` does not beat while a job runs, and RQ
registers a running job for ``timeout + 60`` s, so a worker killed mid-job would
leave its job "running" for many minutes. Here the job's entry in the started
registry, and the worker's own key, live ``liveness_ttl`` seconds and a thread renews
both every ``heartbeat_seconds``. When the process dies the entry expires, and the
next registry cleanup (the gateway's reaper, or any idle worker's maintenance, both
every few seconds) retries the job or fails it visibly.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import redis
from rq import SimpleWorker
from rq.exceptions import StopRequested
from rq.executions import Execution
from rq.job import Job
from rq.queue import Queue
from rq.timeouts import TimerDeathPenalty
from rq.worker import WorkerStatus

from imgenhance.jobs import JobStatus, publish

log = logging.getLogger("imgenhance.worker")


class InferenceWorker(SimpleWorker):
    def __init__(
        self, *args: Any, liveness_ttl: int = 10, heartbeat_seconds: float = 2.0, in_thread: bool = False, **kwargs: Any
    ) -> None:
        # An idle worker beats once per dequeue timeout (worker_ttl - 15 s): keep that
        # under the liveness TTL so /readyz sees a dead idle worker go too.
        kwargs.setdefault("worker_ttl", 15 + max(1, liveness_ttl // 2))
        super().__init__(*args, **kwargs)
        self.liveness_ttl = liveness_ttl
        self.heartbeat_seconds = heartbeat_seconds
        self.in_thread = in_thread
        if in_thread:
            # SIGALRM only reaches the main thread: time jobs out with a timer instead.
            self.death_penalty_class = TimerDeathPenalty

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        super().heartbeat(timeout or self.liveness_ttl, pipeline=pipeline)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        return self.liveness_ttl

    def _install_signal_handlers(self) -> None:
        if not self.in_thread:  # signal handlers can only be set from the main thread
            super()._install_signal_handlers()  # type: ignore[no-untyped-call]

    def stop_after_current_job(self) -> None:
        """Warm stop from another thread (embedded mode); SIGTERM does this otherwise."""
        self._stop_requested = True

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None) -> Any:
        # RQ's loop only notices a stop request when a job arrives (a signal interrupts it
        # in the main thread). A thread worker comes back after each timeout to check.
        if not self.in_thread or timeout is None or max_idle_time is not None:
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        while not self._stop_requested:
            result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time=timeout)
            if result is not None:
                return result
        raise StopRequested()

    def execute_job(self, job: Job, queue: Queue) -> None:
        execution = self.prepare_execution(job)
        stop = threading.Event()
        beat = threading.Thread(target=self._beat, args=(job, execution, stop), name=f"beat-{job.id}", daemon=True)
        beat.start()
        try:
            self.perform_job(job, queue, execution)
        finally:
            stop.set()
            beat.join()
        self.set_state(WorkerStatus.IDLE)
        # Announce only now: RQ persists the final status after the job's callbacks.
        try:
            status = JobStatus.from_rq(job.get_status(refresh=True))
            publish(self.connection, job.id, status=status.value)
        except redis.RedisError:
            log.warning("job %s: could not announce its end; waiters fall back to polling", job.id)

    def _beat(self, job: Job, execution: Execution, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_seconds):
            try:
                with self.connection.pipeline() as pipe:
                    self.heartbeat(self.liveness_ttl, pipeline=pipe)
                    execution.heartbeat(job.started_job_registry, self.liveness_ttl, pipe)
                    pipe.execute()
            except redis.RedisError:
                log.warning(
                    "job %s: heartbeat failed; retrying in %.1fs", job.id, self.heartbeat_seconds, exc_info=True
                )
