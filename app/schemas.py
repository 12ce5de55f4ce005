"""Response bodies of the API (the OpenAPI schema at /docs is generated from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from imgenhance.jobs import JobStatus


class Timings(BaseModel):
    queued_seconds: float | None = Field(None, description="time in the queue (so far, if still queued)")
    run_seconds: float | None = Field(None, description="time running (so far, if still running)")
    inference_seconds: float | None = Field(None, description="model compute within the run (excludes decode/encode)")


class ResultInfo(BaseModel):
    content_type: str
    bytes: int
    width: int
    height: int


class JobView(BaseModel):
    id: str
    task: str
    status: JobStatus
    progress: float = Field(description="fraction of tiles done, 0..1")
    params: dict[str, Any]
    model: str
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    timings: Timings
    attempts: int = Field(description="times a worker started the job (more than 1 after a retry)")
    error: str | None = Field(None, description="why the job failed, for a person")
    error_kind: Literal["input", "internal"] | None = Field(
        None, description="input: this image cannot be processed; internal: retrying may succeed"
    )
    result: ResultInfo | None = None
    links: dict[str, str]


class ModelList(BaseModel):
    models: list[dict[str, Any]]


class QueueHealth(BaseModel):
    workers: int
    depth: int


class Readiness(BaseModel):
    status: str
    queues: dict[str, QueueHealth]
