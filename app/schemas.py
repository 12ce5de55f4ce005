"""Response bodies of the API (the OpenAPI schema at /docs is generated from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from imgenhance.cards import ModelCard
from imgenhance.jobs import JobStatus
from imgenhance.params import JobResult
from imgenhance.webhooks import Delivery


class Timings(BaseModel):
    queued_seconds: float | None = Field(None, description="time in the queue (so far, if still queued)")
    run_seconds: float | None = Field(None, description="time running (so far, if still running)")
    inference_seconds: float | None = Field(None, description="model compute within the run (excludes decode/encode)")


class ResultInfo(BaseModel):
    content_type: str
    bytes: int
    width: int
    height: int

    @classmethod
    def from_result(cls, result: JobResult) -> ResultInfo:
        return cls(content_type=result.content_type, bytes=result.bytes, width=result.width, height=result.height)


class WebhookView(BaseModel):
    url: str
    deliveries: list[Delivery] = Field(description="every attempt so far, oldest first")


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
    webhook: WebhookView | None = Field(None, description="where the job's end is announced, and how that went")
    links: dict[str, str]


class JobList(BaseModel):
    jobs: list[JobView] = Field(description="the caller's jobs, newest first")
    next: str | None = Field(description="the URL of the next (older) page; None on the last")


class ModelList(BaseModel):
    models: list[dict[str, Any]]


class StyleView(BaseModel):
    name: str = Field(description="what to send as style=<name>")
    model: str
    title: str
    artist: str
    year: str
    licence: str
    source: str
    links: dict[str, str] = Field(description="preview (the painting) and example (a photograph in this style)")


class StyleList(BaseModel):
    styles: list[StyleView]
    any_style_model: str | None = Field(
        description="the model that takes an uploaded style_image (None: not installed)"
    )


def style_links(card: ModelCard) -> dict[str, str]:
    if card.style is None:
        return {}
    base = f"/v1/styles/{card.style.name}"
    return {"style": base, "preview": f"{base}/preview", "example": f"{base}/example"}


def style_view(card: ModelCard) -> StyleView:
    if card.style is None:
        raise ValueError(f"{card.id} is not a named style")
    s = card.style
    return StyleView(
        name=s.name,
        model=card.id,
        title=s.title,
        artist=s.artist,
        year=s.year,
        licence=s.licence,
        source=s.source,
        links=style_links(card),
    )


class QueueHealth(BaseModel):
    workers: int
    depth: int


class Readiness(BaseModel):
    status: str
    queues: dict[str, QueueHealth]
