"""/v1/jobs/{id}: a job's state, its result, cancelling it. Submitting is one route
module per task (``super_resolve``, ``denoise``, ``style_transfer``, ``generate``)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from app.deps import ApiKeyDep, StateDep
from app.schemas import JobView
from app.submit import PROBLEM, RESULT_TYPES

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=[ApiKeyDep])


@router.get("/{job_id}", response_model=JobView, summary="A job's state, progress, timings and error")
async def get_job(job_id: str, state: StateDep) -> JobView:
    return await run_in_threadpool(state.store.view, job_id)


@router.get(
    "/{job_id}/result",
    summary="The finished image",
    responses={
        200: {"content": RESULT_TYPES},
        404: {"description": "Unknown or expired", **PROBLEM},
        409: {"description": "Not finished (or failed)", **PROBLEM},
    },
)
async def get_result(job_id: str, state: StateDep) -> Response:
    body, content_type = await run_in_threadpool(state.store.result, job_id)
    ext = content_type.split("/")[-1]
    disposition = "attachment" if content_type == "application/zip" else "inline"
    return Response(
        body, media_type=content_type, headers={"Content-Disposition": f'{disposition}; filename="{job_id}.{ext}"'}
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
