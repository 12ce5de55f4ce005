"""Every kind of bad request gets a clear 4xx application/problem+json answer."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from tests.conftest import start_service
from tests.support import images
from tests.support.services import Service

LIMITS = {
    "IMGENHANCE_MAX_UPLOAD_BYTES": str(300_000),
    "IMGENHANCE_MAX_INPUT_PIXELS": str(500 * 500),
    "IMGENHANCE_MAX_OUTPUT_PIXELS": str(1200 * 1200),
}


@pytest.fixture(scope="module")
def limited(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = start_service(redis_url, tmp_path_factory.mktemp("limited"), LIMITS)
    yield svc
    svc.stop()


def post(svc: Service, data: bytes, filename: str = "a.png", **fields: str):  # type: ignore[no-untyped-def]
    with svc.client() as client:
        return client.post("/v1/jobs/super-resolve", files={"image": (filename, data)}, data=fields)


def assert_problem(r, status: int, code: str) -> dict:  # type: ignore[no-untyped-def, type-arg]
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict = r.json()  # type: ignore[type-arg]
    assert body["status"] == status and body["code"] == code and body["type"] == f"/problems/{code}"
    assert body["detail"] and body["title"] and body["instance"] == "/v1/jobs/super-resolve"
    return body


def test_not_an_image_is_415(limited: Service) -> None:
    body = assert_problem(post(limited, b"%PDF-1.4 definitely not pixels", "a.pdf"), 415, "not-an-image")
    assert "not an image" in body["detail"]


def test_empty_file_is_415(limited: Service) -> None:
    assert_problem(post(limited, b""), 415, "not-an-image")


def test_image_format_we_do_not_accept_is_415(limited: Service) -> None:
    body = assert_problem(
        post(limited, images.encode(Image.fromarray(images.photo(8, 8)), "PPM"), "a.ppm"), 415, "unsupported-format"
    )
    assert "PPM" in body["detail"]


def test_animated_gif_is_415(limited: Service) -> None:
    frames = [Image.fromarray(images.photo(16, 16, seed=s)) for s in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    assert "animated" in assert_problem(post(limited, buf.getvalue(), "a.gif"), 415, "unsupported-format")["detail"]


@pytest.mark.parametrize("kind", ["png", "jpeg"])
def test_truncated_image_is_422(limited: Service, kind: str) -> None:
    arr = images.photo(64, 64)
    data = images.png(arr) if kind == "png" else images.jpeg(arr)
    body = assert_problem(post(limited, data[: len(data) // 2]), 422, "corrupt-image")
    assert "damaged" in body["detail"]


def test_decompression_bomb_is_refused_before_decoding(limited: Service) -> None:
    body = assert_problem(post(limited, images.png_bomb(40000, 40000)), 413, "image-too-large")
    assert body["width"] == 40000 and body["max_pixels"] == 250000


def test_too_many_output_pixels_is_413(limited: Service) -> None:
    data = images.png(np.full((400, 400, 3), 128, np.uint8))  # x4 = 1600x1600 > 1200x1200
    assert_problem(post(limited, data), 413, "output-too-large")
    r = post(limited, data, scale="2")  # x2 = 800x800 fits
    assert r.status_code == 202


def test_upload_over_the_byte_limit_is_413(limited: Service) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (400, 400, 3), dtype=np.uint8)
    data = images.png(noise)
    assert len(data) > 300_000 + 64 * 1024
    body = assert_problem(post(limited, data), 413, "upload-too-large")
    assert body["max_bytes"] == 300_000


def test_upload_of_exactly_the_byte_limit_is_accepted(limited: Service) -> None:
    small = images.png(images.photo(64, 64))
    padding = 300_000 - len(small) - 12  # a chunk adds 12 bytes around its payload
    data = images.with_png_chunk(small, b"tEXt", b"pad\0" + b"x" * (padding - 4))
    assert len(data) == 300_000
    r = post(limited, data)
    assert r.status_code == 202, r.text


def test_chunked_upload_is_cut_off_while_still_arriving(limited: Service) -> None:
    """No Content-Length: the gateway must answer 413 once the limit passes, long
    before a 20 MB body has been sent."""
    sock = socket.create_connection(("127.0.0.1", limited.port))
    boundary = "b0undary"
    sock.sendall(
        b"POST /v1/jobs/super-resolve HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        + f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n".encode()
    )
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    sock.sendall(f"{len(head):x}\r\n".encode() + head + b"\r\n")
    chunk = b"\0" * 65536
    sent = 0
    response = b""
    sock.settimeout(0.05)
    try:
        while sent < 20_000_000:
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            sent += len(chunk)
            try:
                response += sock.recv(65536)
            except TimeoutError:
                continue
            if b"\r\n\r\n" in response:
                break
    except (BrokenPipeError, ConnectionResetError):
        pass
    sock.settimeout(5)
    try:
        while b"}" not in response:
            more = sock.recv(65536)
            if not more:
                break
            response += more
    except (TimeoutError, ConnectionResetError):
        pass
    sock.close()
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    assert json.loads(response.split(b"\r\n\r\n", 1)[1])["code"] == "upload-too-large"
    assert sent < 2_000_000, f"sent {sent} bytes before the refusal"


def test_output_limit_counts_the_upright_size_of_a_rotated_photo(limited: Service) -> None:
    data = images.jpeg(images.photo(400, 300), orientation=6)  # shown as 300x400
    body = assert_problem(post(limited, data, "a.jpg"), 413, "output-too-large")
    assert "x4 of 300x400 is 1200x1600" in body["detail"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"scale": "3"}, "scale must be 2 or 4"),
        ({"scale": "four"}, "scale"),
        ({"output_format": "gif"}, "output_format"),
        ({"quality": "0"}, "quality"),
        ({"quality": "80"}, "quality applies to jpeg and webp"),
        ({"model": "nope"}, "no super-resolve model named 'nope'"),
        ({"model": "sr-compact-x2", "scale": "4"}, "upscales x2, but scale=4"),
    ],
)
def test_invalid_parameters_are_422(limited: Service, fields: dict[str, str], message: str) -> None:
    body = assert_problem(post(limited, images.png(images.photo(16, 16)), **fields), 422, "invalid-parameter")
    assert message in body["detail"]


def test_missing_image_field_is_422(limited: Service) -> None:
    with limited.client() as client:
        r = client.post("/v1/jobs/super-resolve", data={"scale": "2"})
    body = assert_problem(r, 422, "invalid-parameter")
    assert body["errors"][0]["field"] == "image"


def test_unknown_route_and_method_are_problems(limited: Service) -> None:
    with limited.client() as client:
        missing = client.get("/v2/nothing")
        method = client.put("/v1/models")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    assert method.status_code == 405 and method.json()["code"] == "method-not-allowed"


def test_model_named_with_its_own_scale(limited: Service) -> None:
    r = post(limited, images.png(images.photo(16, 16)), model="sr-compact-x2")
    assert r.status_code == 202 and r.json()["params"]["scale"] == 2
