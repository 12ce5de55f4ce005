from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from imgenhance.jobs import JobError
from tests.support import images
from worker.codec import Picture, decode, encode


def test_rgb_png_round_trip_is_lossless() -> None:
    arr = images.photo(20, 10)
    pic = decode(images.png(arr))
    assert (pic.width, pic.height, pic.bits, pic.gray, pic.alpha) == (20, 10, 8, False, None)
    data, ctype = encode(pic, "png")
    assert ctype == "image/png"
    np.testing.assert_array_equal(np.asarray(images.open_image(data)), arr)


def test_gray_and_gray_alpha() -> None:
    gray = decode(images.png(images.photo(8, 8)[..., 0]))
    assert gray.gray and gray.alpha is None
    la = np.stack([images.photo(8, 8)[..., 0], np.full((8, 8), 77, np.uint8)], axis=2)
    pic = decode(images.encode(Image.fromarray(la, "LA"), "PNG"))
    assert pic.gray and pic.alpha is not None and np.allclose(pic.alpha, 77 / 255)
    assert images.open_image(encode(pic, "png")[0]).mode == "LA"


def test_16bit_gray_round_trip() -> None:
    arr = images.gray16(12, 9)
    pic = decode(images.png(arr))
    assert pic.bits == 16 and pic.gray
    out = np.asarray(images.open_image(encode(pic, "png")[0]))
    np.testing.assert_array_equal(out, arr)


def test_16bit_rgb_and_rgba_round_trip_with_icc() -> None:
    rgb16 = np.random.default_rng(0).integers(0, 65536, (6, 7, 3), dtype=np.uint16)
    icc = images.srgb_icc()
    pic = decode(images.png16_rgb(rgb16))
    assert pic.bits == 16 and not pic.gray and pic.alpha is None
    data, _ = encode(Picture(pic.pixels, None, 16, icc), "png")
    back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)[..., ::-1]
    np.testing.assert_array_equal(back, rgb16)
    assert Image.open(io.BytesIO(data)).info["icc_profile"] == icc
    alpha = np.linspace(0, 1, 42, dtype=np.float32).reshape(6, 7)
    data, _ = encode(Picture(pic.pixels, alpha, 16, None), "png")
    back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert back.shape == (6, 7, 4) and back.dtype == np.uint16


def test_exif_orientation_is_applied_on_decode() -> None:
    arr = images.photo(30, 10)
    pic = decode(images.jpeg(arr, orientation=6))
    assert (pic.width, pic.height) == (10, 30)


def test_palette_with_transparency_becomes_rgba() -> None:
    im = Image.fromarray(images.rgba_disc(20, 20)).convert("P")
    im.info["transparency"] = 0
    pic = decode(images.encode(im, "PNG", transparency=0))
    assert pic.alpha is not None and not pic.gray


def test_cmyk_jpeg_becomes_rgb() -> None:
    pic = decode(images.encode(Image.fromarray(images.photo(8, 8)).convert("CMYK"), "JPEG"))
    assert pic.pixels.shape == (8, 8, 3)


def test_jpeg_output_flattens_alpha_over_white() -> None:
    pic = Picture(np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.float32), 8)
    data, ctype = encode(pic, "jpeg")
    assert ctype == "image/jpeg" and np.asarray(images.open_image(data)).min() > 250


def test_webp_is_lossless_unless_quality_is_given() -> None:
    arr = images.photo(16, 16)
    pic = decode(images.png(arr))
    np.testing.assert_array_equal(np.asarray(images.open_image(encode(pic, "webp")[0])), arr)
    lossy = np.asarray(images.open_image(encode(pic, "webp", quality=30)[0]))
    assert not np.array_equal(lossy, arr)


def test_undecodable_bytes_raise_a_job_error() -> None:
    with pytest.raises(JobError, match="could not be decoded"):
        decode(b"garbage")
