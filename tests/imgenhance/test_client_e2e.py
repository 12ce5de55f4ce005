"""``imgenhance.client`` against a real service: a gateway and a worker in their own
processes, with two keys (``a`` may have one unfinished job) and results over 100 kB
failing, so limits and failures can be met on purpose."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from imgenhance.client import (
    AsyncClient,
    Client,
    Conflict,
    Job,
    JobCanceled,
    JobFailed,
    NotFound,
    Unauthorized,
    Unprocessable,
    Unreachable,
    UnsupportedMediaType,
    WaitTimeout,
)
from tests.support import images
from tests.support.services import Service, free_port

ENV = {
    "IMGENHANCE_API_KEYS": "a:key-a,b:key-b",
    "IMGENHANCE_KEY_LIMITS": '{"a": {"max_active_jobs": 1}}',
    "IMGENHANCE_MAX_RESULT_BYTES": "100000",
}


@pytest.fixture(scope="module")
def service(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    from tests.conftest import start_service

    svc = start_service(redis_url, tmp_path_factory.mktemp("client"), ENV)
    yield svc
    svc.stop()


def connect(service: Service, key: str = "key-b", **options: object) -> Client:
    return Client(service.base_url, key, **options)  # type: ignore[arg-type]


class Recording(httpx.HTTPTransport):
    """Passes requests on, noting (method, path, headers, status) and when each answer came,
    and each answer's body in ``bodies``; ``lose_first_answer_to`` drops the answer to the
    first request to that path after the service has handled it (as a connection cut
    mid-answer would)."""

    def __init__(self, lose_first_answer_to: str | None = None) -> None:
        super().__init__()
        self.seen: list[tuple[str, str, httpx.Headers, int, float]] = []
        self.bodies: list[bytes] = []
        self.lose = lose_first_answer_to

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        response.read()
        self.seen.append((request.method, request.url.path, request.headers, response.status_code, time.monotonic()))
        self.bodies.append(response.content)
        if self.lose is not None and request.url.path == self.lose:
            self.lose = None
            response.close()
            raise httpx.ReadError("the answer was lost")
        return response

    def paths(self, method: str | None = None) -> list[str]:
        return [path for m, path, *_ in self.seen if method in (None, m)]


def png(width: int = 16, height: int = 12, seed: int = 0) -> bytes:
    return images.png(images.photo(width, height, seed))


def size(data: bytes) -> tuple[int, int]:
    return images.open_image(data).size


def test_every_kind_of_image_input_gives_the_same_result(service: Service, tmp_path: Path) -> None:
    data = png()
    path = tmp_path / "in.png"
    path.write_bytes(data)
    with connect(service) as client:
        kinds: list[object] = [str(path), path, data, io.BytesIO(data), Image.open(io.BytesIO(data))]
        with path.open("rb") as opened:
            kinds.append(opened)
            results = [client.super_resolve(image, scale=2) for image in kinds]  # type: ignore[arg-type]
    first = results[0]
    assert first.content_type == "image/png" and first.image().size == (32, 24)
    assert first.job.status == "succeeded" and first.job.model == "sr-compact-x2"
    assert first.job.result is not None and first.job.result.bytes == len(first.data)
    assert all(r.data == first.data for r in results)
    assert len({r.id for r in results}) == len(results)  # one job each


def test_without_prefer_wait_the_client_polls_then_downloads(service: Service, tmp_path: Path) -> None:
    transport = Recording()
    with connect(service, wait=0, transport=transport) as client:
        result = client.denoise(png(), sigma=25, strength=0.5)
        path = result.save(tmp_path / "out.png")
    assert result.job.params["sigma"] == 25 and path.read_bytes() == result.data
    submit_method, _, submit_headers, submit_status, _ = transport.seen[0]
    assert submit_method == "POST" and submit_status == 202 and "prefer" not in submit_headers
    assert "idempotency-key" in submit_headers
    # a tiny job can finish before the 202 is written; then there is nothing to poll
    polled = set() if Job.model_validate_json(transport.bodies[0]).finished else {f"/v1/jobs/{result.id}"}
    assert set(transport.paths("GET")) == polled | {f"/v1/jobs/{result.id}/result"}


def test_with_prefer_wait_one_request_brings_the_image(service: Service) -> None:
    transport = Recording()
    with connect(service, transport=transport) as client:
        result = client.super_resolve(png(), outscale=3)
    assert size(result.data) == (48, 36) and result.job.params["outscale"] == 3
    assert transport.seen[0][2]["prefer"] == "wait=30" and transport.seen[0][3] == 200
    assert transport.paths() == ["/v1/jobs/super-resolve", f"/v1/jobs/{result.id}"]  # the image, then its record


def test_async_client_runs_jobs_side_by_side(service: Service) -> None:
    async def main() -> None:
        async with AsyncClient(service.base_url, "key-b") as client:
            results = await asyncio.gather(
                client.super_resolve(png(seed=1), scale=4),
                client.denoise(png(seed=2)),
                client.generate(model="gen-digits", n=4, seed=7),
                client.style_transfer(png(24, 24), style="starry-night", max_side=64),
            )
            assert [size(r.data) for r in results[:2]] == [(64, 48), (16, 12)]
            assert results[2].job.task == "generate" and results[3].job.task == "style-transfer"
            assert (await client.job(results[0].id)).status == "succeeded"
            listed = [job.id async for job in client.jobs(page_size=2)]
            assert {r.id for r in results} <= set(listed)
            models = await client.models()
            assert "sr-compact-x4" in {m["id"] for m in models}
            with pytest.raises(NotFound):
                await client.job("0" * 32)

    asyncio.run(main())


def test_generate_is_the_same_for_the_same_seed(service: Service) -> None:
    with connect(service) as client:
        a = client.generate(n=4, seed=3, label="7")
        b = client.generate(n=4, seed=3, label=7)
    assert a.data == b.data and a.job.params["label"] == 7


def test_errors_carry_the_problem_fields(service: Service) -> None:
    with connect(service) as client:
        with pytest.raises(UnsupportedMediaType) as not_image:
            client.super_resolve(b"just some text")
        with pytest.raises(Unprocessable) as bad_field:
            client.super_resolve(png(), outscale=9)
        with pytest.raises(Unprocessable) as unknown_model:
            client.denoise(png(), model="no-such-model")
        with pytest.raises(NotFound) as missing:
            client.cancel("f" * 32)
    error = not_image.value
    assert (error.status, error.code) == (415, "not-an-image") and error.title and "not an image" in error.detail
    assert error.instance == "/v1/jobs/super-resolve" and error.type == "/problems/not-an-image"
    assert str(error).startswith("415 not-an-image: ")
    assert bad_field.value.code == "invalid-parameter" and "outscale" in str(bad_field.value.extra)
    assert "no-such-model" in unknown_model.value.detail
    assert missing.value.code == "job-not-found"


def test_a_submit_whose_answer_was_lost_is_retried_without_a_second_job(service: Service) -> None:
    transport = Recording(lose_first_answer_to="/v1/jobs/super-resolve")
    with connect(service, transport=transport) as client:
        result = client.super_resolve(png(seed=5), scale=2)
    posts = [(headers, status) for method, _, headers, status, _ in transport.seen if method == "POST"]
    assert len(posts) == 2 and posts[0][0]["idempotency-key"] == posts[1][0]["idempotency-key"]
    assert size(result.data) == (32, 24)
    with service.client(headers={"Authorization": "Bearer key-b"}) as raw:  # one job for the two submits
        again = raw.post(
            "/v1/jobs/super-resolve",
            files={"image": ("image", png(seed=5))},
            data={"scale": "2"},
            headers={"Idempotency-Key": posts[0][0]["idempotency-key"]},
        )
    assert again.headers["idempotent-replayed"] == "true" and again.json()["id"] == result.id


def test_submit_then_cancel_a_queued_job(service: Service) -> None:
    with connect(service) as client:
        big = client.submit_super_resolve(images.png(images.photo(256, 256)), scale=4)
        queued = client.submit_super_resolve(png(), scale=2)  # behind the big one in its queue: one worker
        canceled = client.cancel(queued.id)
        assert canceled.id == queued.id and canceled.status == "canceled"
        with pytest.raises(JobCanceled) as stopped:
            client.wait(queued)
        assert stopped.value.job is not None and stopped.value.code == "job-canceled"
        with pytest.raises(Conflict) as twice:
            client.cancel(queued.id)
        client.cancel(big.id)
    assert twice.value.code == "job-not-cancelable" and "already canceled" in twice.value.detail


def test_jobs_are_listed_newest_first_a_page_at_a_time(service: Service) -> None:
    transport = Recording()
    with connect(service, transport=transport) as client:
        made = [client.submit_denoise(png(8, 8, seed)).id for seed in range(3)]
        listed = [job.id for job in client.jobs(page_size=2)]
    assert listed[:3] == made[::-1]
    pages = [p for p in transport.paths("GET") if p == "/v1/jobs"]
    assert len(pages) >= 2


def test_unreachable_services_raise_after_the_retries() -> None:
    with Client(f"http://127.0.0.1:{free_port()}", retries=1) as client, pytest.raises(Unreachable):
        client.models()


def test_retry_after_is_honoured_on_a_429(service: Service) -> None:
    transport = Recording()
    with connect(service, "key-a", transport=transport) as client:
        first = client.submit_super_resolve(images.png(images.photo(256, 256)), scale=4)  # runs for a while
        second = client.super_resolve(png(), scale=2)
    refused = [(status, headers, at) for _, path, headers, status, at in transport.seen if status == 429]
    assert refused, "the second submit was never refused: the first job ended too soon"
    retry = next(at for method, path, _, status, at in transport.seen if method == "POST" and at > refused[0][2])
    assert retry - refused[0][2] >= 4.9  # Retry-After: 5
    assert size(second.data) == (32, 24)
    with connect(service, "key-a") as client:
        assert client.job(first.id).status in ("succeeded", "failed")  # failed: its result is over the limit


def test_a_failed_job_raises_with_its_record(service: Service) -> None:
    with connect(service) as client, pytest.raises(JobFailed) as failed:
        client.super_resolve(images.png(images.photo(96, 96)), scale=4)
    error = failed.value
    assert error.status == 422 and error.code == "job-failed" and "limit" in error.detail
    assert error.job is not None and error.job.status == "failed" and error.job.error_kind == "input"


def test_keys_own_their_jobs(service: Service) -> None:
    with connect(service) as b, connect(service, "key-a") as a:
        job = b.super_resolve(png(), scale=2).job
        with pytest.raises(NotFound):
            a.job(job.id)
        assert job.id in {j.id for j in b.jobs()}
    with connect(service, "wrong") as stranger, pytest.raises(Unauthorized) as refused:
        stranger.models()
    assert refused.value.status == 401


def test_the_key_comes_from_the_environment(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMGENHANCE_API_KEY", "key-b")
    with connect(service) as client:
        assert client.models()


def test_a_wait_timeout_leaves_the_job_running(service: Service) -> None:
    with connect(service, wait=0) as client:
        with pytest.raises(WaitTimeout) as late:
            client.super_resolve(
                images.png(images.photo(160, 160)), scale=2, output_format="jpeg", quality=50, timeout=0.01
            )
        job = late.value.job
        assert client.wait(job, timeout=60).job.status == "succeeded"
