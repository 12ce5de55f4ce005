"""``imgenhance.client`` without a service: retries, error parsing and uploads, on a mock transport."""

from __future__ import annotations

import io
import subprocess
import sys
import typing
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
from PIL import Image

from imgenhance import client as api
from imgenhance.jobs import JobStatus


def mock(*answers: httpx.Response) -> tuple[api.Client, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return queue.pop(0)

    return api.Client("http://imgenhance.test", "k", transport=httpx.MockTransport(handler)), seen


def models(status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"models": [{"id": "m"}]} if status == 200 else {}, headers=headers)


def test_the_client_knows_every_job_status_of_the_contract() -> None:
    assert set(typing.get_args(api.Status)) == {s.value for s in JobStatus}
    assert {s.value for s in JobStatus if s.finished} == api.FINISHED


def test_gateway_errors_without_retry_after_are_retried_with_backoff() -> None:
    client, seen = mock(httpx.Response(502, text="bad gateway"), httpx.Response(504), models())
    assert client.models() == [{"id": "m"}]
    assert len(seen) == 3 and seen[0].headers["authorization"] == "Bearer k"


def test_retry_after_is_obeyed_then_the_error_surfaces() -> None:
    problem = {
        "type": "/problems/rate-limited",
        "title": "Too many",
        "status": 429,
        "code": "rate-limited",
        "detail": "slow down",
        "instance": "/v1/models",
        "limit": 2,
    }
    answers = [httpx.Response(429, json=problem, headers={"Retry-After": "0"}) for _ in range(3)]
    client, seen = mock(*answers)
    client.retries = 2
    with pytest.raises(api.TooManyRequests) as refused:
        client.models()
    assert len(seen) == 3
    error = refused.value
    assert (error.status, error.code, error.title, error.detail) == (429, "rate-limited", "Too many", "slow down")
    assert error.extra == {"limit": 2} and error.retry_after == 0 and error.instance == "/v1/models"


def test_a_retry_after_longer_than_the_client_accepts_is_not_waited_for() -> None:
    client, seen = mock(
        httpx.Response(503, json={"code": "queue-full", "detail": "full"}, headers={"Retry-After": "3600"})
    )
    with pytest.raises(api.ServiceUnavailable):
        client.models()
    assert len(seen) == 1


def test_answers_that_are_not_problem_json_still_become_errors() -> None:
    client, _ = mock(httpx.Response(418, text="I'm a teapot"))
    with pytest.raises(api.ApiError) as odd:
        client.models()
    assert (odd.value.status, odd.value.code, odd.value.detail) == (418, "http-418", "I'm a teapot")


def test_retry_after_may_be_an_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < api._retry_after(when) <= 30  # type: ignore[operator]
    assert api._retry_after("soon") is None and api._retry_after("-5") == 0


def test_uploads_from_every_kind_of_input(tmp_path: Path) -> None:
    path = tmp_path / "p.png"
    Image.new("RGB", (4, 3)).save(path)
    data = path.read_bytes()
    assert api.image_bytes(path) == ("p.png", data) == api.image_bytes(str(path))
    assert api.image_bytes(data) == ("image", data)
    with path.open("rb") as f:
        assert api.image_bytes(f) == ("p.png", data)
    name, cmyk = api.image_bytes(Image.new("CMYK", (4, 3)), "style_image")
    assert name == "style_image.tiff" and Image.open(io.BytesIO(cmyk)).mode == "CMYK"
    with path.open("r", encoding="latin-1") as text, pytest.raises(TypeError, match="binary mode"):
        api.image_bytes(text)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not int"):
        api.image_bytes(3)  # type: ignore[arg-type]


def test_form_fields_leave_out_what_is_not_given() -> None:
    call = api._style_transfer(b"x", {"style": "udnie", "preserve_color": True, "strength": None, "timeout": 5})
    assert call.data == {"style": "udnie", "preserve_color": "true"} and set(call.files or {}) == {"image"}
    body = api._generate({"n": 4, "label": "7", "seed": None, "idempotency_key": "k"}).json
    assert body == {"n": 4, "class": "7"}


def test_the_client_stands_alone() -> None:
    """It needs httpx, pydantic and Pillow: none of the service's own packages or heavy libraries."""
    banned = ["torch", "onnxruntime", "numpy", "rq", "redis", "app", "worker", "training", "cli"]
    check = f"import sys, imgenhance.client; print([m for m in {banned} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout
