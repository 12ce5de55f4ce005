"""/v1/jobs/{id}: a job's state, its result, cancelling it. Submitting is one route
module per task (``super_resolve``, ``denoise``, ``style_transfer``, ``generate``).
A job exists only for the key that made it."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from app.deps import ApiKeyDep, CallerDep, StateDep
from app.schemas import JobList, JobView
from app.store import PageCursor
from app.submit import PROBLEM, RESULT_TYPES, V1_RESPONSES, stream

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such job for this key (never made, another key's, or expired)", **PROBLEM}
}
router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=[ApiKeyDep], responses={**V1_RESPONSES, **NOT_FOUND})


@router.get("", response_model=JobList, summary="The caller's jobs, newest first, a page at a time")
async def list_jobs(
    state: StateDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=100, description="jobs per page")] = 20,
    cursor: Annotated[str | None, Query(max_length=200, description="from the previous page's `next`")] = None,
) -> JobList:
    """Jobs live as long as their data (``IMGENHANCE_DATA_TTL_SECONDS``); a client that
    lost track of its jobs (a restart) finds them here."""
    after = PageCursor.parse(cursor) if cursor is not None else None
    page, last = await run_in_threadpool(state.store.owned, caller, limit, after)
    following = f"/v1/jobs?{urlencode({'limit': limit, 'cursor': str(last)})}" if last is not None else None
    return JobList(jobs=page, next=following)


@router.get("/{job_id}", response_model=JobView, summary="A job's state, progress, timings and error")
async def get_job(job_id: str, state: StateDep, caller: CallerDep) -> JobView:
    return await run_in_threadpool(state.store.view, job_id, caller)


@router.get(
    "/{job_id}/result",
    summary="The finished image (streamed)",
    response_class=StreamingResponse,
    responses={
        200: {"content": RESULT_TYPES},
        409: {"description": "Not finished (or failed)", **PROBLEM},
    },
)
async def get_result(job_id: str, state: StateDep, caller: CallerDep) -> StreamingResponse:
    result = await run_in_threadpool(state.store.result, job_id, caller)
    ext = result.content_type.split("/")[-1]
    disposition = "attachment" if result.content_type == "application/zip" else "inline"
    return stream(result, {"Content-Disposition": f'{disposition}; filename="{job_id}.{ext}"'})


@router.delete(
    "/{job_id}",
    response_model=JobView,
    summary="Cancel a job",
    responses={
        202: {"description": "Running: the worker stops at its next tile", "model": JobView},
        409: {"description": "Already finished", **PROBLEM},
    },
)
async def cancel_job(job_id: str, state: StateDep, caller: CallerDep) -> JSONResponse:
    view = await run_in_threadpool(state.store.cancel, job_id, caller)
    return JSONResponse(view.model_dump(mode="json"), status_code=200 if view.status.finished else 202)
