"""Generate end to end through real processes, with the shipped generators."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.support.services import Service

WAIT = {"Prefer": "wait=60"}


def generate(service: Service, wait: bool = True, **body: Any) -> httpx.Response:
    with service.client() as client:
        return client.post("/v1/jobs/generate", json=body, headers=WAIT if wait else {})


@pytest.fixture(scope="module")
def generators(service: Service) -> dict[str, dict[str, Any]]:
    with service.client() as client:
        cards = client.get("/v1/models").json()["models"]
    return {c["id"]: c for c in cards if c["task"] == "generate"}


def test_models_list_classes_resolution_latent_and_quality(generators: dict[str, dict[str, Any]]) -> None:
    digits = generators["gen-digits"]
    assert digits["generator"]["classes"] == [str(k) for k in range(10)]
    assert digits["generator"]["resolution"] == 32 and digits["generator"]["latent"] > 0
    assert digits["quality"]["kind"] == "generate" and digits["quality"]["fid_floor"] >= 0


def test_a_grid_of_64_digits_and_the_same_seed_gives_the_same_bytes(service: Service) -> None:
    first = generate(service, model="gen-digits", n=64, seed=7)
    again = generate(service, model="gen-digits", n=64, seed=7)
    other = generate(service, model="gen-digits", n=64, seed=8)
    assert first.status_code == 200 and first.headers["content-type"] == "image/png", first.text
    picture = Image.open(io.BytesIO(first.content))
    assert picture.size == (8 * 32 + 7 * 2, 8 * 32 + 7 * 2) and picture.mode == "L"
    assert first.content == again.content and first.content != other.content


def test_faces_are_rgb_128_px_the_same_for_the_same_seed_and_take_no_class(
    service: Service, generators: dict[str, dict[str, Any]]
) -> None:
    faces = generators["gen-faces"]["generator"]
    assert faces["classes"] == [] and faces["resolution"] == 128 and faces["channels"] == 3
    first, again = (generate(service, model="gen-faces", n=2, seed=3) for _ in range(2))
    assert first.status_code == 200, first.text
    picture = Image.open(io.BytesIO(first.content))
    assert picture.size == (2 * 128 + 2, 128) and picture.mode == "RGB" and first.content == again.content
    tiles = np.asarray(picture, np.float32)
    assert np.abs(tiles[:, :128] - tiles[:, 130:]).mean() > 5  # two latents, two faces
    r = generate(service, model="gen-faces", n=2, **{"class": 0})
    assert r.status_code == 422 and "unconditional" in r.json()["detail"], r.text


def test_a_class_by_name_or_index_draws_that_digit(service: Service) -> None:
    by_name = generate(service, model="gen-digits", n=4, seed=1, **{"class": "3"})
    by_index = generate(service, model="gen-digits", n=4, seed=1, **{"class": 3})
    assert by_name.status_code == 200 and by_name.content == by_index.content


def test_zip_holds_one_png_per_image_the_same_as_the_grid(service: Service) -> None:
    r = generate(service, model="gen-digits", n=3, seed=2, output="zip")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
        names = archive.namelist()
        first = np.asarray(Image.open(io.BytesIO(archive.read(names[0]))))
    assert len(names) == 3 and first.shape == (32, 32)
    grid = np.asarray(Image.open(io.BytesIO(generate(service, model="gen-digits", n=3, seed=2).content)))
    np.testing.assert_array_equal(grid[:32, :32], first)


def test_interpolation_is_an_animated_webp(service: Service) -> None:
    r = generate(service, model="gen-digits", n=4, seed=1, interpolate={"to_seed": 2, "steps": 6})
    assert r.status_code == 200 and r.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(r.content)) as im:
        assert im.is_animated and im.n_frames == 6


def test_truncation_makes_digits_of_one_class_more_alike(service: Service) -> None:
    def spread(psi: float) -> float:
        r = generate(service, model="gen-digits", n=16, seed=4, truncation=psi, output="zip", **{"class": "3"})
        assert r.status_code == 200, r.text
        with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
            digits = np.stack(
                [np.asarray(Image.open(io.BytesIO(archive.read(n)))).astype(float) for n in archive.namelist()]
            )
        return float(digits.std(axis=0).mean())

    assert spread(0.3) < spread(1.0)


def test_a_job_without_wait_is_202_and_runs(service: Service) -> None:
    r = generate(service, wait=False, model="gen-digits", n=2)
    assert r.status_code == 202 and r.json()["task"] == "generate" and r.json()["params"]["n"] == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"n": 0}, "n"),
        ({"n": 65}, "n"),
        ({"truncation": 0}, "truncation"),
        ({"truncation": 1.5}, "truncation"),
        ({"class": "eleven"}, "class"),
        ({"interpolate": {"steps": 5}}, "interpolate.to_seed"),
        ({"model": "sr-compact-x4"}, ""),
        ({"interpolate": {"to_seed": 2, "steps": 120}, "n": 64}, "interpolate.steps"),
        ({"output": "zip", "quality": 80}, "output_format"),
        ({"nn": 4}, "nn"),
    ],
)
def test_bad_requests_are_422_naming_the_field(service: Service, body: dict[str, Any], field: str) -> None:
    r = generate(service, **{"model": "gen-digits", **body})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", r.text
    problem = r.json()
    named = {e["field"] for e in problem.get("errors", [])} | {problem.get("field")}
    if field:
        assert field in named, problem
    else:
        assert "no generate model named 'sr-compact-x4'" in problem["detail"]
