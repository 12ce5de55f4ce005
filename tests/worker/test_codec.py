from __future__ import annotations

import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from imgenhance.jobs import JobError
from tests.support import images
from worker.codec import Picture, decode, encode


def png16(data: bytes) -> np.ndarray:
    """A 16-bit PNG as RGB(A) uint16."""
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert arr is not None and arr.dtype == np.uint16
    rgb: np.ndarray = arr[..., [2, 1, 0, 3][: arr.shape[2]]]
    return rgb


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
    arr = np.random.default_rng(4).integers(0, 65536, (9, 12), dtype=np.uint16)
    arr[0, :2] = (0, 65535)  # both ends of the range
    pic = decode(images.png(arr))
    assert pic.bits == 16 and pic.gray
    out = np.asarray(images.open_image(encode(pic, "png")[0]))
    np.testing.assert_array_equal(out, arr)


def test_16bit_rgb_round_trip_is_lossless() -> None:
    rgb16 = np.random.default_rng(0).integers(0, 65536, (6, 7, 3), dtype=np.uint16)
    pic = decode(images.png16_rgb(rgb16))
    assert pic.bits == 16 and not pic.gray and pic.alpha is None
    np.testing.assert_array_equal(png16(encode(pic, "png")[0]), rgb16)


def test_16bit_alpha_values_are_decoded_exactly() -> None:
    rgba16 = np.random.default_rng(1).integers(0, 65536, (6, 7, 4), dtype=np.uint16)
    pic = decode(images.png16_rgb(rgba16))
    assert pic.bits == 16 and pic.alpha is not None
    np.testing.assert_array_equal(np.round(pic.alpha * 65535).astype(np.uint16), rgba16[..., 3])
    np.testing.assert_array_equal(np.round(pic.pixels * 65535).astype(np.uint16), rgba16[..., :3])


def test_16bit_alpha_values_are_encoded_exactly() -> None:
    rgb = np.random.default_rng(2).random((6, 7, 3), dtype=np.float32)
    alpha16 = np.arange(42, dtype=np.uint16).reshape(6, 7) * 1531  # 0 .. 62771, not multiples of 257
    data, _ = encode(Picture(rgb, alpha16.astype(np.float32) / 65535, 16), "png")
    back = png16(data)
    assert back.shape == (6, 7, 4)
    np.testing.assert_array_equal(back[..., 3], alpha16)
    np.testing.assert_array_equal(back[..., :3], np.round(rgb * 65535).astype(np.uint16))


# EXIF orientation -> the turn that makes the stored pixels upright (EXIF 2.3, tag 0x0112).
UPRIGHT = {
    1: lambda a: a,
    2: np.fliplr,  # mirrored left-right
    3: lambda a: np.rot90(a, 2),  # upside down
    4: np.flipud,  # mirrored top-bottom
    5: lambda a: np.rot90(np.fliplr(a), 1),  # transposed
    6: lambda a: np.rot90(a, -1),  # turn 90 degrees clockwise
    7: lambda a: np.rot90(np.fliplr(a), -1),  # transversed
    8: lambda a: np.rot90(a, 1),  # turn 90 degrees counter-clockwise
}


@pytest.mark.parametrize("orientation", sorted(UPRIGHT))
def test_exif_orientation_turns_8bit_pixels_upright(orientation: int) -> None:
    arr = images.photo(7, 5)
    pic = decode(images.encode(Image.fromarray(arr), "PNG", exif=images.exif_orientation(orientation)))
    np.testing.assert_array_equal(np.round(pic.pixels * 255).astype(np.uint8), UPRIGHT[orientation](arr))


@pytest.mark.parametrize("orientation", sorted(UPRIGHT))
def test_exif_orientation_turns_16bit_pixels_upright(orientation: int) -> None:
    rgba16 = np.random.default_rng(3).integers(0, 65536, (5, 7, 4), dtype=np.uint16)
    png = images.with_png_chunk(images.png16_rgb(rgba16), b"eXIf", images.exif_orientation(orientation))
    pic = decode(png)
    assert pic.bits == 16 and pic.alpha is not None
    upright = UPRIGHT[orientation](rgba16)
    np.testing.assert_array_equal(np.round(pic.pixels * 65535).astype(np.uint16), upright[..., :3])
    np.testing.assert_array_equal(np.round(pic.alpha * 65535).astype(np.uint16), upright[..., 3])


def test_palette_with_a_transparent_index_becomes_rgba() -> None:
    index = images.palette_blocks(20, 16)
    pic = decode(images.encode(images.palette_image(index), "PNG", transparency=0))
    assert pic.alpha is not None and not pic.gray
    np.testing.assert_array_equal(pic.alpha, (index != 0).astype(np.float32))
    np.testing.assert_array_equal(np.round(pic.pixels * 255).astype(np.uint8), images.PALETTE[index])


def test_palette_with_per_entry_alpha_keeps_each_entrys_alpha() -> None:
    index = images.palette_blocks(20, 16)
    table = np.array([255, 128, 0, 64], np.uint8)
    pic = decode(images.encode(images.palette_image(index), "PNG", transparency=table.tobytes()))
    assert pic.alpha is not None
    np.testing.assert_array_equal(np.round(pic.alpha * 255).astype(np.uint8), table[index])


# CMYK patches and the RGB they stand for: R = 255 (1 - C/255)(1 - K/255), and so on.
CMYK = np.array(
    [[0, 0, 0, 0], [255, 0, 0, 0], [0, 255, 0, 0], [0, 0, 255, 0], [0, 0, 0, 255], [0, 0, 0, 128], [128, 64, 32, 16]],
    np.uint8,
)
CMYK_AS_RGB = np.array(
    [[255, 255, 255], [0, 255, 255], [255, 0, 255], [255, 255, 0], [0, 0, 0], [127, 127, 127], [119, 179, 209]],
    np.float32,
)


@pytest.mark.parametrize("fmt", ["JPEG", "TIFF"])
def test_cmyk_becomes_the_matching_rgb(fmt: str) -> None:
    patches = np.repeat(np.repeat(CMYK[None], 8, axis=0), 8, axis=1)  # 8x8 blocks side by side
    pic = decode(images.encode(Image.fromarray(patches, "CMYK"), fmt))
    assert pic.pixels.shape == (8, 8 * len(CMYK), 3) and pic.alpha is None
    centres = pic.pixels[4, 4::8] * 255
    np.testing.assert_allclose(centres, CMYK_AS_RGB, atol=1.0)  # measured: within 0.18 (rounding)


@pytest.mark.parametrize(
    ("fmt", "quality", "bits", "channels", "with_alpha"),
    [
        ("png", None, 8, 3, False),
        ("png", None, 8, 1, True),
        ("png", None, 16, 1, False),
        ("png", None, 16, 3, True),
        ("jpeg", None, 8, 3, False),
        ("jpeg", 80, 8, 1, True),
        ("jpeg", None, 16, 3, False),
        ("webp", None, 8, 3, False),
        ("webp", 80, 8, 3, True),
        ("webp", None, 16, 1, False),
    ],
)
def test_icc_profile_is_written_to_every_output_format(
    fmt: str, quality: int | None, bits: int, channels: int, with_alpha: bool
) -> None:
    icc = images.srgb_icc()
    alpha = np.full((4, 5), 0.5, np.float32) if with_alpha else None
    data, _ = encode(Picture(np.full((4, 5, channels), 0.3, np.float32), alpha, bits, icc), fmt, quality)
    assert images.open_image(data).info.get("icc_profile") == icc


@pytest.mark.parametrize("kind", ["png8", "png16"])
def test_icc_profile_is_read_from_the_input(kind: str) -> None:
    icc = images.srgb_icc()
    if kind == "png8":
        data = images.png(images.photo(8, 8), icc_profile=icc)
    else:
        data = images.with_png_chunk(
            images.png16_rgb(np.zeros((4, 4, 3), np.uint16)), b"iCCP", b"icc\0\0" + zlib.compress(icc)
        )
    assert decode(data).icc_profile == icc


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


@pytest.mark.parametrize("quality", [5, 10, 37, 50, 75, 95, 100])
def test_a_jpeg_upload_carries_the_quality_it_was_saved_at(quality: int) -> None:
    data = images.jpeg(images.photo(64, 48), quality=quality)
    assert decode(data).jpeg_quality == quality
    ok, encoded = cv2.imencode(".jpg", images.photo(64, 48)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok and decode(encoded.tobytes()).jpeg_quality == quality  # OpenCV's libjpeg too


def test_other_formats_carry_no_jpeg_quality() -> None:
    assert decode(images.png(images.photo(16, 16))).jpeg_quality is None
