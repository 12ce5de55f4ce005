"""POST /v1/jobs/generate: new images from a generator, as JSON (there is no upload)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Response
from pydantic import BaseModel, ConfigDict, Field

from app.deps import ApiKeyDep, CallerDep, StateDep
from app.errors import InvalidParameter
from app.submit import JSON_SUBMIT_ROUTE, IdempotencyHeader, PreferHeader, SubmitOptions, resolve, submit
from imgenhance.cards import ModelCard, UnknownClass
from imgenhance.params import (
    MAX_ANIMATION_IMAGES,
    MAX_IMAGES,
    MAX_SEED,
    GenerateParams,
    Interpolation,
    OutputFormat,
    quality_conflict,
)

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=[ApiKeyDep])


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    model: str | None = Field(None, description="a generate model id from /v1/models (default: the default)")
    n: int = Field(16, ge=1, le=MAX_IMAGES, description="how many images (1-64)")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="same seed and model: the same pixels")
    label: str | int | None = Field(
        None,
        alias="class",
        description="conditional models: a class name or index from the card (default: image i gets class i mod C)",
    )
    truncation: float = Field(
        1.0, gt=0, le=1, description="psi in (0, 1]: lower gives more typical, less varied images"
    )
    interpolate: Interpolation | None = Field(None, description="an animated WebP walking from seed to to_seed")
    output: Literal["grid", "zip"] = Field("grid", description="grid: one picture; zip: one PNG per image")
    output_format: OutputFormat | None = Field(None, description="grid: png (default), jpeg or webp")
    quality: int | None = Field(None, ge=1, le=100, description="jpeg/webp quality (default: jpeg 95, webp lossless)")
    webhook: str | None = Field(
        None, description="an http(s) URL to POST a signed event to when the job ends (Standard Webhooks)"
    )


def _label(card: ModelCard, label: str | int | None) -> int | None:
    if label is None:
        return None
    try:
        return card.class_index(label)
    except UnknownClass as exc:
        raise InvalidParameter(str(exc), field="class") from exc


def _format(request: GenerateRequest) -> OutputFormat:
    if request.interpolate is not None:
        if request.output == "zip":
            raise InvalidParameter(
                "an interpolation is one animated WebP; output=zip is for still images", field="output"
            )
        if request.output_format not in (None, "webp"):
            raise InvalidParameter("an interpolation is an animated WebP", field="output_format")
        frames = request.n * request.interpolate.steps
        if frames > MAX_ANIMATION_IMAGES:
            raise InvalidParameter(
                f"an interpolation renders n x steps = {frames} images; the limit is {MAX_ANIMATION_IMAGES}",
                field="interpolate.steps",
            )
        return "webp"
    if request.output == "zip":
        if request.output_format not in (None, "png") or request.quality is not None:
            raise InvalidParameter("a zip holds lossless PNG files: no output_format or quality", field="output_format")
        return "png"
    fmt: OutputFormat = request.output_format or "png"
    conflict = quality_conflict(fmt, request.quality)
    if conflict:
        raise InvalidParameter(conflict, field="quality")
    return fmt


@router.post(
    "/generate",
    summary="New images from a generator: seed, count, class, truncation, interpolation",
    **JSON_SUBMIT_ROUTE,
)
async def generate(
    state: StateDep,
    caller: CallerDep,
    request: Annotated[GenerateRequest, Body()],
    prefer: PreferHeader = None,
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    card = resolve(state, "generate", request.model)
    params = GenerateParams(
        model=card.id,
        n=request.n,
        seed=request.seed,
        label=_label(card, request.label),
        truncation=request.truncation,
        interpolate=request.interpolate,
        output=request.output,
        output_format=_format(request),
        quality=request.quality,
    )
    options = SubmitOptions(webhook=request.webhook, idempotency_key=idempotency_key)
    return await submit(state, "generate", params, {}, prefer, caller, options)
