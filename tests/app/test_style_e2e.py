"""Style transfer end to end through real processes, with the shipped style models."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest
from PIL import ImageOps

from tests.support import images
from tests.support.services import Service

WAIT = {"Prefer": "wait=60"}
TO_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def stylise(service: Service, data: bytes, style_image: bytes | None = None, **fields: object) -> httpx.Response:
    files: dict[str, Any] = {"image": ("in.png", data)}
    if style_image is not None:
        files["style_image"] = ("style.png", style_image)
    with service.client() as client:
        return client.post(
            "/v1/jobs/style-transfer", files=files, data={k: str(v) for k, v in fields.items()}, headers=WAIT
        )


def pixels(r: httpx.Response) -> np.ndarray:
    assert r.status_code == 200, r.text
    return np.asarray(images.open_image(r.content)).astype(np.float64)


@pytest.fixture(scope="module")
def styles(service: Service) -> dict[str, Any]:
    with service.client() as client:
        body: dict[str, Any] = client.get("/v1/styles").json()
    return body


def test_at_least_six_named_styles_with_their_paintings(service: Service, styles: dict[str, Any]) -> None:
    named = styles["styles"]
    assert len(named) >= 6 and styles["any_style_model"]
    with service.client() as client:
        for style in named:
            assert style["title"] and style["artist"] and style["year"] and style["licence"] == "public domain"
            for link in ("preview", "example"):
                r = client.get(style["links"][link])
                assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
                assert max(images.open_image(r.content).size) >= 128
        cards = {c["id"]: c for c in client.get("/v1/models").json()["models"]}
    first = named[0]
    assert cards[first["model"]]["links"]["preview"] == first["links"]["preview"]
    assert cards[first["model"]]["task"] == "style-transfer"


def test_a_named_style_repaints_the_photo_at_its_size(service: Service, styles: dict[str, Any]) -> None:
    name = styles["styles"][0]["name"]
    photo = np.asarray(images.open_image(images.png(images.photo(120, 90)))).astype(np.float64)
    out = pixels(stylise(service, images.png(images.photo(120, 90)), style=name))
    assert out.shape == (90, 120, 3)
    # Measured 40-70 levels mean change for the shipped styles; a no-op or a blur is far below.
    assert np.abs(out - photo).mean() > 20


def test_strength_zero_gives_the_photo_back(service: Service, styles: dict[str, Any]) -> None:
    photo = images.photo(64, 48)
    out = pixels(stylise(service, images.png(photo), style=styles["styles"][0]["name"], strength=0))
    assert np.abs(out - photo).max() <= 1


def test_exif_orientation_is_applied_before_stylising(service: Service, styles: dict[str, Any]) -> None:
    data = images.jpeg(images.photo(40, 24), orientation=6)  # stored landscape, displayed rotated 90 degrees clockwise
    upright = np.asarray(ImageOps.exif_transpose(images.open_image(data))).astype(np.float64)
    out = pixels(stylise(service, data, style=styles["styles"][0]["name"], strength=0))
    assert out.shape == (40, 24, 3)
    assert np.abs(out - upright).max() <= 1


def test_max_side_sets_the_scale_and_keep_size_false_returns_it(service: Service, styles: dict[str, Any]) -> None:
    name = styles["styles"][0]["name"]
    r = stylise(service, images.png(images.photo(200, 100)), style=name, max_side=80, keep_size="false")
    assert pixels(r).shape == (40, 80, 3)


def test_preserve_color_keeps_the_photos_chroma(service: Service, styles: dict[str, Any]) -> None:
    photo = images.photo(96, 96).astype(np.float64)
    name = styles["styles"][0]["name"]
    free = pixels(stylise(service, images.png(photo.astype(np.uint8)), style=name))
    kept = pixels(stylise(service, images.png(photo.astype(np.uint8)), style=name, preserve_color="true"))
    chroma = [np.abs((x @ TO_YCC.T)[..., 1:] - (photo @ TO_YCC.T)[..., 1:]).mean() for x in (free, kept)]
    # Measured: kept ~1 level (rounding, clipping), free 10-40 levels depending on the painting.
    assert chroma[1] < 2.5 and chroma[0] > 4 * chroma[1], chroma


def test_any_uploaded_style_image(service: Service, styles: dict[str, Any]) -> None:
    stripes = np.zeros((96, 96, 3), np.uint8)
    stripes[:, ::6] = (250, 200, 0)
    stripes[:, 1::6] = (250, 200, 0)
    photo = images.photo(80, 64)
    out = pixels(stylise(service, images.png(photo), style_image=images.png(stripes)))
    assert out.shape == (64, 80, 3)
    assert np.abs(out - photo).mean() > 10
    job_id = stylise(service, images.png(photo), style_image=images.png(stripes)).headers["x-job-id"]
    with service.client() as client:
        job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["model"] == styles["any_style_model"] and job["params"]["style"] is None


def test_rgba_keeps_its_alpha_and_16_bit_stays_16_bit(service: Service, styles: dict[str, Any]) -> None:
    name = styles["styles"][0]["name"]
    rgba = images.rgba_disc(48, 40)
    out = images.open_image(stylise(service, images.png(rgba), style=name, output_format="png").content)
    assert out.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(out)[..., 3], rgba[..., 3])
    import cv2

    arr16 = images.photo(40, 32).astype(np.uint16) * 257
    r = stylise(service, images.png16_rgb(arr16), style=name)
    decoded = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.dtype == np.uint16 and decoded.shape == (32, 40, 3)


@pytest.mark.parametrize(
    ("fields", "with_style_image", "status", "needle"),
    [
        ({"style": "no-such-painting"}, False, 422, "available: "),
        ({}, False, 422, "name a style"),
        ({"style": "STYLE0"}, True, 422, "not both"),
        ({"style": "STYLE0", "strength": "1.5"}, False, 422, "strength"),
        ({"style": "STYLE0", "max_side": "5000"}, False, 422, "max_side"),
    ],
)
def test_bad_style_requests_are_422(
    service: Service, styles: dict[str, Any], fields: dict[str, str], with_style_image: bool, status: int, needle: str
) -> None:
    fields = {k: (styles["styles"][0]["name"] if v == "STYLE0" else v) for k, v in fields.items()}
    style_image = images.png(images.photo(16, 16)) if with_style_image else None
    r = stylise(service, images.png(images.photo(16, 16)), style_image, **fields)
    assert r.status_code == status and r.headers["content-type"] == "application/problem+json", r.text
    assert needle in r.json()["detail"]
    if "available" in needle:
        assert all(s["name"] in r.json()["detail"] for s in styles["styles"])


def test_a_style_image_that_is_not_an_image_is_415(service: Service) -> None:
    r = stylise(service, images.png(images.photo(16, 16)), b"%PDF-1.4 not a painting")
    assert r.status_code == 415 and r.json()["code"] == "not-an-image"
    assert r.json()["field"] == "style_image" and r.json()["detail"].startswith("style_image:")


def test_unknown_style_preview_is_404(service: Service) -> None:
    with service.client() as client:
        r = client.get("/v1/styles/no-such-painting/preview")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
