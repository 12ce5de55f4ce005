"""Faults, against real processes: workers SIGKILLed mid-job again and again, the Redis
server stopped and started again (its own port, append-only file on) while jobs run
and wait, a gateway started on a port already in use. Whatever happens, no accepted
job is lost: each ends in a terminal state, and the worker processes are still there.

The counts are small here to keep the suite short; ``IMGENHANCE_FAULT_KILLS=20
IMGENHANCE_FAULT_RESTARTS=5 pytest tests/app/test_faults_e2e.py`` runs the issue's
full goal (figures in docs/testing.md).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.conftest import start_service
from tests.support import images
from tests.support.redis_server import RedisServer
from tests.support.services import Service, wait_until

pytestmark = pytest.mark.slow

KILLS = int(os.environ.get("IMGENHANCE_FAULT_KILLS", "4"))
RESTARTS = int(os.environ.get("IMGENHANCE_FAULT_RESTARTS", "2"))
TERMINAL = ("succeeded", "failed", "canceled")


def submit(svc: Service, width: int, height: int) -> str:
    with svc.client() as client:
        r = client.post(
            "/v1/jobs/super-resolve",
            files={"image": ("a.png", images.png(images.photo(width, height)))},
            data={"scale": "4"},
        )
    assert r.status_code == 202, r.text
    job_id: str = r.json()["id"]
    return job_id


def states(svc: Service, job_ids: list[str]) -> dict[str, dict]:  # type: ignore[type-arg]
    with svc.client() as client:
        return {job_id: client.get(f"/v1/jobs/{job_id}").json() for job_id in job_ids}


def running_job(svc: Service, job_ids: list[str]) -> str | None:
    for job_id, job in states(svc, job_ids).items():
        if job["status"] == "running" and job["progress"] > 0:
            return job_id
    return None


def all_ended(svc: Service, job_ids: list[str]) -> bool:
    try:
        return all(job["status"] in TERMINAL for job in states(svc, job_ids).values())
    except (httpx.HTTPError, KeyError):
        return False


def beating_since(svc: Service, moment: datetime) -> list[int]:
    """PIDs of the workers whose last heartbeat came after ``moment``."""
    beats = [(w.pid, w.last_heartbeat) for w in svc.live_workers()]
    return sorted(pid for pid, beat in beats if beat and beat.replace(tzinfo=UTC) > moment)


def test_no_job_is_lost_when_workers_are_killed_mid_job(make_service) -> None:  # type: ignore[no-untyped-def]
    svc: Service = make_service(env={"IMGENHANCE_JOB_RETRIES": str(KILLS + 1)}, workers=2)
    job_ids = [submit(svc, 480, 360) for _ in range(KILLS + 2)]
    kills = 0
    while kills < KILLS:
        unfinished = [j for j, job in states(svc, job_ids).items() if job["status"] not in TERMINAL]
        if len(unfinished) < 2:  # keep both workers busy, so there is always a job to kill
            job_ids.append(submit(svc, 480, 360))
        wait_until(lambda: running_job(svc, job_ids) is not None, 120, 0.05, f"a running job to kill (kill {kills})")
        victim_job = running_job(svc, job_ids)
        alive = {p.pid for p in svc.workers if p.poll() is None}
        # A killed worker's registration outlives it by a few seconds: only living ones count.
        owner = next((w for w in svc.live_workers() if w.pid in alive and w.get_current_job_id() == victim_job), None)
        if owner is None:
            time.sleep(0.2)  # it finished, or it is the dead worker's job waiting for its retry
            continue
        os.kill(owner.pid, signal.SIGKILL)
        kills += 1
        svc.start_worker()
    wait_until(lambda: all_ended(svc, job_ids), 300, 0.5, "every job to end")
    final = states(svc, job_ids)
    assert [j["status"] for j in final.values()] == ["succeeded"] * len(job_ids), final
    assert max(j["attempts"] for j in final.values()) >= 2  # some were really retried
    alive = [p for p in svc.workers if p.poll() is None]
    assert len(alive) == 2, svc.tail()


def test_workers_ride_out_redis_restarts_mid_job_and_with_jobs_queued(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    svc = start_service(redis.url, tmp_path / "svc", env={"IMGENHANCE_JOB_RETRIES": str(RESTARTS + 1)}, workers=2)
    try:
        pids = sorted(p.pid for p in svc.workers)
        job_ids = [submit(svc, 640, 480) for _ in range(2)] + [submit(svc, 96, 64) for _ in range(4)]
        recoveries = []
        for restart in range(RESTARTS):
            job_ids.append(submit(svc, 640, 480))  # so a job is running when Redis goes
            wait_until(lambda: running_job(svc, job_ids) is not None, 120, 0.05, f"a running job (restart {restart})")
            redis.stop()
            with svc.client() as client:
                during = client.post("/v1/jobs/super-resolve", files={"image": ("a.png", images.png(images.photo()))})
                ready = client.get("/readyz")
            assert during.status_code == 503, during.text
            assert during.headers["content-type"] == "application/problem+json"
            assert ready.status_code == 503 and ready.json()["code"] == "not-ready", ready.text  # as documented
            assert ready.json()["readiness"] == "not-ready" and "Redis does not answer" in ready.json()["detail"]
            time.sleep(2)
            redis.start()
            back, back_at = time.monotonic(), datetime.now(UTC)

            wait_until(lambda t=back_at: beating_since(svc, t) == pids, 30, 0.1, "the same workers to beat again")
            recoveries.append(time.monotonic() - back)
            job_ids.append(submit(svc, 96, 64))  # the service takes new work again
        wait_until(lambda: all_ended(svc, job_ids), 300, 0.5, "every job to end")
        final = states(svc, job_ids)
        assert [j["status"] for j in final.values()] == ["succeeded"] * len(job_ids), final
        assert [p.poll() for p in svc.workers] == [None, None], svc.tail()  # the same processes
        print(f"workers registered again {', '.join(f'{s:.1f}' for s in recoveries)} s after Redis returned")
    except BaseException:
        print(svc.tail(80))
        raise
    finally:
        svc.stop()
        redis.stop()


def test_serve_on_a_port_in_use_exits_at_once_saying_why(tmp_path: Path, redis_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "REDIS_URL": redis_url, "IMGENHANCE_METRICS_PORT": "0"}
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "cli", "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert time.monotonic() - started < 30
