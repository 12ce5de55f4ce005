"""End to end through real processes: uvicorn gateway -> Redis -> RQ worker -> ONNX.

One service (gateway + one worker) is shared by this module.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.support import images
from tests.support.services import Service
from training.imresize import imresize
from training.metrics import psnr

MODELS = Path(__file__).resolve().parents[2] / "models"
WAIT = {"Prefer": "wait=60"}


def upscale(service: Service, data: bytes, filename: str = "in.png", **fields: object) -> bytes:
    with service.client() as client:
        r = client.post(
            "/v1/jobs/super-resolve",
            files={"image": (filename, data)},
            data={k: str(v) for k, v in fields.items()},
            headers=WAIT,
        )
    assert r.status_code == 200, r.text
    return r.content


def test_sync_wait_returns_the_4x_image(service: Service) -> None:
    with service.client() as client:
        r = client.post(
            "/v1/jobs/super-resolve", files={"image": ("a.png", images.png(images.photo(48, 40)))}, headers=WAIT
        )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.headers["preference-applied"] == "wait=60"
    job_id = r.headers["x-job-id"]
    assert r.headers["content-location"] == f"/v1/jobs/{job_id}/result"
    assert images.open_image(r.content).size == (192, 160)


def test_without_prefer_202_then_poll_then_result(service: Service) -> None:
    with service.client() as client:
        r = client.post(
            "/v1/jobs/super-resolve", files={"image": ("a.png", images.png(images.photo(40, 32)))}, data={"scale": "2"}
        )
        assert r.status_code == 202, r.text
        job = r.json()
        assert r.headers["location"] == f"/v1/jobs/{job['id']}"
        assert job["links"] == {"self": f"/v1/jobs/{job['id']}", "result": f"/v1/jobs/{job['id']}/result"}
        assert job["status"] in ("queued", "running", "succeeded")
        assert job["task"] == "super-resolve" and job["model"] == "sr-compact-x2"
        assert job["params"] == {"model": "sr-compact-x2", "output_format": "png", "quality": None, "scale": 2}
        deadline = time.monotonic() + 30
        while job["status"] != "succeeded":
            assert time.monotonic() < deadline, job
            assert job["status"] in ("queued", "running"), job
            time.sleep(0.05)
            job = client.get(f"/v1/jobs/{job['id']}").json()
        assert job["progress"] == 1.0 and job["attempts"] == 1 and job["error"] is None
        assert job["timings"]["queued_seconds"] >= 0 and job["timings"]["run_seconds"] > 0
        assert job["started_at"] and job["finished_at"] and job["created_at"]
        result = client.get(job["links"]["result"])
    assert result.status_code == 200
    assert result.headers["content-type"] == "image/png"
    assert images.open_image(result.content).size == (80, 64)
    assert job["result"] == {"content_type": "image/png", "bytes": len(result.content), "width": 80, "height": 64}


def test_jpeg_and_webp_inputs_and_outputs(service: Service) -> None:
    arr = images.photo(40, 30)
    out = images.open_image(upscale(service, images.jpeg(arr), "a.jpg", output_format="jpeg", quality=80))
    assert (out.format, out.size) == ("JPEG", (160, 120))
    out = images.open_image(upscale(service, images.webp(arr), "a.webp", output_format="webp"))
    assert (out.format, out.size) == ("WEBP", (160, 120))


def test_exif_orientation_is_applied(service: Service) -> None:
    arr = images.photo(40, 24)  # stored landscape, displayed portrait (orientation 6: rotate 90 CW)
    out = images.open_image(upscale(service, images.jpeg(arr, orientation=6), "a.jpg"))
    assert out.size == (96, 160)
    assert out.getexif().get(0x0112) in (None, 1)
    shrunk = imresize(np.asarray(out.convert("RGB")), 1 / 4)
    # measured: 26.8 dB against the clockwise turn, 7.5 dB against the counter-clockwise one
    assert psnr(shrunk, np.rot90(arr, -1)) > 25


@pytest.mark.parametrize("output_format", ["png", "jpeg", "webp"])
def test_icc_profile_is_kept(service: Service, output_format: str) -> None:
    icc = images.srgb_icc()
    data = upscale(service, images.png(images.photo(32, 32), icc_profile=icc), output_format=output_format)
    assert images.open_image(data).info.get("icc_profile") == icc


def test_rgba_keeps_alpha_without_dark_halo(service: Service) -> None:
    out = images.open_image(upscale(service, images.png(images.rgba_disc(48, 40))))
    assert out.format == "WEBP" and out.mode == "RGBA" and out.size == (192, 160)  # alpha inputs default to webp
    arr = np.asarray(out).astype(int)
    visible = arr[..., 3] > 128
    assert visible.sum() > 1000
    # The hidden colour under transparent pixels is black: without colour bleeding the
    # upscaled edge of the red disc would turn dark.
    assert arr[..., 0][visible].min() > 180, arr[..., 0][visible].min()
    assert arr[..., 3][~visible].max() <= 128 and arr[0, 0, 3] < 10


def test_gray_stays_gray(service: Service) -> None:
    out = images.open_image(upscale(service, images.png(images.photo(40, 32)[..., 0])))
    assert (out.mode, out.size) == ("L", (160, 128))


def test_16bit_gray_stays_16bit(service: Service) -> None:
    out = images.open_image(upscale(service, images.png(images.gray16(40, 32))))
    assert out.mode.startswith("I") and out.size == (160, 128)
    assert np.asarray(out).max() > 255  # real 16-bit values, not 8-bit scaled


def test_16bit_rgb_stays_16bit(service: Service) -> None:
    arr16 = (images.photo(40, 32).astype(np.uint16) * 257) + 128
    data = upscale(service, images.png16_rgb(arr16))
    import cv2

    out = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and out.shape == (128, 160, 3)
    assert (out % 257).any()  # precision finer than 8 bits survived


def test_16bit_rgba_keeps_its_alpha_values(service: Service) -> None:
    import cv2

    rgb16 = images.photo(40, 32).astype(np.uint16) * 257
    alpha16 = np.tile(np.linspace(0, 65535, 40), (32, 1)).astype(np.uint16)  # a ramp finer than 8 bits
    data = upscale(service, images.png16_rgb(np.dstack([rgb16, alpha16])), output_format="png")
    out = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert out is not None and out.dtype == np.uint16 and out.shape == (128, 160, 4)
    shrunk = imresize(out[..., 3].astype(np.float64), 1 / 4)
    assert psnr(shrunk, alpha16, peak=65535.0) > 65  # measured: 68.9 dB


def test_palette_image(service: Service) -> None:
    data = images.palette_png(images.photo(40, 32))
    out = images.open_image(upscale(service, data))
    assert (out.mode, out.size) == ("RGB", (160, 128))
    shrunk = imresize(np.asarray(out), 1 / 4)
    assert psnr(shrunk, np.asarray(images.open_image(data).convert("RGB"))) > 34  # measured: 36.4 dB


def test_palette_transparency_becomes_alpha(service: Service) -> None:
    index = images.palette_blocks(40, 32)
    out = images.open_image(upscale(service, images.encode(images.palette_image(index), "PNG", transparency=0)))
    assert (out.format, out.mode, out.size) == ("WEBP", "RGBA", (160, 128))  # alpha inputs default to webp
    shrunk = imresize(np.asarray(out)[..., 3].astype(np.float64), 1 / 4)
    assert psnr(shrunk, (index != 0) * 255.0) > 27  # measured: 28.6 dB


def test_large_image_is_tiled_with_progress(service: Service) -> None:
    """An image bigger than one tile runs in several; progress is reported between."""
    with service.client() as client:
        r = client.post(
            "/v1/jobs/super-resolve",
            files={"image": ("a.png", images.png(images.photo(600, 300)))},
            data={"scale": "2"},
        )
        job_id = r.json()["id"]
        seen = set()
        deadline = time.monotonic() + 60
        while (job := client.get(f"/v1/jobs/{job_id}").json())["status"] != "succeeded":
            assert time.monotonic() < deadline and job["status"] in ("queued", "running"), job
            seen.add(job["progress"])
            time.sleep(0.02)
        out = images.open_image(client.get(f"/v1/jobs/{job_id}/result").content)
    assert out.size == (1200, 600)
    assert any(0 < p < 1 for p in seen), f"no intermediate progress seen: {sorted(seen)}"


def test_models_lists_the_shipped_cards(service: Service) -> None:
    with service.client() as client:
        cards = client.get("/v1/models").json()["models"]
        one = client.get("/v1/models/sr-compact-x4").json()
        missing = client.get("/v1/models/nope")
    by_id = {c["id"]: c for c in cards}
    assert {"sr-compact-x4", "sr-compact-x2"} <= set(by_id)
    assert one == by_id["sr-compact-x4"]
    written = json.loads((MODELS / "sr-compact-x4.json").read_text())  # the card as export wrote it
    assert (one["sha256"], one["quality"]["results"]) == (written["sha256"], written["quality"]["results"])
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


def test_health_ready_metrics_docs(service: Service) -> None:
    upscale(service, images.png(images.photo(16, 16)))
    with service.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["queues"]["super-resolve"]["workers"] == 1
        metrics = client.get("/metrics").text
        assert 'imgenhance_http_requests_total{method="POST",route="/v1/jobs/super-resolve",status="200"}' in metrics
        assert 'imgenhance_workers_alive{queue="super-resolve"} 1.0' in metrics
        assert 'imgenhance_queue_depth{queue="super-resolve"}' in metrics
        assert "imgenhance_http_request_duration_seconds_bucket" in metrics
        assert 'imgenhance_jobs_submitted_total{model="sr-compact-x4",task="super-resolve"}' in metrics
        assert client.get("/docs").status_code == 200
        spec = client.get("/openapi.json").json()
    assert {"/v1/jobs/super-resolve", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/result", "/v1/models"} <= set(
        spec["paths"]
    )


def test_unknown_job_is_404_problem(service: Service) -> None:
    with service.client() as client:
        for path in ("/v1/jobs/0123", "/v1/jobs/0123/result"):
            r = client.get(path)
            assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
            assert r.json()["code"] == "job-not-found"
        assert client.delete("/v1/jobs/0123").status_code == 404


def test_result_of_finished_job_can_be_read_twice_and_not_canceled(service: Service) -> None:
    with service.client() as client:
        r = client.post(
            "/v1/jobs/super-resolve", files={"image": ("a.png", images.png(images.photo(16, 16)))}, headers=WAIT
        )
        job_id = r.headers["x-job-id"]
        assert client.get(f"/v1/jobs/{job_id}/result").content == r.content
        refused = client.delete(f"/v1/jobs/{job_id}")
    assert refused.status_code == 409 and refused.json()["code"] == "job-not-cancelable"


def noisy_butterfly(sigma: float, size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    clean = np.asarray(Image.open(images.BUTTERFLY).convert("RGB"))[:size, :size]
    noise = np.random.default_rng(7).normal(0, sigma, clean.shape)
    return clean, np.clip(clean + noise, 0, 255).round().astype(np.uint8)


def denoise(service: Service, data: bytes, **fields: object) -> np.ndarray:
    with service.client() as client:
        r = client.post(
            "/v1/jobs/denoise",
            files={"image": ("n.png", data)},
            data={k: str(v) for k, v in fields.items()},
            headers=WAIT,
        )
    assert r.status_code == 200, r.text
    return np.asarray(images.open_image(r.content))


def test_denoise_strength_is_the_share_of_the_correction(service: Service) -> None:
    _, noisy = noisy_butterfly(25)
    change = {
        s: np.abs(denoise(service, images.png(noisy), strength=s).astype(float) - noisy).mean() for s in (0.0, 0.5, 1.0)
    }
    assert change[0.0] < 0.01  # strength 0 leaves the image as it was
    assert abs(change[0.5] - change[1.0] / 2) < 0.05 * change[1.0]


# Measured through the pipeline on this 96-px crop (denoise-unet, 2026-11-23): sigma 0 moved the
# input by 5.8 RMS (the model before the strength training: ~20); sigma 25 left 8.1 of the ~24;
# artifacts=jpeg on quality 15 gained 1.86 dB.
SIGMA0_CHANGE = 9.0
SIGMA25_LEFT = 10.0
JPEG_GAIN_DB = 1.2


def rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a.astype(float) - b.astype(float)) ** 2)))


def test_denoise_sigma_is_how_much_noise_goes(service: Service) -> None:
    clean, noisy = noisy_butterfly(25)
    out = {s: denoise(service, images.png(noisy), sigma=s) for s in (0, 10, 25, 50)}
    left = {s: rms(o, clean) for s, o in out.items()}  # the noisy input: ~25
    assert rms(out[0], noisy) < SIGMA0_CHANGE, rms(out[0], noisy)  # asked to remove nothing: close to the input
    assert left[0] > left[10] > left[25], left  # more asked, less left
    assert left[25] < SIGMA25_LEFT, left  # the true level: most of it gone
    assert left[50] < 1.2 * left[25], left  # an over-estimate does not smear much more


def test_denoise_jpeg_artifacts_reads_the_files_quality(service: Service) -> None:
    clean = np.asarray(Image.open(images.BUTTERFLY).convert("RGB"))[:96, :96]
    data = images.jpeg(clean, quality=15)
    compressed = np.asarray(images.open_image(data).convert("RGB"))
    out = denoise(service, data, artifacts="jpeg", output_format="png")
    gain = psnr(out, clean) - psnr(compressed, clean)
    assert gain > JPEG_GAIN_DB, gain


def test_denoise_keeps_gray_and_alpha(service: Service) -> None:
    _, noisy = noisy_butterfly(15, 48)
    gray = images.open_image(images.png(noisy[..., 0]))
    with service.client() as client:
        r = client.post("/v1/jobs/denoise", files={"image": ("g.png", images.png(noisy[..., 0]))}, headers=WAIT)
    assert images.open_image(r.content).mode == "L" and images.open_image(r.content).size == gray.size
    rgba = np.dstack([noisy, np.linspace(0, 255, 48 * 48).reshape(48, 48).astype(np.uint8)])
    with service.client() as client:
        r = client.post(
            "/v1/jobs/denoise",
            files={"image": ("a.png", images.png(rgba))},
            data={"output_format": "png"},
            headers=WAIT,
        )
    out = np.asarray(images.open_image(r.content))
    assert out.shape == (48, 48, 4)
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])  # alpha passes through untouched


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"strength": "1.5"}, "strength"),
        ({"sigma": "-1"}, "sigma"),
        ({"model": "sr-compact-x4"}, "no denoise model named 'sr-compact-x4'"),
        ({"artifacts": "blur"}, "artifacts"),
        ({"jpeg_quality": "30"}, "jpeg_quality goes with artifacts=jpeg"),
        ({"artifacts": "jpeg", "jpeg_quality": "0"}, "jpeg_quality"),
        ({"artifacts": "jpeg", "jpeg_quality": "30", "sigma": "10"}, "send sigma or jpeg_quality, not both"),
    ],
)
def test_denoise_bad_parameters(service: Service, fields: dict[str, str], message: str) -> None:
    with service.client() as client:
        r = client.post("/v1/jobs/denoise", files={"image": ("a.png", images.png(images.photo(16, 16)))}, data=fields)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert message in r.json()["detail"]


def test_denoise_job_records_its_parameters(service: Service) -> None:
    with service.client() as client:
        r = client.post(
            "/v1/jobs/denoise",
            files={"image": ("a.png", images.png(images.photo(16, 16)))},
            data={"strength": "0.2", "sigma": "10"},
        )
        blind = client.post("/v1/jobs/denoise", files={"image": ("a.png", images.png(images.photo(16, 16)))})
    assert r.status_code == 202
    job = r.json()
    assert job["task"] == "denoise" and job["model"] == "denoise-unet"
    assert job["params"]["sigma"] == pytest.approx(10.0) and job["params"]["strength"] == pytest.approx(0.2)
    assert blind.json()["params"]["sigma"] is None and blind.json()["params"]["strength"] == 1.0
    assert blind.json()["params"]["artifacts"] == "noise" and blind.json()["params"]["jpeg_quality"] is None


def test_variants_and_models_are_selectable(service: Service) -> None:
    def model_of(model: str) -> httpx.Response:
        with service.client() as client:
            return client.post(
                "/v1/jobs/super-resolve",
                files={"image": ("a.png", images.png(images.photo(24, 20)))},
                data={"model": model},
            )

    real_world = model_of("real-world")
    assert real_world.status_code == 202 and real_world.json()["model"] == "sr-realesrgan-x4plus"
    assert real_world.json()["params"]["scale"] == 4
    assert model_of("general").json()["model"] == "sr-compact-x4"
    assert model_of("anime").json()["model"] == "sr-realesr-animevideov3-x4"
    assert model_of("sr-realworld-x4").json()["model"] == "sr-realworld-x4"  # our own stays selectable by id
    with service.client() as client:
        cards = {c["id"]: c for c in client.get("/v1/models").json()["models"]}
    assert cards["sr-realesrgan-x4plus"]["variant"] == "real-world" and cards["sr-realesrgan-x4plus"]["default"]
    assert "BSD-3-Clause" in cards["sr-realesrgan-x4plus"]["data_terms"]
    assert cards["denoise-unet"]["io"]["noise_level"]["blind_value"] == -1.0


def test_the_real_world_model_keeps_alpha_and_16_bits_like_the_others(service: Service) -> None:
    """Real-ESRGAN x4plus (model=real-world) goes through the same pipeline: alpha, 16-bit."""
    rgba = images.rgba_disc(24, 20)
    out = images.open_image(upscale(service, images.png(rgba), model="real-world", output_format="png"))
    assert out.mode == "RGBA" and out.size == (96, 80)
    arr = np.asarray(out).astype(int)
    assert arr[..., 3][40, 48] > 200 and arr[..., 3][0, 0] < 30  # the disc stays opaque, the corner transparent
    import cv2

    arr16 = images.photo(24, 20).astype(np.uint16) * 257 + 100
    data = upscale(service, images.png16_rgb(arr16), model="real-world")
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.dtype == np.uint16 and decoded.shape == (80, 96, 3) and (decoded % 257).any()
