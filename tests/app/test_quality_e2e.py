"""Quality through the API on images larger than one tile.

This module's service uses small tiles (56 px, overlap 24), so every image here runs
as several overlapping tiles and the figures include what tiling and blending do to
the pixels. The references (bicubic, non-local means, the model run on the whole
image) are computed here, not read from the model cards. Thresholds sit a little
below the values measured on these inputs, written beside them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from tests.conftest import start_service
from tests.support import images
from tests.support.services import Service, free_port
from training.imresize import imresize, modcrop
from training.metrics import crop_border, psnr, y_channel

MODELS = Path(__file__).resolve().parents[2] / "models"
TILES = {"IMGENHANCE_TILE_SIZE": "56", "IMGENHANCE_TILE_OVERLAP": "24"}
WAIT = {"Prefer": "wait=60"}


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def tiled(redis_url: str, tmp_path_factory: pytest.TempPathFactory, metrics_port: int) -> Iterator[Service]:
    env = {**TILES, "IMGENHANCE_METRICS_PORT": str(metrics_port)}
    svc = start_service(redis_url, tmp_path_factory.mktemp("tiled"), env)
    yield svc
    svc.stop()


def post(svc: Service, task: str, data: bytes, **fields: object) -> np.ndarray:
    with svc.client() as client:
        r = client.post(
            f"/v1/jobs/{task}",
            files={"image": ("in.png", data)},
            data={k: str(v) for k, v in fields.items()},
            headers=WAIT,
        )
    assert r.status_code == 200, r.text
    return np.asarray(images.open_image(r.content).convert("RGB"))


def tiles_processed(metrics_port: int, model: str) -> float:
    prefix = f'imgenhance_tiles_processed_total{{model="{model}"}} '
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
    return sum(float(line.removeprefix(prefix)) for line in text.splitlines() if line.startswith(prefix))


def y_psnr(a: np.ndarray, b: np.ndarray, border: int) -> float:
    return psnr(crop_border(y_channel(a), border), crop_border(y_channel(b), border))


def butterfly() -> np.ndarray:
    return np.asarray(Image.open(images.BUTTERFLY).convert("RGB"))


def test_an_image_larger_than_a_tile_runs_as_overlapping_tiles(tiled: Service, metrics_port: int) -> None:
    before = tiles_processed(metrics_port, "sr-compact-x4")
    post(tiled, "super-resolve", images.png(images.photo(64, 64)), scale=4)
    assert tiles_processed(metrics_port, "sr-compact-x4") - before == 4  # 2x2 tiles of 44 px, 24 px overlap


@pytest.mark.parametrize(
    ("scale", "margin"),
    [
        (4, 4.6),  # measured: service 26.92 dB, bicubic 22.10 dB (+4.82 dB); 64x64 input, 2x2 tiles
        (2, 6.5),  # measured: service 34.23 dB, bicubic 27.44 dB (+6.79 dB); 128x128 input, 4x4 tiles
    ],
)
def test_tiled_super_resolve_beats_bicubic_on_a_set5_photo(tiled: Service, scale: int, margin: float) -> None:
    hr = modcrop(butterfly(), scale)
    lr = imresize(hr, 1 / scale)
    sr = post(tiled, "super-resolve", images.png(lr), scale=scale)
    ours, base = y_psnr(sr, hr, scale), y_psnr(imresize(lr, scale), hr, scale)
    assert ours > base + margin, f"x{scale}: service {ours:.2f} dB vs bicubic {base:.2f} dB"


def test_tiled_result_matches_the_model_run_on_the_whole_image(tiled: Service) -> None:
    """The blended tiles reproduce what the model computes on the untiled image."""
    lr = butterfly()[:120, :150]  # 3x4 tiles
    session = ort.InferenceSession(str(MODELS / "sr-compact-x2.onnx"), providers=["CPUExecutionProvider"])
    whole = session.run(None, {"input": lr.transpose(2, 0, 1)[None].astype(np.float32) / 255.0})[0][0]
    expected = np.round(np.clip(whole, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)
    got = post(tiled, "super-resolve", images.png(lr), scale=2)
    assert got.shape == expected.shape
    assert np.abs(got.astype(int) - expected).max() <= 1  # measured: 1 level
    assert psnr(got, expected) > 75  # measured: 79.5 dB


@pytest.mark.parametrize("fields", [{"sigma": 25}, {}], ids=["sigma25", "blind"])
def test_tiled_denoise_beats_non_local_means_at_sigma_25(tiled: Service, fields: dict[str, object]) -> None:
    clean = butterfly()[:96, :96]  # 3x3 tiles
    noise = np.random.default_rng(7).normal(0, 25, clean.shape)
    noisy = np.clip(clean + noise, 0, 255).round().astype(np.uint8)
    nlm = cv2.fastNlMeansDenoisingColored(noisy, None, 20, 20, 7, 21)  # h = 0.8 sigma, as in training.evaluate
    ours, classical = psnr(post(tiled, "denoise", images.png(noisy), **fields), clean), psnr(nlm, clean)
    # measured: service 30.11 dB (blind 30.09 dB), NLM 24.91 dB, noisy input 20.62 dB
    assert ours > classical + 5.0, f"{fields}: service {ours:.2f} dB vs NLM {classical:.2f} dB"
