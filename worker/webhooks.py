"""The webhook sender: a thread in every worker process that delivers due events
(``imgenhance.webhooks`` explains the scheme), signed with the service's secret."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any

import httpx
import redis
from redis import Redis
from rq.exceptions import NoSuchJobError
from rq.job import Job
from standardwebhooks.webhooks import Webhook

from imgenhance import webhooks
from imgenhance.jobs import SERIALIZER, JobMeta, JobStatus, links, status_of, task_of
from imgenhance.settings import Settings

log = logging.getLogger("imgenhance.webhooks")
NOT_ENDED_DELAY = 2.0  # seconds before a job scheduled ahead of its stored end is looked at again
STEP_TIMEOUT = 10.0  # connect, write, or one read

EVENTS: dict[JobStatus, webhooks.EventType] = {
    JobStatus.SUCCEEDED: "job.succeeded",
    JobStatus.FAILED: "job.failed",
    JobStatus.CANCELED: "job.canceled",
}


class WebhookSender:
    def __init__(
        self,
        settings: Settings,
        connection: Redis,
        poll_seconds: float = 0.5,
        deadline: float = webhooks.ATTEMPT_SECONDS,
    ) -> None:
        if not settings.webhook_secret:
            raise ValueError("WebhookSender needs IMGENHANCE_WEBHOOK_SECRET")
        self.settings, self.connection, self.poll_seconds = settings, connection, poll_seconds
        self.deadline = deadline
        # Made once: loading the CA bundle costs about 20 ms, and each attempt has its own
        # client (its own event loop; the attempt's deadline covers it).
        self.tls = httpx.create_ssl_context()
        self.signer = Webhook(settings.webhook_secret)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="webhooks", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread.ident is not None:  # started
            self.thread.join(5)

    def _run(self) -> None:
        while not self.stopping.wait(self.poll_seconds):
            try:
                while not self.stopping.is_set() and (job_id := webhooks.claim_next(self.connection)):
                    self.deliver(job_id)
            except redis.RedisError as exc:
                log.warning("webhooks: Redis unreachable (%s); retrying", exc)
            except Exception:
                log.exception("webhooks: unexpected error; the sender goes on")

    async def _post(self, url: str, body: bytes, headers: dict[str, str], extensions: dict[str, Any]) -> int:
        """The receiver's status code. Its body is never read, so a slow or endless one
        cannot hold the sender or fill the worker's memory; the whole attempt, status
        line included, ends at the deadline."""
        async with (
            asyncio.timeout(self.deadline),
            httpx.AsyncClient(timeout=STEP_TIMEOUT, follow_redirects=False, verify=self.tls) as client,
            client.stream("POST", url, content=body, headers=headers, extensions=extensions) as response,
        ):
            return response.status_code

    def event(self, job: Job, meta: JobMeta, status: JobStatus) -> tuple[webhooks.EventType, bytes]:
        kind = EVENTS[status]
        payload = {
            "type": kind,
            "timestamp": webhooks.now().isoformat(),
            "data": {
                "id": job.id,
                "task": task_of(job),
                "status": status.value,
                "error": meta.error if status is JobStatus.FAILED else None,
                "links": links(job.id),
            },
        }
        return kind, json.dumps(payload, separators=(",", ":")).encode()

    def deliver(self, job_id: str) -> None:
        try:
            job = Job.fetch(job_id, connection=self.connection, serializer=SERIALIZER)
        except NoSuchJobError:
            self.connection.zrem(webhooks.DUE, job_id)  # expired: nobody to tell about it
            return
        meta = JobMeta.of(job)
        url, status = meta.webhook, status_of(job, meta)
        past = webhooks.deliveries(self.connection, job_id)
        if not url or any(d.delivered for d in past):  # a second schedule of one ending
            self.connection.zrem(webhooks.DUE, job_id)
            return
        if not status.finished:
            # Scheduled by a failure callback before the failure was stored (RQ's cleanup
            # of a dead worker's job runs the callback first): the end is moments away.
            webhooks.schedule(self.connection, job_id, NOT_ENDED_DELAY)
            return
        kind, body = self.event(job, meta, status)
        attempt = len(past) + 1
        code, error = None, None
        try:
            target = webhooks.check_target(url, self.settings.webhook_allow_private)  # again: DNS may have changed
            pinned_url, host, extensions = target.pinned()
            moment = webhooks.now()
            headers = {
                **host,
                "content-type": "application/json",
                "webhook-id": f"msg_{job_id}",  # the same for every attempt: receivers de-duplicate on it
                "webhook-timestamp": str(int(moment.timestamp())),
                "webhook-signature": self.signer.sign(f"msg_{job_id}", moment, body.decode()),
            }
            code = asyncio.run(self._post(pinned_url, body, headers, extensions))
        except webhooks.WebhookNotResolved as exc:
            error = str(exc)
        except webhooks.WebhookRefused as exc:
            error = str(exc)
            attempt = webhooks.MAX_ATTEMPTS  # never retried
        except TimeoutError:
            error = f"no answer within {self.deadline:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        delivered = code is not None and 200 <= code < 300
        if code is not None and not delivered:
            error = f"the receiver answered {code}"
        webhooks.record(
            self.connection,
            job_id,
            webhooks.Delivery(
                attempt=attempt, at=webhooks.now(), event=kind, status_code=code, error=error, delivered=delivered
            ),
            self.settings.data_ttl_seconds,
        )
        if delivered or attempt >= webhooks.MAX_ATTEMPTS:
            self.connection.zrem(webhooks.DUE, job_id)
            if not delivered:
                log.warning("webhook for job %s: giving up after %d attempts (%s)", job_id, attempt, error)
            return
        delay = webhooks.BACKOFF[attempt - 1]
        log.info("webhook for job %s: attempt %d failed (%s); next in %.0fs", job_id, attempt, error, delay)
        webhooks.schedule(self.connection, job_id, delay)
