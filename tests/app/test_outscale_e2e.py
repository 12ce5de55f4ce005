"""``outscale``: any factor above 1 up to 8, through the gateway, a worker and back.

The nearest model scale runs, then the worker resamples its output to the size asked
for; the gateway checks limits against that final size.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from tests.support import images
from tests.support.services import Service

WAIT = {"Prefer": "wait=60"}


def post(service: Service, data: bytes, **fields: object) -> tuple[int, bytes, dict[str, str], str]:
    with service.client() as client:
        r = client.post(
            "/v1/jobs/super-resolve",
            files={"image": ("in.png", data)},
            data={k: str(v) for k, v in fields.items()},
            headers=WAIT,
        )
        job = client.get(f"/v1/jobs/{r.headers['x-job-id']}").json() if r.status_code == 200 else {}
    return r.status_code, r.content, job, r.text


def lanczos(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    """What the worker does to the model's output: Pillow's Lanczos on float planes."""
    planes = [
        np.asarray(Image.fromarray(arr[..., c].astype(np.float32)).resize((width, height), Image.Resampling.LANCZOS))
        for c in range(arr.shape[2])
    ]
    return np.clip(np.stack(planes, axis=2), 0, 255)


def test_outscale_gives_the_asked_size_and_the_resampled_x4_pixels(service: Service) -> None:
    data = images.png(images.photo(40, 32))
    status, x4, _, text = post(service, data, scale=4)
    assert status == 200, text
    status, out, job, text = post(service, data, outscale=3)
    assert status == 200, text
    assert job["model"] == "sr-compact-x4"
    assert job["params"]["outscale"] == 3.0 and job["params"]["scale"] == 4
    got = np.asarray(images.open_image(out)).astype(np.float32)
    assert got.shape == (96, 120, 3)
    expected = lanczos(np.asarray(images.open_image(x4)).astype(np.float32), 120, 96)
    diff = np.abs(got - expected)
    assert diff.mean() < 0.5 and diff.max() <= 3, (diff.mean(), diff.max())


def test_the_smallest_model_scale_at_or_above_outscale_runs(service: Service) -> None:
    data = images.png(images.photo(33, 21))
    status, out, job, text = post(service, data, outscale=1.5)
    assert status == 200, text
    assert job["model"] == "sr-compact-x2"
    assert images.open_image(out).size == (round(33 * 1.5), round(21 * 1.5))  # 50x32: round half to even


def test_above_the_largest_model_scale_the_x4_output_is_upsampled(service: Service) -> None:
    status, out, job, text = post(service, images.png(images.photo(16, 12)), outscale=8)
    assert status == 200, text
    assert job["model"] == "sr-compact-x4" and images.open_image(out).size == (128, 96)


def test_a_named_model_keeps_its_own_scale_and_variants_choose_among_theirs(service: Service) -> None:
    data = images.png(images.photo(16, 12))
    status, out, job, text = post(service, data, outscale=1.25, model="sr-compact-x4")
    assert status == 200, text
    assert job["model"] == "sr-compact-x4" and images.open_image(out).size == (20, 15)
    status, out, job, text = post(service, data, outscale=1.25, model="anime")  # the anime variant is x4 only
    assert status == 200, text
    assert job["model"] == "sr-realesr-animevideov3-x4" and images.open_image(out).size == (20, 15)


def test_alpha_and_16_bits_survive_the_resampling(service: Service) -> None:
    rgb16 = (images.photo(20, 16).astype(np.uint16) * 257)[..., :3]
    alpha16 = np.zeros((16, 20), np.uint16)
    alpha16[3:13, 4:16] = 65535
    status, out, _, text = post(service, images.png16_rgb(np.dstack([rgb16, alpha16])), outscale=2.5)
    assert status == 200, text
    arr = cv2.imdecode(np.frombuffer(out, np.uint8), cv2.IMREAD_UNCHANGED)
    assert arr.dtype == np.uint16 and arr.shape == (40, 50, 4)
    alpha = arr[..., 3].astype(np.float32) / 65535
    assert alpha[15:26, 17:33].min() > 0.95 and alpha[:3].max() < 0.05  # opaque inside, clear outside
    assert len(np.unique(arr[..., :3])) > 256  # 16-bit levels, not 8-bit ones widened


def test_output_limits_use_the_final_size(service: Service) -> None:
    flat = images.png(np.full((1100, 1100, 3), 128, np.uint8))  # x4 fits 8192², x8 does not
    status, _, _, text = post(service, flat, outscale=8)
    assert status == 413 and '"output-too-large"' in text and "8800x8800" in text, text


def test_outscale_is_checked(service: Service) -> None:
    data = images.png(images.photo(16, 12))
    for fields in ({"outscale": 1}, {"outscale": 8.5}, {"outscale": "big"}, {"outscale": 3, "scale": 4}):
        status, _, _, text = post(service, data, **fields)
        assert status == 422 and "outscale" in text, (fields, text)
