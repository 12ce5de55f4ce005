"""A Python client for the imgenhance HTTP API: ``Client`` (blocking) and ``AsyncClient``.

    from imgenhance.client import Client

    with Client("http://127.0.0.1:8000") as client:  # the key comes from $IMGENHANCE_API_KEY
        result = client.super_resolve("photo.jpg", outscale=3.5)
        result.save("photo_x3.5.png")
        result.image()  # a PIL image, decoded when asked for
        result.job  # the job record: model, params, timings

An image is a path, bytes, a binary file object or a PIL image. A call returns when
the job has ended: the submit asks for the image itself with ``Prefer: wait=N``, and
if the job is still going after that (a 202), the client polls the job, then downloads
its result.

Retries: an answer with ``Retry-After`` (429, 503) is retried after that many
seconds. Connection errors and 502/503/504 are retried with backoff for reads,
cancels and submits; every submit carries an ``Idempotency-Key``, so a retried one
returns the first job rather than making a second.

Every error is an exception; those the service answered carry its problem+json fields
(``status``, ``code``, ``title``, ``detail`` and the extra fields in ``extra``):

    ImgenhanceError
     ├── ApiError .................. any problem+json answer
     │    ├── Unauthorized ......... 401
     │    ├── NotFound ............. 404  (no such job for this key, or expired)
     │    ├── Conflict ............. 409  (result asked too early, cancel after the end)
     │    │    └── JobCanceled ..... the job was canceled before it ended
     │    ├── PayloadTooLarge ...... 413
     │    ├── UnsupportedMediaType . 415
     │    ├── Unprocessable ........ 422  (bad parameter, damaged image)
     │    ├── TooManyRequests ...... 429  (still, after the retries)
     │    ├── JobFailed ............ the job failed: 422 on its input, 500 in the service
     │    └── ServerError .......... 5xx
     │         └── ServiceUnavailable  503
     ├── Unreachable ............... no answer at all (after the retries)
     └── WaitTimeout ............... the job had not ended within ``timeout`` (``.job``)

Both clients run the same request plans (generators that yield "send this" or "sleep
this long"), so retries, waiting and errors behave identically; only the I/O differs.
"""

from __future__ import annotations

import asyncio
import email.utils
import io
import os
import random
import time
import uuid
from collections.abc import AsyncIterator, Generator, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, Required, Self, TypeAlias, TypedDict, TypeVar, Unpack

import httpx
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "API_KEY_ENV",
    "ApiError",
    "AsyncClient",
    "Client",
    "Conflict",
    "DenoiseOptions",
    "GenerateOptions",
    "ImageInput",
    "ImgenhanceError",
    "Job",
    "JobCanceled",
    "JobFailed",
    "JobOptions",
    "JobPage",
    "NotFound",
    "PayloadTooLarge",
    "Result",
    "ServerError",
    "ServiceUnavailable",
    "StyleTransferOptions",
    "SuperResolveOptions",
    "TooManyRequests",
    "Unauthorized",
    "Unprocessable",
    "Unreachable",
    "UnsupportedMediaType",
    "WaitTimeout",
]

DEFAULT_URL = "http://127.0.0.1:8000"
API_KEY_ENV = "IMGENHANCE_API_KEY"

ImageInput: TypeAlias = str | os.PathLike[str] | bytes | IO[bytes] | Image.Image
Status = Literal["queued", "running", "succeeded", "failed", "canceled"]
FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "canceled"})
OutputFormat = Literal["png", "jpeg", "webp"]
T = TypeVar("T")


# --- What the API answers ----------------------------------------------------------


class ResultInfo(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    content_type: str
    bytes: int
    width: int
    height: int


class Job(BaseModel):
    """A job record, as ``GET /v1/jobs/{id}`` answers it (fields added by a newer
    service are kept as extra attributes)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str
    task: str
    status: Status
    progress: float = 0.0
    params: dict[str, Any] = Field(default_factory=dict)
    model: str = ""
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    timings: dict[str, float | None] = Field(default_factory=dict)
    attempts: int = 0
    error: str | None = None
    error_kind: str | None = None
    result: ResultInfo | None = None
    webhook: dict[str, Any] | None = None
    links: dict[str, str] = Field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class JobPage(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    jobs: list[Job]
    next: str | None = None


@dataclass(frozen=True)
class Result:
    """A finished job's output: the encoded bytes, and the job that made them."""

    data: bytes
    content_type: str
    job: Job

    @property
    def id(self) -> str:
        return self.job.id

    def image(self) -> Image.Image:
        """The result decoded by Pillow (which reads 16-bit colour PNGs as 8-bit; use
        ``data`` with OpenCV or ``imageio`` to keep 16 bits)."""
        im = Image.open(io.BytesIO(self.data))
        im.load()
        return im

    def save(self, path: str | os.PathLike[str]) -> Path:
        target = Path(path)
        target.write_bytes(self.data)
        return target


# --- Errors ------------------------------------------------------------------------


class ImgenhanceError(Exception):
    """Anything this client raises on purpose."""


class Unreachable(ImgenhanceError):
    """No answer from the service (connection refused, reset, timed out), after the retries."""


class WaitTimeout(ImgenhanceError):
    """The job had not ended when the call's ``timeout`` ran out; it goes on in the service."""

    def __init__(self, job: Job, timeout: float) -> None:
        super().__init__(f"job {job.id} is still {job.status} after {timeout:g} s")
        self.job = job


_PROBLEM_FIELDS = ("type", "title", "status", "detail", "instance", "code")


class ApiError(ImgenhanceError):
    """An error answer (``application/problem+json``, RFC 9457)."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str,
        *,
        type: str | None = None,
        instance: str | None = None,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        job: Job | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status, self.code, self.title, self.detail = status, code, title, detail
        self.type, self.instance = type, instance
        self.extra: dict[str, Any] = dict(extra or {})
        self.headers: dict[str, str] = {k.lower(): v for k, v in (headers or {}).items()}
        self.job = job

    @property
    def retry_after(self) -> float | None:
        return _retry_after(self.headers.get("retry-after"))

    def with_job(self, job: Job) -> Self:
        """The same error, with the record of the job it is about."""
        return type(self)(
            self.status,
            self.code,
            self.title,
            self.detail,
            type=self.type,
            instance=self.instance,
            extra=self.extra,
            headers=self.headers,
            job=job,
        )


class Unauthorized(ApiError):
    pass


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    pass


class JobCanceled(Conflict):
    pass


class PayloadTooLarge(ApiError):
    pass


class UnsupportedMediaType(ApiError):
    pass


class Unprocessable(ApiError):
    pass


class TooManyRequests(ApiError):
    pass


class JobFailed(ApiError):
    pass


class ServerError(ApiError):
    pass


class ServiceUnavailable(ServerError):
    pass


_BY_STATUS: dict[int, type[ApiError]] = {
    401: Unauthorized,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: Unprocessable,
    429: TooManyRequests,
    503: ServiceUnavailable,
}


def error_from(response: httpx.Response) -> ApiError:
    """The exception for an error answer, from its problem+json body (or its status alone)."""
    body: Any = None
    if "json" in response.headers.get("content-type", ""):
        try:
            body = response.json()
        except ValueError:
            body = None
    problem: dict[str, Any] = body if isinstance(body, dict) else {}
    status = response.status_code
    code = str(problem.get("code") or f"http-{status}")
    cls = JobFailed if code == "job-failed" else _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    detail = problem.get("detail") or response.text.strip()[:300] or response.reason_phrase
    return cls(
        status,
        code,
        str(problem.get("title") or response.reason_phrase),
        str(detail),
        type=problem.get("type"),
        instance=problem.get("instance"),
        extra={k: v for k, v in problem.items() if k not in _PROBLEM_FIELDS},
        headers=response.headers,
    )


def job_error(job: Job) -> ApiError:
    """A job that ended without a result, as the exception a waiting submit would get."""
    if job.status == "canceled":
        return JobCanceled(409, "job-canceled", "Job canceled", f"job {job.id} was canceled", job=job)
    status = 422 if job.error_kind == "input" else 500
    return JobFailed(status, "job-failed", "Job failed", job.error or "the job failed", job=job)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


# --- What a call sends -------------------------------------------------------------


class JobOptions(TypedDict, total=False):
    """Options every task takes. An option left out, or None, is the service's default."""

    output_format: OutputFormat | None
    quality: int | None
    webhook: str | None
    #: Seconds to wait for the job to end (default: the client's ``job_timeout``).
    timeout: float | None
    #: Sent as the ``Idempotency-Key`` header (default: a new random key per call).
    idempotency_key: str | None


class SuperResolveOptions(JobOptions, total=False):
    scale: int | None
    outscale: float | None
    model: str | None


class DenoiseOptions(JobOptions, total=False):
    sigma: float | None
    strength: float | None
    artifacts: Literal["noise", "jpeg"] | None
    jpeg_quality: int | None
    model: str | None


class StyleTransferOptions(JobOptions, total=False):
    style: str | None
    style_image: ImageInput | None
    strength: float | None
    preserve_color: bool | None
    max_side: int | None
    keep_size: bool | None
    style_side: int | None


class Interpolate(TypedDict, total=False):
    to_seed: Required[int]
    steps: int


class GenerateOptions(JobOptions, total=False):
    model: str | None
    n: int | None
    seed: int | None
    #: A class name or index (the API's ``class`` field).
    label: str | int | None
    truncation: float | None
    interpolate: Interpolate | None
    output: Literal["grid", "zip"] | None


_CALL_ONLY = ("timeout", "idempotency_key")


@dataclass(frozen=True)
class _Call:
    method: str
    url: str
    data: dict[str, str] | None = None
    files: dict[str, tuple[str, bytes]] | None = None
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    read_timeout: float | None = None


@dataclass(frozen=True)
class _Send:
    call: _Call


@dataclass(frozen=True)
class _Sleep:
    seconds: float


_Plan: TypeAlias = Generator[_Send | _Sleep, httpx.Response | None, T]

_PNG_MODES = {"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"}


def image_bytes(image: ImageInput, default_name: str = "image") -> tuple[str, bytes]:
    """An upload's file name and bytes. PIL images are sent losslessly: PNG, or TIFF for
    modes PNG cannot hold (CMYK, float)."""
    if isinstance(image, Image.Image):
        buf = io.BytesIO()
        fmt = "PNG" if image.mode in _PNG_MODES else "TIFF"
        image.save(buf, fmt)
        return f"{default_name}.{fmt.lower()}", buf.getvalue()
    if isinstance(image, bytes | bytearray | memoryview):
        return default_name, bytes(image)
    if isinstance(image, str | os.PathLike):
        path = Path(image)
        return path.name, path.read_bytes()
    if hasattr(image, "read"):
        data = image.read()
        if not isinstance(data, bytes):
            raise TypeError("open image files in binary mode ('rb')")
        name = getattr(image, "name", None)
        return (Path(name).name if isinstance(name, str) else default_name), data
    raise TypeError(f"an image is a path, bytes, a binary file or a PIL image, not {type(image).__name__}")


def _form_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _form(
    url: str, image: ImageInput, fields: Mapping[str, object], uploads: Mapping[str, ImageInput] | None = None
) -> _Call:
    files = {"image": image_bytes(image)}
    for name, upload in (uploads or {}).items():
        files[name] = image_bytes(upload, name)
    data = {k: _form_value(v) for k, v in fields.items() if v is not None and k not in _CALL_ONLY}
    return _Call("POST", url, data=data, files=files)


def _super_resolve(image: ImageInput, options: SuperResolveOptions) -> _Call:
    return _form("/v1/jobs/super-resolve", image, options)


def _denoise(image: ImageInput, options: DenoiseOptions) -> _Call:
    return _form("/v1/jobs/denoise", image, options)


def _style_transfer(image: ImageInput, options: StyleTransferOptions) -> _Call:
    fields = {k: v for k, v in options.items() if k != "style_image"}
    style_image = options.get("style_image")
    return _form(
        "/v1/jobs/style-transfer", image, fields, {"style_image": style_image} if style_image is not None else None
    )


def _generate(options: GenerateOptions) -> _Call:
    body = {("class" if k == "label" else k): v for k, v in options.items() if v is not None and k not in _CALL_ONLY}
    return _Call("POST", "/v1/jobs/generate", json=body)


class _Plans:
    """Settings shared by both clients and the request plans they run."""

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        wait: float,
        job_timeout: float,
        request_timeout: float,
        retries: int,
        max_retry_after: float,
        poll_interval: float,
    ) -> None:
        self.base_url = (base_url or os.environ.get("IMGENHANCE_URL") or DEFAULT_URL).rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None
        self.wait_seconds, self.job_timeout, self.request_timeout = wait, job_timeout, request_timeout
        self.retries, self.max_retry_after, self.poll_interval = retries, max_retry_after, poll_interval

    def _headers(self) -> dict[str, str]:
        headers = {"User-Agent": "imgenhance-client"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    @staticmethod
    def _backoff(attempt: int) -> float:
        return float(min(8.0, 0.25 * 2 ** (attempt - 1)) * (0.5 + random.random() / 2))

    # One request, retried as the module docstring says.
    def _request(self, call: _Call) -> _Plan[httpx.Response]:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = yield _Send(call)
            except httpx.TransportError as exc:
                if attempt > self.retries:  # every call is safe to repeat (submits carry an Idempotency-Key)
                    raise Unreachable(f"{call.method} {self.base_url}{call.url}: {exc!r}") from exc
                yield _Sleep(self._backoff(attempt))
                continue
            if response is None:
                raise RuntimeError("the client's driver sent no response")
            if response.status_code < 400:
                return response
            if attempt <= self.retries:
                delay = _retry_after(response.headers.get("retry-after"))
                if delay is not None and response.status_code in (429, 503):
                    if delay <= self.max_retry_after:  # a longer wait is the caller's to choose
                        yield _Sleep(delay)
                        continue
                elif response.status_code in (502, 503, 504):
                    yield _Sleep(self._backoff(attempt))
                    continue
            raise error_from(response)

    def _get_job(self, job_id: str) -> _Plan[Job]:
        response = yield from self._request(_Call("GET", f"/v1/jobs/{job_id}"))
        return Job.model_validate(response.json())

    def _prepared(self, call: _Call, options: JobOptions, wait: float) -> _Call:
        headers = {**call.headers, "Idempotency-Key": options.get("idempotency_key") or uuid.uuid4().hex}
        if wait > 0:
            headers["Prefer"] = f"wait={wait:g}"
        return replace(call, headers=headers, read_timeout=wait + self.request_timeout)

    def _start(self, call: _Call, options: JobOptions) -> _Plan[Job]:
        """Submit and return the queued job at once."""
        response = yield from self._request(self._prepared(call, options, 0))
        return Job.model_validate(response.json())

    def _submit(self, call: _Call, options: JobOptions) -> _Plan[Result]:
        """Submit, wait (``Prefer: wait``, then polling) and fetch the result."""
        timeout = options.get("timeout")
        timeout = self.job_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        try:
            response = yield from self._request(self._prepared(call, options, min(self.wait_seconds, timeout)))
        except (JobFailed, Conflict) as exc:  # the job ended badly while the submit waited
            job_id = exc.extra.get("job_id")
            if not isinstance(job_id, str):
                raise
            job = yield from self._get_job(job_id)
            raise (job_error(job) if job.status == "canceled" else exc.with_job(job)) from None
        if response.status_code == 200:
            job = yield from self._get_job(response.headers["x-job-id"])
            return Result(response.content, response.headers.get("content-type", ""), job)
        return (yield from self._finish(Job.model_validate(response.json()), deadline, timeout))

    def _finish(self, job: Job, deadline: float, timeout: float) -> _Plan[Result]:
        delay = self.poll_interval
        while not job.finished:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(job, timeout)
            yield _Sleep(min(delay, remaining))
            delay = min(delay * 1.5, 2.0)
            job = yield from self._get_job(job.id)
        if job.status != "succeeded":
            raise job_error(job)
        response = yield from self._request(_Call("GET", job.links.get("result", f"/v1/jobs/{job.id}/result")))
        return Result(response.content, response.headers.get("content-type", ""), job)

    def _wait(self, job: Job | str, timeout: float | None) -> _Plan[Result]:
        current = job if isinstance(job, Job) else (yield from self._get_job(job))
        limit = self.job_timeout if timeout is None else timeout
        return (yield from self._finish(current, time.monotonic() + limit, limit))

    def _cancel(self, job_id: str) -> _Plan[Job]:
        response = yield from self._request(_Call("DELETE", f"/v1/jobs/{job_id}"))
        return Job.model_validate(response.json())

    def _result(self, job_id: str) -> _Plan[Result]:
        job = yield from self._get_job(job_id)
        if job.status != "succeeded":
            raise (
                job_error(job)
                if job.finished
                else Conflict(409, "job-not-finished", "Job not finished", f"job {job_id} is {job.status}")
            )
        response = yield from self._request(_Call("GET", job.links.get("result", f"/v1/jobs/{job_id}/result")))
        return Result(response.content, response.headers.get("content-type", ""), job)

    def _models(self) -> _Plan[list[dict[str, Any]]]:
        response = yield from self._request(_Call("GET", "/v1/models"))
        models: list[dict[str, Any]] = response.json()["models"]
        return models

    def _page(self, url: str) -> _Plan[JobPage]:
        response = yield from self._request(_Call("GET", url))
        return JobPage.model_validate(response.json())

    def _build(self, http: httpx.Client | httpx.AsyncClient, call: _Call) -> httpx.Request:
        timeout = httpx.Timeout(self.request_timeout, read=call.read_timeout or self.request_timeout)
        return http.build_request(
            call.method,
            call.url,
            data=call.data,
            files=call.files,
            json=call.json,
            headers=call.headers,
            timeout=timeout,
        )


class Client(_Plans):
    """The blocking client; one can be shared between threads (as httpx's can)."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        wait: float = 30.0,
        job_timeout: float = 600.0,
        request_timeout: float = 60.0,
        retries: int = 5,
        max_retry_after: float = 120.0,
        poll_interval: float = 0.1,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``base_url``: default ``$IMGENHANCE_URL`` or http://127.0.0.1:8000; ``api_key``:
        default ``$IMGENHANCE_API_KEY``; ``wait``: seconds of ``Prefer: wait`` per submit
        (0 = poll only); ``job_timeout``: how long a call waits for its job."""
        super().__init__(base_url, api_key, wait, job_timeout, request_timeout, retries, max_retry_after, poll_interval)
        self._http = httpx.Client(base_url=self.base_url, headers=self._headers(), transport=transport)

    def _run(self, plan: _Plan[T]) -> T:
        reply: httpx.Response | httpx.TransportError | None = None
        while True:
            try:
                step = plan.throw(reply) if isinstance(reply, httpx.TransportError) else plan.send(reply)
            except StopIteration as done:
                result: T = done.value
                return result
            reply = None
            if isinstance(step, _Sleep):
                time.sleep(step.seconds)
                continue
            try:
                reply = self._http.send(self._build(self._http, step.call))
            except httpx.TransportError as exc:
                reply = exc

    def super_resolve(self, image: ImageInput, **options: Unpack[SuperResolveOptions]) -> Result:
        """Upscale: ``scale`` 2 or 4, or ``outscale`` any factor in (1, 8]; ``model`` an id or a variant."""
        return self._run(self._submit(_super_resolve(image, options), options))

    def denoise(self, image: ImageInput, **options: Unpack[DenoiseOptions]) -> Result:
        """Remove noise: blind, or ``sigma`` (0-75: how much); ``strength`` 0..1 of the correction;
        ``artifacts="jpeg"`` for compression artefacts (``jpeg_quality``, else read from the file)."""
        return self._run(self._submit(_denoise(image, options), options))

    def style_transfer(self, image: ImageInput, **options: Unpack[StyleTransferOptions]) -> Result:
        """Repaint in a named ``style`` or in the style of ``style_image``."""
        return self._run(self._submit(_style_transfer(image, options), options))

    def generate(self, **options: Unpack[GenerateOptions]) -> Result:
        """New images from a generator (``n``, ``seed``, ``label``, ``truncation``, ``interpolate``)."""
        return self._run(self._submit(_generate(options), options))

    # The same four without waiting: the queued job, for ``wait``, ``job`` or ``cancel`` later.
    def submit_super_resolve(self, image: ImageInput, **options: Unpack[SuperResolveOptions]) -> Job:
        return self._run(self._start(_super_resolve(image, options), options))

    def submit_denoise(self, image: ImageInput, **options: Unpack[DenoiseOptions]) -> Job:
        return self._run(self._start(_denoise(image, options), options))

    def submit_style_transfer(self, image: ImageInput, **options: Unpack[StyleTransferOptions]) -> Job:
        return self._run(self._start(_style_transfer(image, options), options))

    def submit_generate(self, **options: Unpack[GenerateOptions]) -> Job:
        return self._run(self._start(_generate(options), options))

    def job(self, job_id: str) -> Job:
        return self._run(self._get_job(job_id))

    def wait(self, job: Job | str, timeout: float | None = None) -> Result:
        """Wait for a job made earlier (by id, say after a restart) and fetch its result."""
        return self._run(self._wait(job, timeout))

    def result(self, job_id: str) -> Result:
        """A finished job's result, without waiting (``Conflict`` while it runs)."""
        return self._run(self._result(job_id))

    def cancel(self, job_id: str) -> Job:
        """Cancel: a queued job at once; a running one at its next tile (poll ``job``)."""
        return self._run(self._cancel(job_id))

    def models(self) -> list[dict[str, Any]]:
        """The model cards (``GET /v1/models``)."""
        return self._run(self._models())

    def jobs(self, page_size: int = 20) -> Iterator[Job]:
        """This key's jobs, newest first, fetched a page at a time as you iterate."""
        url: str | None = f"/v1/jobs?limit={page_size}"
        while url is not None:
            page = self._run(self._page(url))
            yield from page.jobs
            url = page.next

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class AsyncClient(_Plans):
    """The asyncio client: the same calls as ``Client``, awaited."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        wait: float = 30.0,
        job_timeout: float = 600.0,
        request_timeout: float = 60.0,
        retries: int = 5,
        max_retry_after: float = 120.0,
        poll_interval: float = 0.1,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, api_key, wait, job_timeout, request_timeout, retries, max_retry_after, poll_interval)
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=self._headers(), transport=transport)

    async def _run(self, plan: _Plan[T]) -> T:
        reply: httpx.Response | httpx.TransportError | None = None
        while True:
            try:
                step = plan.throw(reply) if isinstance(reply, httpx.TransportError) else plan.send(reply)
            except StopIteration as done:
                result: T = done.value
                return result
            reply = None
            if isinstance(step, _Sleep):
                await asyncio.sleep(step.seconds)
                continue
            try:
                reply = await self._http.send(self._build(self._http, step.call))
            except httpx.TransportError as exc:
                reply = exc

    async def super_resolve(self, image: ImageInput, **options: Unpack[SuperResolveOptions]) -> Result:
        return await self._run(self._submit(_super_resolve(image, options), options))

    async def denoise(self, image: ImageInput, **options: Unpack[DenoiseOptions]) -> Result:
        return await self._run(self._submit(_denoise(image, options), options))

    async def style_transfer(self, image: ImageInput, **options: Unpack[StyleTransferOptions]) -> Result:
        return await self._run(self._submit(_style_transfer(image, options), options))

    async def generate(self, **options: Unpack[GenerateOptions]) -> Result:
        return await self._run(self._submit(_generate(options), options))

    async def submit_super_resolve(self, image: ImageInput, **options: Unpack[SuperResolveOptions]) -> Job:
        return await self._run(self._start(_super_resolve(image, options), options))

    async def submit_denoise(self, image: ImageInput, **options: Unpack[DenoiseOptions]) -> Job:
        return await self._run(self._start(_denoise(image, options), options))

    async def submit_style_transfer(self, image: ImageInput, **options: Unpack[StyleTransferOptions]) -> Job:
        return await self._run(self._start(_style_transfer(image, options), options))

    async def submit_generate(self, **options: Unpack[GenerateOptions]) -> Job:
        return await self._run(self._start(_generate(options), options))

    async def job(self, job_id: str) -> Job:
        return await self._run(self._get_job(job_id))

    async def wait(self, job: Job | str, timeout: float | None = None) -> Result:
        return await self._run(self._wait(job, timeout))

    async def result(self, job_id: str) -> Result:
        return await self._run(self._result(job_id))

    async def cancel(self, job_id: str) -> Job:
        return await self._run(self._cancel(job_id))

    async def models(self) -> list[dict[str, Any]]:
        return await self._run(self._models())

    async def jobs(self, page_size: int = 20) -> AsyncIterator[Job]:
        url: str | None = f"/v1/jobs?limit={page_size}"
        while url is not None:
            page = await self._run(self._page(url))
            for job in page.jobs:
                yield job
            url = page.next

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
