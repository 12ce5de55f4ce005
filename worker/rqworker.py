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

Why the outage handling: RQ rides out a Redis outage only while waiting for a job. A
connection error while a job runs escapes RQ's own failure handling and ends the work
loop for good. Here the job itself tolerates a lost connection (``worker.tasks``), and
an error that still escapes is caught in ``execute_job``: the worker waits for Redis
with backoff and carries on; the job's started-registry entry has meanwhile expired, so
the reaper retries it. After a Redis restart that lost the worker's key, the next
heartbeat registers the worker again.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis
from rq import SimpleWorker
from rq.exceptions import StopRequested
from rq.executions import Execution
from rq.job import Job
from rq.queue import Queue
from rq.timeouts import TimerDeathPenalty
from rq.worker import WorkerStatus

from imgenhance.jobs import JobCanceled, JobStatus, publish, wind_up

log = logging.getLogger("imgenhance.worker")


class InferenceWorker(SimpleWorker):
    # RQ backs off up to 60 s between reconnects while idle: a worker would then take
    # up to a minute to notice that Redis is back. Cap the wait at 2 s.
    max_connection_wait_time = 2.0

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
        if pipeline is None:
            self.ensure_registered()

    def ensure_registered(self) -> None:
        """Register again when Redis lost this worker's key (a restart without persistence,
        or an outage longer than the key's TTL): otherwise /readyz and the autoscaler
        would see no worker while this one takes jobs."""
        if not self.connection.hexists(self.key, "birth"):
            log.warning("worker %s: Redis no longer knows this worker; registering again", self.name)
            self.connection.delete(self.key)
            self.register_birth()  # type: ignore[no-untyped-call]

    def work(self, burst: bool = False, **kwargs: Any) -> bool:  # type: ignore[override]
        """RQ's work loop, started again whenever it ends for any reason but a stop request
        (RQ quits on an error it does not expect, such as Redis dropping mid-job)."""
        while True:
            try:
                worked: bool = super().work(burst=burst, **kwargs)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("worker %s: lost Redis (%s); waiting for it", self.name, exc)
            else:
                if burst or self._stop_requested:
                    return worked
                log.warning("worker %s: the work loop ended unexpectedly; starting it again", self.name)
                time.sleep(1.0)
            self.wait_for_redis()
            try:
                self.connection.delete(self.key)  # so that RQ's start-up registers this worker again
            except redis.RedisError:
                continue

    def wait_for_redis(self, first_wait: float = 0.25, max_wait: float = 2.0) -> None:
        """Block until Redis answers again, backing off; never gives up."""
        wait = first_wait
        while True:
            try:
                self.connection.ping()
                return
            except redis.RedisError as exc:
                log.warning("worker %s: Redis unreachable (%s); retrying in %.1fs", self.name, exc, wait)
                time.sleep(wait)
                wait = min(wait * 2, max_wait)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        return self.liveness_ttl

    def _install_signal_handlers(self) -> None:
        if not self.in_thread:  # signal handlers can only be set from the main thread
            super()._install_signal_handlers()  # type: ignore[no-untyped-call]

    def request_stop(self, signum: Any, frame: Any) -> None:
        # RQ marks a stop only when busy (idle, it raises StopRequested): mark it always,
        # so the restart loop in ``work`` knows the loop ended on purpose.
        self._stop_requested = True
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]

    def stop_after_current_job(self) -> None:
        """Warm stop from another thread (embedded mode); SIGTERM does this otherwise."""
        self._stop_requested = True

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None) -> Any:
        # RQ's loop only notices a stop request when a job arrives (a signal interrupts it
        # in the main thread). A thread worker comes back after each timeout to check.
        if not self.in_thread or timeout is None or max_idle_time is not None:
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        # Short polls, so a stop request is seen within a second.
        poll = min(timeout, 1)
        while not self._stop_requested:
            result = super().dequeue_job_and_maintain_ttl(poll, max_idle_time=poll)
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
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            # RQ could not record the job's end. Its registry entry expires without the
            # heartbeat, and the reaper retries it (or fails it visibly) once Redis is back.
            log.warning("job %s: Redis went away while the job ended (%s); it will be retried", job.id, exc)
        finally:
            stop.set()
            beat.join()
        self.wait_for_redis()
        try:
            self.set_state(WorkerStatus.IDLE)
            self.ensure_registered()
            # Announce only now: RQ persists the final status after the job's callbacks.
            status = JobStatus.from_rq(job.get_status(refresh=True))
            if status.finished:  # not when RQ put it back in the queue for a retry
                wind_up(self.connection, job)
            publish(self.connection, job.id, status=status.value)
        except redis.RedisError:
            log.warning("job %s: could not announce its end; waiters fall back to polling", job.id)

    def handle_exception(self, job: Job, *exc_info: Any) -> None:
        # A canceled job is an outcome the client asked for, not an error with a traceback.
        if isinstance(exc_info[1], JobCanceled):
            log.info("job %s: canceled on request", job.id)
            return
        super().handle_exception(job, *exc_info)

    def _beat(self, job: Job, execution: Execution, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_seconds):
            try:
                with self.connection.pipeline() as pipe:
                    self.heartbeat(self.liveness_ttl, pipeline=pipe)
                    execution.heartbeat(job.started_job_registry, self.liveness_ttl, pipe)
                    pipe.execute()
                self.ensure_registered()
            except redis.RedisError:
                log.warning(
                    "job %s: heartbeat failed; retrying in %.1fs", job.id, self.heartbeat_seconds, exc_info=True
                )
