"""Errors the API reports, each carrying its HTTP status, and the one handler that
renders them as ``application/problem+json`` (RFC 9457).

    ApiError ..................... 500  internal-error (also any unhandled exception)
     ├── Unauthorized ............ 401  missing or wrong API key
     ├── NotFound ................ 404  JobNotFound, ResultNotFound
     ├── Conflict ................ 409  JobNotFinished, JobNotCancelable
     ├── PayloadTooLarge ......... 413  UploadTooLarge, ImageTooLarge, OutputTooLarge
     ├── UnsupportedMediaType .... 415  NotAnImage, UnsupportedFormat
     ├── Unprocessable ........... 422  CorruptImage, InvalidParameter, JobFailed
     ├── TooManyRequests ......... 429  RateLimited, TooManyActiveJobs
     ├── JobFailedInternally ..... 500
     └── ServiceUnavailable ...... 503  QueueFull, BackendUnavailable, BackendFull

Raised by the framework and mapped here: a body that cannot be parsed (400
``malformed-body``), an unknown path or method (404, 405), a request that fails
validation (422 ``invalid-parameter``), Redis unreachable (503 ``backend-unavailable``)
or out of memory (503 ``backend-full``). Any other Redis error is a bug of ours, so it
is a 500 like every other unhandled exception.

Every body has ``type``, ``title``, ``status``, ``detail`` (a sentence for a person),
``instance`` (the request path) and ``code`` (a stable slug to branch on).
"""

from __future__ import annotations

import json
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import OutOfMemoryError, ReadOnlyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.metrics import REJECTED

PROBLEM_JSON = "application/problem+json"


class ApiError(Exception):
    status = 500
    code = "internal-error"
    title = "Internal error"

    def __init__(self, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


class Unauthorized(ApiError):
    status, code, title = 401, "unauthorized", "Missing or invalid API key"


class NotFound(ApiError):
    status, code, title = 404, "not-found", "Not found"


class JobNotFound(NotFound):
    code, title = "job-not-found", "No such job"


class ResultNotFound(NotFound):
    code, title = "result-not-found", "Result not available"


class Conflict(ApiError):
    status, code, title = 409, "conflict", "Conflict"


class JobNotFinished(Conflict):
    code, title = "job-not-finished", "Job not finished"


class JobNotCancelable(Conflict):
    code, title = "job-not-cancelable", "Job cannot be canceled"


class PayloadTooLarge(ApiError):
    status, code, title = 413, "payload-too-large", "Payload too large"


class UploadTooLarge(PayloadTooLarge):
    code, title = "upload-too-large", "Upload too large"


class ImageTooLarge(PayloadTooLarge):
    code, title = "image-too-large", "Image has too many pixels"


class OutputTooLarge(PayloadTooLarge):
    code, title = "output-too-large", "Output would have too many pixels"


class UnsupportedMediaType(ApiError):
    status, code, title = 415, "unsupported-media-type", "Unsupported media type"


class NotAnImage(UnsupportedMediaType):
    code, title = "not-an-image", "Not an image"


class UnsupportedFormat(UnsupportedMediaType):
    code, title = "unsupported-format", "Unsupported image format"


class Unprocessable(ApiError):
    status, code, title = 422, "unprocessable", "Unprocessable request"


class CorruptImage(Unprocessable):
    code, title = "corrupt-image", "Image is damaged"


class InvalidParameter(Unprocessable):
    code, title = "invalid-parameter", "Invalid parameter"


class JobFailed(Unprocessable):
    code, title = "job-failed", "Job failed"


class TooManyRequests(ApiError):
    status, code, title = 429, "too-many-requests", "Too many requests"


class RateLimited(TooManyRequests):
    code, title = "rate-limited", "Request rate limit reached"


class TooManyActiveJobs(TooManyRequests):
    code, title = "too-many-active-jobs", "Too many unfinished jobs"


class JobFailedInternally(ApiError):
    status, code, title = 500, "job-failed", "Job failed"


class ServiceUnavailable(ApiError):
    status, code, title = 503, "service-unavailable", "Service unavailable"


class QueueFull(ServiceUnavailable):
    code, title = "queue-full", "Queue full"


class BackendUnavailable(ServiceUnavailable):
    code, title = "backend-unavailable", "Queue backend unreachable"


class BackendFull(ServiceUnavailable):
    code, title = "backend-full", "Queue backend near its memory budget"


def problem_body(status: int, code: str, title: str, detail: str, instance: str, **extra: Any) -> dict[str, Any]:
    REJECTED.labels(code=code).inc()
    return {
        "type": f"/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "code": code,
        **extra,
    }


def problem(
    status: int, code: str, title: str, detail: str, instance: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = problem_body(status, code, title, detail, instance, **extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return problem(exc.status, exc.code, exc.title, exc.detail, request.url.path, exc.headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"] if p not in ("body", "query", "header")), "message": e["msg"]}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem(422, "invalid-parameter", "Invalid parameter", detail, request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, title = HTTP_PROBLEMS.get(exc.status_code, ("http-error", str(exc.detail)))
        return problem(exc.status_code, code, title, str(exc.detail), request.url.path, dict(exc.headers or {}))

    @app.exception_handler(redis.ConnectionError)
    @app.exception_handler(redis.TimeoutError)
    @app.exception_handler(ReadOnlyError)  # a replica during failover
    async def backend_error(request: Request, exc: redis.RedisError) -> JSONResponse:
        return problem(
            503,
            BackendUnavailable.code,
            BackendUnavailable.title,
            f"the job queue (Redis) is unreachable: {exc}",
            request.url.path,
            {"Retry-After": "5"},
        )

    @app.exception_handler(OutOfMemoryError)
    async def backend_full(request: Request, exc: OutOfMemoryError) -> JSONResponse:
        return problem(
            503,
            BackendFull.code,
            BackendFull.title,
            f"the job store (Redis) is out of memory: {exc}",
            request.url.path,
            {"Retry-After": "30"},
        )

    @app.exception_handler(Exception)  # Starlette still re-raises it afterwards, so it is logged
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        return problem(
            500, ApiError.code, ApiError.title, "an internal error; the gateway's log has the details", request.url.path
        )


# Framework errors by status: (code, title). Starlette and FastAPI raise 400 only when
# they cannot parse a body (broken multipart, JSON that is not UTF-8).
HTTP_PROBLEMS = {
    400: ("malformed-body", "Malformed request body"),
    404: ("not-found", "Not Found"),
    405: ("method-not-allowed", "Method Not Allowed"),
}
PROBLEM_CONTENT: dict[str, Any] = {"content": {PROBLEM_JSON: {}}}
# What any route that reads a request body may answer before its handler runs.
BODY_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body cannot be parsed (broken multipart, or JSON that is not UTF-8)", **PROBLEM_CONTENT},
    413: {"description": "The body is over the upload limit", **PROBLEM_CONTENT},
}
_FASTAPI_VALIDATION_REF = "#/components/schemas/HTTPValidationError"


def document_problems(app: FastAPI) -> None:
    """Make /openapi.json say what the handlers above answer. FastAPI documents its own
    validation body (``application/json``, ``HTTPValidationError``) on every route with
    parameters that declares no 422 itself; the 422 this app sends is a problem."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _validation_as_problem(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _validation_as_problem(schema: dict[str, Any]) -> dict[str, Any]:
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            response = operation.get("responses", {}).get("422", {})
            documented = response.get("content", {}).get("application/json", {}).get("schema", {})
            if documented.get("$ref") == _FASTAPI_VALIDATION_REF:
                response.update(description="Invalid parameter", content={PROBLEM_JSON: {}})
    if _FASTAPI_VALIDATION_REF not in json.dumps(schema):
        components = schema.get("components", {}).get("schemas", {})
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
    return schema
