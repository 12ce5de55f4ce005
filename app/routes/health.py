"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from redis.exceptions import RedisError
from rq import Worker
from starlette.concurrency import run_in_threadpool

from app.deps import StateDep
from app.errors import PROBLEM_JSON
from app.schemas import QueueHealth, Readiness
from app.state import GatewayState

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _readiness(state: GatewayState, require_workers: bool) -> Readiness:
    state.connection.ping()
    queues: dict[str, QueueHealth] = {}
    for task in state.catalog.tasks():
        queue = state.store.queue(task)
        queues[task] = QueueHealth(workers=len(Worker.all(queue=queue)), depth=queue.count)
    ready = not require_workers or all(q.workers > 0 for q in queues.values())
    return Readiness(status="ready" if ready else "not-ready", queues=queues)


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Redis reachable and a live worker on every queue",
    responses={
        503: {
            "description": "Redis unreachable, or a queue without a live worker",
            "content": {PROBLEM_JSON: {}},
        }
    },
)
async def readyz(state: StateDep, require_workers: bool = True) -> JSONResponse:
    """``require_workers=false`` checks Redis only: for load balancers in front of
    gateways whose workers autoscale to zero (the gateway must stay reachable so that
    queued jobs can make the autoscaler add workers)."""
    try:
        readiness = await run_in_threadpool(_readiness, state, require_workers)
    except RedisError as exc:
        return _not_ready(Readiness(status="not-ready", queues={}), f"Redis does not answer: {exc}")
    if readiness.status == "ready":
        return JSONResponse(readiness.model_dump())
    idle = [name for name, q in readiness.queues.items() if q.workers == 0]
    return _not_ready(readiness, f"no live worker for queue(s): {', '.join(idle)}")


def _not_ready(readiness: Readiness, detail: str) -> JSONResponse:
    body = {
        **readiness.model_dump(),
        "type": "/problems/not-ready",
        "title": "Not ready",
        "status": 503,  # problem+json: the HTTP status; the readiness word is under "readiness"
        "readiness": readiness.status,
        "code": "not-ready",
        "detail": detail,
        "instance": "/readyz",
    }
    return JSONResponse(body, status_code=503, media_type=PROBLEM_JSON)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}},
)
def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
