"""The webhook sender's bookkeeping on a real Redis, called directly (the e2e test in
tests/app covers delivery over HTTP): what it does with entries it should not send yet,
or again."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

from redis import Redis

from app.ratelimit import Caller
from app.store import JobStore
from imgenhance import webhooks
from imgenhance.params import SuperResolveParams
from imgenhance.settings import KeyLimits, Settings
from worker.webhooks import NOT_ENDED_DELAY, WebhookSender

SECRET = "whsec_" + base64.b64encode(b"imgenhance-test-secret-32-bytes!").decode()
PARAMS = SuperResolveParams(model="sr-compact-x4", scale=4, output_format="png")


def queued_job_with_webhook(redis: Redis, settings: Settings) -> str:
    store = JobStore(redis, settings)
    meta = {"webhook": "https://example.invalid/hook"}
    job_id, _ = store.submit("super-resolve", PARAMS, {"image": b"x" * 64}, meta, Caller("anonymous", KeyLimits()))
    return job_id


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
