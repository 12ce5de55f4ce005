"""The webhook sender's bookkeeping on a real Redis, called directly (the e2e test in
tests/app covers delivery over HTTP): what it does with entries it should not send yet,
or again."""

from __future__ import annotations

import base64
import socket
import threading
import time
from datetime import UTC, datetime

import pytest
from redis import Redis

from app.ratelimit import Caller
from app.store import JobStore
from imgenhance import webhooks
from imgenhance.jobs import JobMeta
from imgenhance.params import SuperResolveParams
from imgenhance.settings import KeyLimits, Settings
from worker.webhooks import NOT_ENDED_DELAY, WebhookSender

SECRET = "whsec_" + base64.b64encode(b"imgenhance-test-secret-32-bytes!").decode()
PARAMS = SuperResolveParams(model="sr-compact-x4", scale=4, output_format="png")


def queued_job_with_webhook(redis: Redis, settings: Settings, url: str = "https://example.invalid/hook") -> str:
    store = JobStore(redis, settings)
    job_id, _ = store.submit(
        "super-resolve", PARAMS, {"image": b"x" * 64}, JobMeta(webhook=url), Caller("anonymous", KeyLimits())
    )
    return job_id


class TricklingReceiver:
    """Accepts one request and answers a byte at a time, each byte well inside httpx's
    per-read timeout, with headers that go on for hours."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        connection, _ = self.server.accept()
        with connection:
            connection.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\n" + b"x-slow: 1\r\n" * 1000:  # headers that never end
                if self.done.wait(0.2):
                    return
                try:
                    connection.sendall(bytes([byte]))
                except OSError:
                    return

    def close(self) -> None:
        self.done.set()
        self.thread.join(5)
        self.server.close()


def test_an_entry_for_a_job_that_has_not_ended_waits_instead_of_being_dropped(redis: Redis) -> None:
    """RQ's cleanup of a dead worker's job runs the failure callback (which schedules the
    webhook) before it stores the failure: dropping the entry then would lose the event."""
    settings = Settings(webhook_secret=SECRET)
    job_id = queued_job_with_webhook(redis, settings)
    webhooks.schedule(redis, job_id)
    sender = WebhookSender(settings, redis)
    before = time.time()
    sender.deliver(job_id)
    due = redis.zscore(webhooks.DUE, job_id)
    assert due is not None and due >= before + NOT_ENDED_DELAY - 0.1
    assert webhooks.deliveries(redis, job_id) == []  # nothing was sent
    sender.stop()


def test_an_entry_for_an_event_already_delivered_is_dropped(redis: Redis) -> None:
    """The worker schedules a job's event after its failure callback did: one delivery."""
    settings = Settings(webhook_secret=SECRET)
    job_id = queued_job_with_webhook(redis, settings)
    done = webhooks.Delivery(
        attempt=1, at=datetime.now(UTC), event="job.failed", status_code=204, error=None, delivered=True
    )
    webhooks.record(redis, job_id, done, 60)
    webhooks.schedule(redis, job_id)
    sender = WebhookSender(settings, redis)
    sender.deliver(job_id)
    assert redis.zscore(webhooks.DUE, job_id) is None
    assert len(webhooks.deliveries(redis, job_id)) == 1
    sender.stop()


def test_a_receiver_that_trickles_its_answer_is_cut_off_at_the_attempt_deadline(redis: Redis) -> None:
    """Each byte comes within httpx's per-read timeout, so only a deadline on the whole
    attempt frees the sender; the attempt is recorded as failed and retried later."""
    settings = Settings(webhook_secret=SECRET, webhook_allow_private=True)
    receiver = TricklingReceiver()
    job_id = queued_job_with_webhook(redis, settings, f"http://127.0.0.1:{receiver.port}/hook")
    JobStore(redis, settings).cancel(job_id, Caller("anonymous", KeyLimits()))  # ended: its event is due
    sender = WebhookSender(settings, redis, deadline=1.5)
    started = time.monotonic()
    try:
        sender.deliver(job_id)
    finally:
        receiver.close()
        sender.stop()
    took = time.monotonic() - started
    [attempt] = webhooks.deliveries(redis, job_id)
    assert not attempt.delivered and attempt.error == "no answer within 1.5 s"
    assert took < 8, f"the attempt took {took:.1f} s"
    assert redis.zscore(webhooks.DUE, job_id) is not None  # another attempt is scheduled


def test_a_receiver_whose_name_does_not_resolve_for_now_is_tried_again(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(webhook_secret=SECRET)
    job_id = queued_job_with_webhook(redis, settings, "https://hooks.example.com/x")
    JobStore(redis, settings).cancel(job_id, Caller("anonymous", KeyLimits()))

    def outage(*_: object, **__: object) -> None:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", outage)
    sender = WebhookSender(settings, redis)
    sender.deliver(job_id)
    sender.stop()
    [attempt] = webhooks.deliveries(redis, job_id)
    assert not attempt.delivered and "does not resolve" in (attempt.error or "")
    assert redis.zscore(webhooks.DUE, job_id) is not None  # not given up: the next attempt is scheduled
