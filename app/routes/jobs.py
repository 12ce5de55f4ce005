"""/v1/jobs: submit a job (202, or the result itself with ``Prefer: wait=N``), read
its state, fetch its result, cancel it."""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Response, UploadFile
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from app.deps import ApiKeyDep, SettingsDep, StateDep
from app.errors import (
    InvalidParameter,
    JobFailed,
    JobFailedInternally,
    JobNotFinished,
    NotAnImage,
    OutputTooLarge,
    UploadTooLarge,
)
from app.metrics import JOBS_SUBMITTED
from app.probe import ImageInfo, probe
from app.schemas import JobView
from app.state import GatewayState
from imgenhance.cards import ModelCard, Task
from imgenhance.catalog import UnknownModel
from imgenhance.jobs import MAX_SIGMA, DenoiseParams, JobStatus, OutputFormat, SuperResolveParams
from imgenhance.settings import Settings

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=[ApiKeyDep])

PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
SUBMIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "With `Prefer: wait=N`: the finished image",
        "content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}},
    },
    413: {"description": "Upload, image or output too large", **PROBLEM},
    415: {"description": "Not an image, or an unsupported format", **PROBLEM},
    422: {"description": "Damaged image or invalid parameter", **PROBLEM},
    503: {"description": "Queue full or backend unreachable", **PROBLEM},
}
SUBMIT_ROUTE: dict[str, Any] = {"status_code": 202, "response_model": JobView, "responses": SUBMIT_RESPONSES}
_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d+(?:\.\d+)?)", re.IGNORECASE)


def requested_wait(prefer: str | None, cap: float) -> float:
    """Seconds to wait from an RFC 7240 ``Prefer`` header (0 = answer 202 at once)."""
    match = _WAIT.search(prefer or "")
    return min(float(match.group(1)), cap) if match else 0.0


async def read_upload(image: UploadFile, settings: Settings) -> tuple[bytes, ImageInfo]:
    data = await image.read()
    if len(data) > settings.max_upload_bytes:
        raise UploadTooLarge(f"the upload is {len(data):,} bytes; the limit is {settings.max_upload_bytes:,}")
    if not data:
        raise NotAnImage("the uploaded file is empty")
    return data, await run_in_threadpool(probe, data, settings.max_input_pixels)


async def wait_for(state: GatewayState, job_id: str, timeout: float) -> JobView:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with state.hub.watch(job_id) as changed:
        while True:
            changed.clear()  # before reading, so a change during the read is not lost
            view = await run_in_threadpool(state.store.view, job_id)
            remaining = deadline - loop.time()
            if view.status.finished or remaining <= 0:
                return view
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=min(remaining, 1.0))


def accepted(view: JobView) -> JSONResponse:
    return JSONResponse(view.model_dump(mode="json"), status_code=202, headers={"Location": view.links["self"]})


async def submit(
    state: GatewayState, task: str, params: dict[str, Any], data: bytes, info: ImageInfo, prefer: str | None
) -> Response:
    meta = {"input": {"format": info.format, "width": info.width, "height": info.height, "bytes": len(data)}}
    job_id = await run_in_threadpool(state.store.submit, task, params, data, meta)
    JOBS_SUBMITTED.labels(task=task, model=params["model"]).inc()
    wait = requested_wait(prefer, state.settings.max_wait_seconds)
    if not wait:
        return accepted(await run_in_threadpool(state.store.view, job_id))
    view = await wait_for(state, job_id, wait)
    links = {"job": view.links["self"]}
    if view.status is JobStatus.SUCCEEDED:
        body, content_type = await run_in_threadpool(state.store.result, job_id)
        return Response(
            body,
            media_type=content_type,
            headers={
                "Preference-Applied": f"wait={wait:g}",
                "Content-Location": view.links["result"],
                "Link": f'<{view.links["self"]}>; rel="monitor"',
                "X-Job-Id": job_id,
            },
        )
    if view.status is JobStatus.FAILED:
        error = JobFailed if view.error_kind == "input" else JobFailedInternally
        raise error(view.error or "the job failed", job_id=job_id, links=links)
    if view.status is JobStatus.CANCELED:
        raise JobNotFinished(f"job {job_id} was canceled", job_id=job_id, links=links)
    return accepted(view)  # still queued or running after the wait


def _resolve(state: GatewayState, task: Task, model: str | None, scale: int | None) -> ModelCard:
    try:
        return state.catalog.resolve(task, model, scale)
    except UnknownModel as exc:
        raise InvalidParameter(str(exc)) from exc


def _output(
    info: ImageInfo, card: ModelCard, settings: Settings, output_format: str | None, quality: int | None
) -> str:
    """Check the output size; the output format (default png, webp for inputs with alpha)."""
    out_w, out_h = info.width * card.scale, info.height * card.scale
    if out_w * out_h > settings.max_output_pixels:
        raise OutputTooLarge(
            f"x{card.scale} of {info.width}x{info.height} is {out_w}x{out_h} "
            f"({out_w * out_h:,} pixels); the output limit is {settings.max_output_pixels:,}"
        )
    fmt = output_format or ("webp" if info.has_alpha else "png")
    if quality is not None and fmt == "png":
        raise InvalidParameter("quality applies to jpeg and webp output; png is lossless")
    return fmt


ImageField = Annotated[UploadFile, File(description="PNG, JPEG, WebP, BMP, TIFF or GIF; any size up to the limits")]
FormatField = Annotated[
    OutputFormat | None, Form(description="png, jpeg or webp (default png; webp when the input has alpha)")
]
QualityField = Annotated[
    int | None, Form(ge=1, le=100, description="jpeg/webp quality (default: jpeg 95, webp lossless)")
]
PreferHeader = Annotated[str | None, Header(description="`wait=N`: answer with the image if done within N seconds")]


@router.post("/super-resolve", summary="Upscale an image x2 or x4", **SUBMIT_ROUTE)
async def super_resolve(
    state: StateDep,
    settings: SettingsDep,
    image: ImageField,
    scale: Annotated[
        int | None,
        Form(description="2 or 4 (default 4, or the named model's scale)", json_schema_extra={"enum": [2, 4]}),
    ] = None,
    model: Annotated[
        str | None,
        Form(
            description="a super-resolve model id from /v1/models, or a variant: general (bicubic-trained, "
            "sharpest on clean images) or real-world (trained on blur, noise and JPEG) (default: the default model)"
        ),
    ] = None,
    output_format: FormatField = None,
    quality: QualityField = None,
    prefer: PreferHeader = None,
) -> Response:
    if scale not in (None, 2, 4):
        raise InvalidParameter(f"scale must be 2 or 4, not {scale}")
    data, info = await read_upload(image, settings)
    names_a_model = model is not None and state.catalog.get(model) is not None
    card = _resolve(state, "super-resolve", model, scale if scale or names_a_model else 4)
    fmt = _output(info, card, settings, output_format, quality)
    params = SuperResolveParams.model_validate(
        {"model": card.id, "scale": card.scale, "output_format": fmt, "quality": quality}
    )
    return await submit(state, "super-resolve", params.model_dump(), data, info, prefer)


@router.post("/denoise", summary="Remove noise and compression artefacts", **SUBMIT_ROUTE)
async def denoise(
    state: StateDep,
    settings: SettingsDep,
    image: ImageField,
    strength: Annotated[
        float,
        Form(ge=0, le=1, description="0..1: share of the correction applied; 0 leaves the image as it is (default: 1)"),
    ] = 1.0,
    sigma: Annotated[
        float | None,
        Form(
            ge=0,
            le=MAX_SIGMA,
            description="the noise level the model assumes, 0-255 scale; above the real noise it smooths more "
            "(default: blind: the model estimates it)",
        ),
    ] = None,
    model: Annotated[str | None, Form(description="a denoise model id from /v1/models (default: the default)")] = None,
    output_format: FormatField = None,
    quality: QualityField = None,
    prefer: PreferHeader = None,
) -> Response:
    data, info = await read_upload(image, settings)
    card = _resolve(state, "denoise", model, None)
    fmt = _output(info, card, settings, output_format, quality)
    params = DenoiseParams.model_validate(
        {"model": card.id, "sigma": sigma, "strength": strength, "output_format": fmt, "quality": quality}
    )
    return await submit(state, "denoise", params.model_dump(), data, info, prefer)


@router.get("/{job_id}", response_model=JobView, summary="A job's state, progress, timings and error")
async def get_job(job_id: str, state: StateDep) -> JobView:
    return await run_in_threadpool(state.store.view, job_id)


@router.get(
    "/{job_id}/result",
    summary="The finished image",
    responses={
        200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}}},
        404: {"description": "Unknown or expired", **PROBLEM},
        409: {"description": "Not finished (or failed)", **PROBLEM},
    },
)
async def get_result(job_id: str, state: StateDep) -> Response:
    body, content_type = await run_in_threadpool(state.store.result, job_id)
    ext = content_type.split("/")[-1]
    return Response(
        body, media_type=content_type, headers={"Content-Disposition": f'inline; filename="{job_id}.{ext}"'}
    )


@router.delete(
    "/{job_id}",
    response_model=JobView,
    summary="Cancel a job",
    responses={
        202: {"description": "Running: the worker stops at its next tile"},
        409: {"description": "Already finished", **PROBLEM},
    },
)
async def cancel_job(job_id: str, state: StateDep) -> JSONResponse:
    view = await run_in_threadpool(state.store.cancel, job_id)
    return JSONResponse(view.model_dump(mode="json"), status_code=200 if view.status.finished else 202)
