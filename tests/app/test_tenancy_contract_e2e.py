"""Each test starts its own service: a module-wide worker would take the jobs of the
tests that run without one (they share the Redis database).

Keys own their jobs; per-key limits; atomic admission; and the contract details a
client relies on (ids that cannot exist, misspelled fields, readiness, 16-bit, streamed
results, inputs gone when a job ends, byte and memory budgets). Real gateway, real
workers, real Redis."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import httpx
import numpy as np
import pytest

from imgenhance.jobs import input_key
from tests.support import images
from tests.support.services import Service, wait_until

pytestmark = pytest.mark.slow

ALICE = {"Authorization": "Bearer alice-secret"}
BOB = {"X-API-Key": "bob-secret"}
KEYS = {"IMGENHANCE_API_KEYS": "alice:alice-secret,bob:bob-secret"}


def small_png(size: int = 16) -> dict[str, tuple[str, bytes]]:
    return {"image": ("a.png", images.png(images.photo(size, size)))}


def finished(client: httpx.Client, job_id: str, headers: dict[str, str]) -> dict:  # type: ignore[type-arg]
    def done() -> bool:
        return client.get(f"/v1/jobs/{job_id}", headers=headers).json()["status"] in ("succeeded", "failed")

    wait_until(done, 60, 0.1, "the job to end")
    body: dict = client.get(f"/v1/jobs/{job_id}", headers=headers).json()  # type: ignore[type-arg]
    return body


def test_a_job_exists_only_for_the_key_that_made_it(make_service) -> None:  # type: ignore[no-untyped-def]
    svc: Service = make_service(env=KEYS)
    with svc.client() as client:
        r = client.post("/v1/jobs/super-resolve", files=small_png(), data={"scale": "2"}, headers=ALICE)
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        assert finished(client, job_id, ALICE)["status"] == "succeeded"
        for method, path in [("GET", ""), ("GET", "/result"), ("DELETE", "")]:
            theirs = client.request(method, f"/v1/jobs/{job_id}{path}", headers=BOB)
            assert theirs.status_code == 404, (method, path, theirs.text)
            assert theirs.headers["content-type"] == "application/problem+json"
            assert theirs.json()["code"] == "job-not-found"
        assert client.get(f"/v1/jobs/{job_id}/result", headers=ALICE).status_code == 200


def test_ids_that_cannot_name_a_job_are_404_problems(make_service) -> None:  # type: ignore[no-untyped-def]
    service: Service = make_service()
    with service.client() as client:
        for job_id in ["a.b", "caf\u00e9", "..", "x" * 200, "a b", "%00"]:
            for method, path in [("GET", ""), ("GET", "/result"), ("DELETE", "")]:
                r = client.request(method, f"/v1/jobs/{job_id}{path}")
                assert r.status_code == 404, (job_id, method, r.status_code, r.text)
                assert r.headers["content-type"] == "application/problem+json"


def test_request_rate_limit_per_key(make_service) -> None:  # type: ignore[no-untyped-def]
    limits = '{"alice": {"requests_per_minute": 3}}'
    svc: Service = make_service(env={**KEYS, "IMGENHANCE_KEY_LIMITS": limits})
    with svc.client() as client:
        answers = [client.get("/v1/models", headers=ALICE) for _ in range(4)]
        other = client.get("/v1/models", headers=BOB)  # bob has the defaults: no limit
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["ratelimit-remaining"] for a in answers[:3]] == ["2", "1", "0"]
    assert answers[0].headers["ratelimit-limit"] == "3"
    refused = answers[3]
    assert refused.json()["code"] == "rate-limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["ratelimit-remaining"] == "0"
    assert other.status_code == 200 and "ratelimit-limit" not in other.headers


def test_active_jobs_cap_per_key(make_service) -> None:  # type: ignore[no-untyped-def]
    limits = '{"alice": {"max_active_jobs": 2}}'
    svc: Service = make_service(env={**KEYS, "IMGENHANCE_KEY_LIMITS": limits}, workers=0)
    with svc.client() as client:
        first = [client.post("/v1/jobs/super-resolve", files=small_png(), headers=ALICE) for _ in range(2)]
        third = client.post("/v1/jobs/super-resolve", files=small_png(), headers=ALICE)
        bobs = client.post("/v1/jobs/super-resolve", files=small_png(), headers=BOB)
        assert [r.status_code for r in first] == [202, 202]
        assert third.status_code == 429 and third.json()["code"] == "too-many-active-jobs", third.text
        assert third.headers["retry-after"]
        assert bobs.status_code == 202
        # A finished (here: canceled) job frees its place.
        assert client.delete(f"/v1/jobs/{first[0].json()['id']}", headers=ALICE).status_code == 200
        assert client.post("/v1/jobs/super-resolve", files=small_png(), headers=ALICE).status_code == 202


def test_the_queue_limit_holds_under_concurrent_submits(make_service) -> None:  # type: ignore[no-untyped-def]
    svc: Service = make_service(env={"IMGENHANCE_MAX_QUEUE_LENGTH": "50"}, workers=0)
    body = images.png(images.photo(16, 16))

    def post(_: int) -> int:
        with svc.client() as client:
            return client.post("/v1/jobs/super-resolve", files={"image": ("a.png", body)}).status_code

    with ThreadPoolExecutor(100) as pool:
        codes = list(pool.map(post, range(200)))
    assert codes.count(202) == 50, sorted(set(codes))
    assert set(codes) == {202, 503}
    assert svc.connection.llen("rq:queue:super-resolve") == 50


def test_misspelled_form_fields_are_422_naming_the_closest_field(make_service) -> None:  # type: ignore[no-untyped-def]
    service: Service = make_service()
    with service.client() as client:
        capital = client.post("/v1/jobs/super-resolve", files=small_png(), data={"Scale": "2"})
        fmt = client.post("/v1/jobs/super-resolve", files=small_png(), data={"format": "jpeg"})
        fine = client.post("/v1/jobs/super-resolve", files=small_png(), data={"scale": "2"})
    assert capital.status_code == 422 and "'Scale' (did you mean 'scale'?)" in capital.json()["detail"]
    assert fmt.status_code == 422 and "'format' (did you mean 'output_format'?)" in fmt.json()["detail"]
    assert fmt.json()["fields"] == ["format"]
    assert fine.status_code == 202


def test_readyz_problem_keeps_status_a_number(make_service) -> None:  # type: ignore[no-untyped-def]
    svc: Service = make_service(workers=0)
    with svc.client() as client:
        r = client.get("/readyz")
    body = r.json()
    assert r.status_code == 503 and body["status"] == 503 and body["readiness"] == "not-ready"
    assert body["queues"]["super-resolve"] == {"workers": 0, "depth": 0}


def test_openapi_documents_the_error_codes_routes_return(make_service) -> None:  # type: ignore[no-untyped-def]
    service: Service = make_service()
    with service.client() as client:
        paths = client.get("/openapi.json").json()["paths"]
    submit = paths["/v1/jobs/super-resolve"]["post"]["responses"]
    assert {"202", "401", "413", "415", "422", "429", "503"} <= set(submit)
    for method, path in [
        ("get", "/v1/jobs/{job_id}"),
        ("get", "/v1/jobs/{job_id}/result"),
        ("delete", "/v1/jobs/{job_id}"),
    ]:
        assert {"401", "404", "429"} <= set(paths[path][method]["responses"]), (method, path)
    assert "503" in paths["/readyz"]["get"]["responses"]


def test_16_bit_rgba_comes_back_16_bit_png_by_default(make_service) -> None:  # type: ignore[no-untyped-def]
    service: Service = make_service()
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 65536, (12, 10, 4), dtype=np.uint16)
    ok, encoded = cv2.imencode(".png", rgba)
    assert ok
    with service.client() as client:
        r = client.post(
            "/v1/jobs/super-resolve",
            files={"image": ("a.png", encoded.tobytes())},
            data={"scale": "2"},
            headers={"Prefer": "wait=60"},
        )
    assert r.status_code == 200 and r.headers["content-type"] == "image/png", r.text
    out = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and out.shape == (24, 20, 4)


def test_results_are_streamed_with_their_length_and_inputs_go_when_the_job_ends(make_service) -> None:  # type: ignore[no-untyped-def]
    service: Service = make_service()
    with service.client() as client:
        r = client.post("/v1/jobs/super-resolve", files=small_png(40), data={"scale": "4"})
        job_id = r.json()["id"]
        job = finished(client, job_id, {})
        result = client.get(f"/v1/jobs/{job_id}/result")
    assert job["status"] == "succeeded"
    assert int(result.headers["content-length"]) == len(result.content) == job["result"]["bytes"]
    assert images.open_image(result.content).size == (160, 160)
    assert not service.connection.exists(input_key(job_id, "image"))


def test_a_result_over_the_byte_limit_fails_the_job_clearly(make_service) -> None:  # type: ignore[no-untyped-def]
    svc: Service = make_service(env={"IMGENHANCE_MAX_RESULT_BYTES": "1000"})
    with svc.client() as client:
        r = client.post("/v1/jobs/super-resolve", files=small_png(64), data={"scale": "4"})
        job = finished(client, r.json()["id"], {})
    assert job["status"] == "failed" and job["error_kind"] == "input"
    assert "over the service's 1,000-byte limit" in job["error"]
    assert job["attempts"] == 1  # not retried: it would fail the same way
    assert not svc.connection.exists(input_key(job["id"], "image"))


def test_new_jobs_are_refused_near_the_redis_memory_budget(make_service) -> None:  # type: ignore[no-untyped-def]
    svc: Service = make_service(env={"IMGENHANCE_REDIS_MEMORY_BUDGET_BYTES": "1000"}, workers=0)
    with svc.client() as client:
        r = client.post("/v1/jobs/super-resolve", files=small_png())
        jobs_before = svc.connection.llen("rq:queue:super-resolve")
    assert r.status_code == 503 and r.json()["code"] == "backend-full" and r.headers["retry-after"] == "30"
    assert jobs_before == 0


def test_list_jobs_pages_through_the_callers_own_jobs_newest_first(make_service) -> None:  # type: ignore[no-untyped-def]
    svc: Service = make_service(env=KEYS, workers=0)
    with svc.client() as client:
        mine = [client.post("/v1/jobs/super-resolve", files=small_png(), headers=ALICE).json()["id"] for _ in range(5)]
        theirs = client.post("/v1/jobs/super-resolve", files=small_png(), headers=BOB).json()["id"]
        seen, url = [], "/v1/jobs?limit=2"
        while url:
            page = client.get(url, headers=ALICE).json()
            assert len(page["jobs"]) <= 2
            seen += [job["id"] for job in page["jobs"]]
            url = page["next"]
        bobs = client.get("/v1/jobs", headers=BOB).json()
        bad_cursors = [client.get(f"/v1/jobs?cursor={c}", headers=ALICE) for c in ("nan", "inf", "-inf", "x")]
    assert seen == mine[::-1]
    assert [r.status_code for r in bad_cursors] == [422] * 4  # not a 500 from Redis
    assert all(r.headers["content-type"] == "application/problem+json" for r in bad_cursors)
    assert [job["id"] for job in bobs["jobs"]] == [theirs] and bobs["next"] is None
