"""What every submit route shares: reading and probing uploads, resolving the model,
checking the output size, enqueueing, and answering 202 or (``Prefer: wait=N``) the
result itself. A task's route module only declares its form fields and builds its
``imgenhance.params`` model."""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import File, Form, Header, Response, UploadFile
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from app.errors import (
    ApiError,
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
from imgenhance.jobs import JobStatus
from imgenhance.params import IMAGE, JobParams, OutputFormat
from imgenhance.settings import Settings

PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
IMAGE_TYPES: dict[str, Any] = {"image/png": {}, "image/jpeg": {}, "image/webp": {}}
RESULT_TYPES: dict[str, Any] = {**IMAGE_TYPES, "application/zip": {}}
JOB_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "With `Prefer: wait=N`: the finished result", "content": RESULT_TYPES},
    409: {"description": "With `Prefer: wait=N`: the job was canceled meanwhile", **PROBLEM},
    422: {"description": "Invalid parameter (or, with `Prefer: wait=N`, the job failed on this input)", **PROBLEM},
    500: {"description": "With `Prefer: wait=N`: the job failed in the service (retrying may succeed)", **PROBLEM},
    503: {"description": "Queue full or backend unreachable", **PROBLEM},
}
SUBMIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    **JOB_RESPONSES,
    413: {"description": "Upload, image or output too large", **PROBLEM},
    415: {"description": "Not an image, or an unsupported format", **PROBLEM},
    422: {"description": "Damaged image or invalid parameter", **PROBLEM},
}
SUBMIT_ROUTE: dict[str, Any] = {"status_code": 202, "response_model": JobView, "responses": SUBMIT_RESPONSES}
JSON_SUBMIT_ROUTE: dict[str, Any] = {"status_code": 202, "response_model": JobView, "responses": JOB_RESPONSES}

ImageField = Annotated[UploadFile, File(description="PNG, JPEG, WebP, BMP, TIFF or GIF; any size up to the limits")]
FormatField = Annotated[
    OutputFormat | None, Form(description="png, jpeg or webp (default png; webp when the input has alpha)")
]
QualityField = Annotated[
    int | None, Form(ge=1, le=100, description="jpeg/webp quality (default: jpeg 95, webp lossless)")
]
PreferHeader = Annotated[str | None, Header(description="`wait=N`: answer with the image if done within N seconds")]

_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d+(?:\.\d+)?)", re.IGNORECASE)


@dataclass(frozen=True)
class Upload:
    data: bytes
    info: ImageInfo


def requested_wait(prefer: str | None, cap: float) -> float:
    """Seconds to wait from an RFC 7240 ``Prefer`` header (0 = answer 202 at once)."""
    match = _WAIT.search(prefer or "")
    return min(float(match.group(1)), cap) if match else 0.0


async def read_upload(image: UploadFile, settings: Settings, name: str = IMAGE) -> Upload:
    """The upload's bytes and header facts; problems name the form field when it is not ``image``."""
    try:
        data = await image.read()
        if len(data) > settings.max_upload_bytes:
            raise UploadTooLarge(f"the upload is {len(data):,} bytes; the limit is {settings.max_upload_bytes:,}")
        if not data:
            raise NotAnImage("the uploaded file is empty")
        return Upload(data, await run_in_threadpool(probe, data, settings.max_input_pixels))
    except ApiError as exc:
        if name != IMAGE:
            exc.detail = f"{name}: {exc.detail}"
            exc.extra.setdefault("field", name)
        raise


def resolve(state: GatewayState, task: Task, model: str | None, scale: int | None = None) -> ModelCard:
    try:
        return state.catalog.resolve(task, model, scale)
    except UnknownModel as exc:
        raise InvalidParameter(str(exc)) from exc


def choose_format(
    info: ImageInfo, scale: float, settings: Settings, fmt: OutputFormat | None, quality: int | None, what: str
) -> OutputFormat:
    """Check the output size (the input's times ``scale``); the output format (default
    png, webp for inputs with alpha). ``what`` names the operation in the message."""
    out_w, out_h = round(info.width * scale), round(info.height * scale)
    if out_w * out_h > settings.max_output_pixels:
        raise OutputTooLarge(
            f"{what} of {info.width}x{info.height} is {out_w}x{out_h} "
            f"({out_w * out_h:,} pixels); the output limit is {settings.max_output_pixels:,}"
        )
    chosen: OutputFormat = fmt or ("webp" if info.has_alpha else "png")
    if quality is not None and chosen == "png":
        raise InvalidParameter("quality applies to jpeg and webp output; png is lossless")
    return chosen


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
    state: GatewayState, task: Task, params: JobParams, uploads: dict[str, Upload], prefer: str | None
) -> Response:
    """Enqueue; answer 202, or wait up to ``Prefer: wait=N`` for the image."""
    meta = {
        "inputs": {
            name: {"format": u.info.format, "width": u.info.width, "height": u.info.height, "bytes": len(u.data)}
            for name, u in uploads.items()
        }
    }
    data = {name: u.data for name, u in uploads.items()}
    job_id = await run_in_threadpool(state.store.submit, task, params, data, meta)
    JOBS_SUBMITTED.labels(task=task, model=params.model).inc()
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
