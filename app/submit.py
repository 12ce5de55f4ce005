"""What every submit route shares: reading and probing uploads, resolving the model,
checking the output size, enqueueing, and answering 202 or (``Prefer: wait=N``) the
result itself. A task's route module only declares its form fields and builds its
``imgenhance.params`` model."""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import re
from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import Depends, File, Form, Header, Request, Response, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse
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
from app.probe import ImageInfo, probe, verify
from app.ratelimit import Caller
from app.schemas import JobView
from app.state import GatewayState
from app.store import Idempotency, ResultStream, fingerprint
from imgenhance import webhooks
from imgenhance.cards import ModelCard, Task
from imgenhance.catalog import UnknownModel
from imgenhance.jobs import JobMeta, JobStatus, UploadFacts
from imgenhance.params import IMAGE, JobParams, OutputFormat, quality_conflict
from imgenhance.settings import Settings

PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
IMAGE_TYPES: dict[str, Any] = {"image/png": {}, "image/jpeg": {}, "image/webp": {}}
RESULT_TYPES: dict[str, Any] = {**IMAGE_TYPES, "application/zip": {}}
# What any /v1 call may answer besides its own codes.
V1_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid API key", **PROBLEM},
    422: {"description": "Invalid parameter", **PROBLEM},
    429: {"description": "The key's request rate or active-job limit is reached (see Retry-After)", **PROBLEM},
    503: {"description": "Queue full, job store near its memory budget, or backend unreachable", **PROBLEM},
}
JOB_RESPONSES: dict[int | str, dict[str, Any]] = {
    **V1_RESPONSES,
    200: {"description": "With `Prefer: wait=N`: the finished result", "content": RESULT_TYPES},
    409: {"description": "With `Prefer: wait=N`: the job was canceled meanwhile", **PROBLEM},
    422: {"description": "Invalid parameter (or, with `Prefer: wait=N`, the job failed on this input)", **PROBLEM},
    500: {"description": "With `Prefer: wait=N`: the job failed in the service (retrying may succeed)", **PROBLEM},
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

# Longest side each encoder can write (the formats' own limits).
MAX_SIDE: dict[str, int] = {"webp": 16383, "jpeg": 65500}

_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d+(?:\.\d+)?)", re.IGNORECASE)


@dataclass(frozen=True)
class SubmitOptions:
    """How the client wants to hear of the job and retry its submit, apart from what the job does."""

    webhook: str | None = None
    idempotency_key: str | None = None


WebhookField = Annotated[
    str | None,
    Form(description="an http(s) URL to POST a signed event to when the job ends (Standard Webhooks)"),
]
IdempotencyHeader = Annotated[
    str | None,
    Header(
        max_length=255,
        description="any unique string: a retried submit with the same key (and the same request) "
        "returns the first job instead of making a second",
    ),
]


def submit_options(webhook: WebhookField = None, idempotency_key: IdempotencyHeader = None) -> SubmitOptions:
    return SubmitOptions(webhook, idempotency_key)


SubmitOptionsDep = Annotated[SubmitOptions, Depends(submit_options)]


@dataclass(frozen=True)
class Upload:
    data: bytes
    info: ImageInfo


def requested_wait(prefer: str | None, cap: float) -> float:
    """Seconds to wait from an RFC 7240 ``Prefer`` header (0 = answer 202 at once)."""
    match = _WAIT.search(prefer or "")
    return min(float(match.group(1)), cap) if match else 0.0


async def reject_unknown_fields(request: Request) -> None:
    """A misspelled form field (``Scale``, ``format``) would otherwise be ignored and the
    job run with defaults the client did not ask for: 422, naming the closest field."""
    content_type = request.headers.get("content-type", "")
    route = request.scope.get("route")
    if not content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")) or route is None:
        return
    known = sorted(_form_fields(route.dependant))
    unknown = [name for name in (await request.form()) if name not in known]
    if not unknown:
        return
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name.lower(), known, n=1, cutoff=0.6)
        hints.append(f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name))
    raise InvalidParameter(
        f"unknown form field{'s' if len(unknown) > 1 else ''} {', '.join(hints)}; this route takes {', '.join(known)}",
        fields=unknown,
        known_fields=known,
    )


def _form_fields(dependant: Any) -> set[str]:
    """The body fields a route takes, its dependencies' included."""
    names = {field.alias for field in dependant.body_params}
    for sub in dependant.dependencies:
        names |= _form_fields(sub)
    return names


FormFieldsDep = Depends(reject_unknown_fields)


def name_the_field(exc: ApiError, name: str) -> None:
    """A problem with an upload other than ``image`` says which form field it was."""
    if name != IMAGE:
        exc.detail = f"{name}: {exc.detail}"
        exc.extra.setdefault("field", name)


async def read_upload(image: UploadFile, settings: Settings, name: str = IMAGE) -> Upload:
    """The upload's bytes and header facts (nothing decoded yet); problems name the form
    field when it is not ``image``."""
    try:
        data = await image.read()
        if len(data) > settings.max_upload_bytes:
            raise UploadTooLarge(f"the upload is {len(data):,} bytes; the limit is {settings.max_upload_bytes:,}")
        if not data:
            raise NotAnImage("the uploaded file is empty")
        return Upload(data, await run_in_threadpool(probe, data, settings.max_input_pixels))
    except ApiError as exc:
        name_the_field(exc, name)
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
    # 16-bit inputs default to png, the one output that keeps 16 bits; so do alpha
    # outputs too large for webp.
    side = max(out_w, out_h)
    webp_fits = side <= MAX_SIDE["webp"]
    chosen: OutputFormat = fmt or ("webp" if info.has_alpha and info.bits == 8 and webp_fits else "png")
    conflict = quality_conflict(chosen, quality)
    if conflict:
        raise InvalidParameter(conflict, field="quality")
    if side > MAX_SIDE.get(chosen, side):
        raise InvalidParameter(
            f"{chosen} images can be at most {MAX_SIDE[chosen]:,} pixels a side and the output would be "
            f"{out_w}x{out_h}; ask for png"
        )
    return chosen


async def verify_uploads(state: GatewayState, uploads: dict[str, Upload]) -> dict[str, Upload]:
    """Decode each upload once, within the gateway's decode budget; 422 if damaged."""
    checked = {}
    for name, upload in uploads.items():
        async with state.decode_budget.hold(upload.info.decoded_bytes):
            try:
                info = await run_in_threadpool(verify, upload.data)
            except ApiError as exc:
                name_the_field(exc, name)
                raise
        checked[name] = replace(upload, info=info)
    return checked


def stream(result: ResultStream, headers: dict[str, str]) -> StreamingResponse:
    return StreamingResponse(
        result.chunks,
        media_type=result.content_type,
        headers={"Content-Length": str(result.size), **headers},
    )


async def wait_for(state: GatewayState, job_id: str, owner: Caller, timeout: float) -> JobView:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with state.hub.watch(job_id) as changed:
        while True:
            changed.clear()  # before reading, so a change during the read is not lost
            view = await run_in_threadpool(state.store.view, job_id, owner)
            remaining = deadline - loop.time()
            if view.status.finished or remaining <= 0:
                return view
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=min(remaining, 1.0))


def accepted(view: JobView, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        view.model_dump(mode="json"), status_code=202, headers={"Location": view.links["self"], **(headers or {})}
    )


async def submit(
    state: GatewayState,
    task: Task,
    params: JobParams,
    uploads: dict[str, Upload],
    prefer: str | None,
    owner: Caller,
    options: SubmitOptions,
) -> Response:
    """Verify the uploads, enqueue; answer 202, or wait up to ``Prefer: wait=N`` for the image."""
    if options.webhook is not None:
        if not state.settings.webhook_secret:
            raise InvalidParameter(
                "this service sends no webhooks: its operator has not set IMGENHANCE_WEBHOOK_SECRET", field="webhook"
            )
        try:
            await run_in_threadpool(webhooks.check_target, options.webhook, state.settings.webhook_allow_private)
        except webhooks.WebhookRefused as exc:
            raise InvalidParameter(str(exc), field="webhook") from exc
    uploads = await verify_uploads(state, uploads)
    meta = JobMeta(
        inputs={
            name: UploadFacts(format=u.info.format, width=u.info.width, height=u.info.height, bytes=len(u.data))
            for name, u in uploads.items()
        },
        webhook=options.webhook,
    )
    data = {name: u.data for name, u in uploads.items()}
    idempotency = None
    if options.idempotency_key is not None:
        idempotency = Idempotency(options.idempotency_key, fingerprint(task, params, data, options.webhook))
    job_id, replayed = await run_in_threadpool(state.store.submit, task, params, data, meta, owner, idempotency)
    replay = {"Idempotent-Replayed": "true"} if replayed else {}
    if not replayed:
        JOBS_SUBMITTED.labels(task=task, model=params.model).inc()
    wait = requested_wait(prefer, state.settings.max_wait_seconds)
    if not wait:
        return accepted(await run_in_threadpool(state.store.view, job_id, owner), replay)
    view = await wait_for(state, job_id, owner, wait)
    links = {"job": view.links["self"]}
    if view.status is JobStatus.SUCCEEDED:
        result = await run_in_threadpool(state.store.result, job_id, owner)
        return stream(
            result,
            {
                "Preference-Applied": f"wait={wait:g}",
                "Content-Location": view.links["result"],
                "Link": f'<{view.links["self"]}>; rel="monitor"',
                "X-Job-Id": job_id,
                **replay,
            },
        )
    if view.status is JobStatus.FAILED:
        error = JobFailed if view.error_kind == "input" else JobFailedInternally
        raise error(view.error or "the job failed", job_id=job_id, links=links)
    if view.status is JobStatus.CANCELED:
        raise JobNotFinished(f"job {job_id} was canceled", job_id=job_id, links=links)
    return accepted(view, replay)  # still queued or running after the wait
