"""``JobMeta``, the typed ``job.meta`` the gateway, the workers and the failure callback
share: it survives RQ's JSON round trip through a real Redis, and refuses what no writer
may put there."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError
from redis import Redis
from rq.job import Job

from app.ratelimit import Caller
from app.store import JobStore
from imgenhance import jobs
from imgenhance.jobs import JobArguments, JobError, JobMeta, UploadFacts
from imgenhance.params import SuperResolveParams
from imgenhance.settings import KeyLimits, Settings

PARAMS = SuperResolveParams(model="sr-compact-x4", scale=4, output_format="png")


def test_a_submitted_jobs_meta_comes_back_from_redis_as_it_was_written(redis: Redis) -> None:
    store = JobStore(redis, Settings())
    written = JobMeta(
        inputs={"image": UploadFacts(format="png", width=8, height=6, bytes=64)}, webhook="https://example.com/hook"
    )
    job_id, _ = store.submit("super-resolve", PARAMS, {"image": b"x" * 64}, written, Caller("ci", KeyLimits()))
    job = Job.fetch(job_id, connection=redis, serializer=jobs.SERIALIZER)
    meta = JobMeta.of(job)
    assert meta.owner == "ci" and meta.inputs == written.inputs and meta.webhook == written.webhook
    assert meta.created_at is not None and meta.created_at.tzinfo is not None
    assert abs((datetime.now(UTC) - meta.created_at).total_seconds()) < 60
    assert (meta.attempts, meta.progress, meta.error, meta.canceled) == (0, 0.0, None, False)


def test_the_workers_updates_survive_a_save_and_a_fresh_fetch(redis: Redis) -> None:
    store = JobStore(redis, Settings())
    job_id, _ = store.submit("super-resolve", PARAMS, {"image": b"x" * 64}, JobMeta(), Caller("ci", KeyLimits()))
    job = Job.fetch(job_id, connection=redis, serializer=jobs.SERIALIZER)
    meta = JobMeta.of(job)
    meta.attempts += 1
    meta.progress, meta.tiles = 0.5, (3, 6)
    meta.error, meta.error_kind, meta.ended_at = "bad tile", "input", datetime.now(UTC)
    meta.save_to(job)
    again = JobMeta.of(Job.fetch(job_id, connection=redis, serializer=jobs.SERIALIZER))
    assert again == meta
    assert store.view_of(Job.fetch(job_id, connection=redis, serializer=jobs.SERIALIZER)).attempts == 1


def test_what_no_writer_may_store_is_refused() -> None:
    with pytest.raises(ValidationError):
        JobMeta.model_validate({"progress": "half"})
    with pytest.raises(ValidationError):
        JobMeta.model_validate({"inputs": {"image": {"format": "png"}}})  # dimensions missing
    meta = JobMeta()
    with pytest.raises(ValidationError):
        meta.error_kind = "timeout"  # type: ignore[assignment]  # input or internal only


def test_a_job_stored_before_the_rename_still_shows_when_it_ended() -> None:
    assert JobMeta.model_validate({"failed_at": "2026-11-24T10:00:00+00:00"}).ended_at == datetime(
        2026, 11, 24, 10, tzinfo=UTC
    )


def test_a_jobs_arguments_are_read_back_typed_and_an_unknown_task_is_a_job_error(redis: Redis) -> None:
    store = JobStore(redis, Settings())
    job_id, _ = store.submit("super-resolve", PARAMS, {"image": b"x" * 64}, JobMeta(), Caller("ci", KeyLimits()))
    arguments = JobArguments.of(Job.fetch(job_id, connection=redis, serializer=jobs.SERIALIZER))
    assert arguments == JobArguments("super-resolve", PARAMS)
    assert isinstance(arguments.params, SuperResolveParams)
    with pytest.raises(JobError, match="no task 'sharpen'"):
        JobArguments.parse("sharpen", PARAMS.model_dump(mode="json"))
    with pytest.raises(ValidationError):
        JobArguments.parse("super-resolve", {"model": "sr-compact-x4", "scale": 5, "output_format": "png"})
