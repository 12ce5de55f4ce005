"""Services with their own settings: worker death, cancellation, expiry, auth,
back-pressure, readiness, and the worker's own metrics. Each test starts its own
gateway and workers."""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from tests.support import images
from tests.support.services import Service, free_port, wait_until

pytestmark = pytest.mark.slow


def submit(svc: Service, width: int, height: int, **fields: str) -> str:
    with svc.client() as client:
        r = client.post(
            "/v1/jobs/super-resolve", files={"image": ("a.png", images.png(images.photo(width, height)))}, data=fields
        )
    assert r.status_code == 202, r.text
    job_id: str = r.json()["id"]
    return job_id


def job(svc: Service, job_id: str) -> dict:  # type: ignore[type-arg]
    with svc.client() as client:
        r = client.get(f"/v1/jobs/{job_id}")
    assert r.status_code == 200, r.text
    body: dict = r.json()  # type: ignore[type-arg]
    return body


def running_with_progress(svc: Service, job_id: str) -> bool:
    j = job(svc, job_id)
    assert j["status"] in ("queued", "running"), j
    return j["status"] == "running" and j["progress"] > 0


def test_worker_killed_mid_job_is_retried_on_another_worker(make_service) -> None:  # type: ignore[no-untyped-def]
    svc = make_service(workers=2)
    job_id = submit(svc, 640, 480, scale="4")
    wait_until(lambda: running_with_progress(svc, job_id), 60, message="the job to be running")
    owner = next(w for w in svc.live_workers() if w.get_current_job_id() == job_id)
    killed_at = time.monotonic()
    svc.workers[[p.pid for p in svc.workers].index(owner.pid)].send_signal(signal.SIGKILL)

    wait_until(lambda: job(svc, job_id)["status"] in ("succeeded", "failed"), 60, 0.2, "the job to end")
    ended_after = time.monotonic() - killed_at
    final = job(svc, job_id)
    assert final["status"] == "succeeded", final
    assert final["attempts"] == 2
    assert ended_after < 60
    with svc.client() as client:
        out = images.open_image(client.get(f"/v1/jobs/{job_id}/result").content)
    assert out.size == (2560, 1920)


def test_job_fails_visibly_when_its_only_worker_dies_and_no_retries_are_left(make_service) -> None:  # type: ignore[no-untyped-def]
    svc = make_service(env={"IMGENHANCE_JOB_RETRIES": "0"})
    job_id = submit(svc, 640, 480, scale="4")
    wait_until(lambda: running_with_progress(svc, job_id), 60, message="the job to be running")
    svc.workers[0].send_signal(signal.SIGKILL)
    wait_until(lambda: job(svc, job_id)["status"] == "failed", 60, 0.2, "the job to fail")
    final = job(svc, job_id)
    assert final["error"] == "the worker running this job stopped unexpectedly"
    assert final["error_kind"] == "internal"
    with svc.client() as client:
        r = client.get(f"/v1/jobs/{job_id}/result")
        assert r.status_code == 409 and "stopped unexpectedly" in r.json()["detail"]
        # its only worker is gone: readiness drops once the worker's key expires (liveness TTL)
        wait_until(lambda: client.get("/readyz").status_code == 503, 15, 0.2, "readiness to drop")
        assert client.get("/readyz").json()["code"] == "not-ready"


def test_cancel_a_queued_job(make_service) -> None:  # type: ignore[no-untyped-def]
    svc = make_service(workers=0)
    job_id = submit(svc, 32, 32)
    with svc.client() as client:
        r = client.delete(f"/v1/jobs/{job_id}")
        assert r.status_code == 200 and r.json()["status"] == "canceled"
        assert client.get(f"/v1/jobs/{job_id}/result").status_code == 409
        assert client.delete(f"/v1/jobs/{job_id}").status_code == 409
    svc.start_worker()  # the canceled job must not run once a worker appears
    time.sleep(1.0)
    assert job(svc, job_id)["status"] == "canceled"


def test_cancel_a_running_job_stops_it_at_the_next_tile(make_service) -> None:  # type: ignore[no-untyped-def]
    svc = make_service()
    job_id = submit(svc, 800, 600, scale="4")
    wait_until(lambda: running_with_progress(svc, job_id), 60, message="the job to be running")
    with svc.client() as client:
        r = client.delete(f"/v1/jobs/{job_id}")
    assert r.status_code == 202 and r.json()["status"] == "running"
    wait_until(lambda: job(svc, job_id)["status"] == "canceled", 30, 0.1, "the job to stop")
    final = job(svc, job_id)
    assert final["progress"] < 1 and final["attempts"] == 1 and final["error"] == "canceled on request"
    # the worker survives and takes the next job
    with svc.client() as client:
        ok = client.post(
            "/v1/jobs/super-resolve",
            files={"image": ("a.png", images.png(images.photo(16, 16)))},
            headers={"Prefer": "wait=30"},
        )
    assert ok.status_code == 200


def test_results_and_jobs_expire(make_service) -> None:  # type: ignore[no-untyped-def]
    svc = make_service(env={"IMGENHANCE_DATA_TTL_SECONDS": "2"})
    with svc.client() as client:
        r = client.post(
            "/v1/jobs/super-resolve",
            files={"image": ("a.png", images.png(images.photo(16, 16)))},
            headers={"Prefer": "wait=30"},
        )
        assert r.status_code == 200
        job_id = r.headers["x-job-id"]
        assert client.get(f"/v1/jobs/{job_id}/result").status_code == 200
        time.sleep(3.0)
        gone = client.get(f"/v1/jobs/{job_id}/result")
        assert gone.status_code == 404 and gone.headers["content-type"] == "application/problem+json"
        assert client.get(f"/v1/jobs/{job_id}").status_code == 404


def test_api_keys(make_service) -> None:  # type: ignore[no-untyped-def]
    svc = make_service(env={"IMGENHANCE_API_KEYS": "k1,k2"})
    data = {"image": ("a.png", images.png(images.photo(16, 16)))}
    with svc.client() as client:
        missing = client.post("/v1/jobs/super-resolve", files=data)
        wrong = client.get("/v1/models", headers={"Authorization": "Bearer nope"})
        bearer = client.get("/v1/models", headers={"Authorization": "Bearer k2"})
        header = client.post("/v1/jobs/super-resolve", files=data, headers={"X-API-Key": "k1"})
        health = client.get("/healthz")
    assert missing.status_code == 401 and missing.json()["code"] == "unauthorized"
    assert missing.headers["www-authenticate"] == "Bearer"
    assert wrong.status_code == 401
    assert bearer.status_code == 200 and header.status_code == 202
    assert health.status_code == 200  # probes need no key


def test_queue_full_is_503_and_readyz_needs_a_worker(make_service) -> None:  # type: ignore[no-untyped-def]
    svc = make_service(env={"IMGENHANCE_MAX_QUEUE_LENGTH": "1"}, workers=0)
    submit(svc, 16, 16)
    with svc.client() as client:
        full = client.post("/v1/jobs/super-resolve", files={"image": ("a.png", images.png(images.photo(16, 16)))})
        ready = client.get("/readyz")
        metrics = client.get("/metrics").text
    assert full.status_code == 503 and full.json()["code"] == "queue-full" and full.headers["retry-after"]
    assert ready.status_code == 503
    assert "no live worker for queue(s): denoise, generate, style-transfer, super-resolve" in ready.json()["detail"]
    assert 'imgenhance_queue_depth{queue="super-resolve"} 1.0' in metrics
    assert 'imgenhance_workers_alive{queue="super-resolve"} 0.0' in metrics
    assert 'imgenhance_requests_rejected_total{code="queue-full"} 1.0' in metrics


def test_worker_metrics_count_jobs_and_tiles(make_service) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    svc = make_service(env={"IMGENHANCE_METRICS_PORT": str(port)})
    with svc.client() as client:
        r = client.post(
            "/v1/jobs/super-resolve",
            files={"image": ("a.png", images.png(images.photo(24, 24)))},
            headers={"Prefer": "wait=30"},
        )
    assert r.status_code == 200
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert 'imgenhance_worker_jobs_total{model="sr-compact-x4",status="succeeded",task="super-resolve"} 1.0' in text
    assert 'imgenhance_tiles_processed_total{model="sr-compact-x4"} 1.0' in text
    assert 'imgenhance_inference_batches_total{model="sr-compact-x4"} 1.0' in text
    assert 'imgenhance_model_load_seconds{model="sr-compact-x4"}' in text
    assert "imgenhance_job_run_seconds_count" in text and "imgenhance_job_queue_wait_seconds_count" in text


def post_and_time(svc: Service, prefer: str) -> tuple[httpx.Response, float]:
    with svc.client() as client:
        start = time.monotonic()
        r = client.post(
            "/v1/jobs/super-resolve",
            files={"image": ("a.png", images.png(images.photo(16, 16)))},
            headers={"Prefer": prefer},
        )
        return r, time.monotonic() - start


def test_a_wait_that_runs_out_answers_202_with_the_job(make_service) -> None:  # type: ignore[no-untyped-def]
    svc = make_service(workers=0)  # nothing will ever run the job
    r, waited = post_and_time(svc, "wait=1")
    assert r.status_code == 202 and r.json()["status"] == "queued"
    assert r.headers["location"] == f"/v1/jobs/{r.json()['id']}"
    assert waited >= 1.0  # it did wait before answering


def test_prefer_wait_is_capped_by_max_wait_seconds(make_service) -> None:  # type: ignore[no-untyped-def]
    svc = make_service(env={"IMGENHANCE_MAX_WAIT_SECONDS": "1"}, workers=0)
    r, waited = post_and_time(svc, "wait=20")
    assert r.status_code == 202 and r.json()["status"] == "queued"
    assert 1.0 <= waited < 10, waited  # the cap (1 s), not the 20 s asked for
