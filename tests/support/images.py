"""Test images made in code: every format, mode and oddity the service must handle."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageCms

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
BUTTERFLY = FIXTURES / "set5_butterfly.png"


def photo(width: int = 48, height: int = 40, seed: int = 0) -> np.ndarray:
    """A smooth-plus-detail RGB uint8 image (gradients, a disc, stripes, mild noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:height, :width].astype(np.float32)
    r = 0.5 + 0.4 * np.sin(x / max(width, 1) * 6.0)
    g = 0.3 + 0.5 * (y / max(height, 1))
    b = 0.5 + 0.3 * np.cos((x + y) / 7.0)
    disc = ((x - width * 0.6) ** 2 + (y - height * 0.4) ** 2) < (min(width, height) * 0.2) ** 2
    img = np.stack([r, g, b], axis=2)
    img[disc] = (0.9, 0.2, 0.1)
    img += rng.normal(0, 0.02, img.shape)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def encode(im: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **options)
    return buf.getvalue()


def png(arr: np.ndarray, **options: object) -> bytes:
    return encode(Image.fromarray(arr), "PNG", **options)


def jpeg(arr: np.ndarray, orientation: int | None = None, quality: int = 95) -> bytes:
    im = Image.fromarray(arr)
    options: dict[str, object] = {"quality": quality}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        options["exif"] = exif.tobytes()
    return encode(im, "JPEG", **options)


def webp(arr: np.ndarray) -> bytes:
    return encode(Image.fromarray(arr), "WEBP", lossless=True)


def rgba_disc(width: int = 48, height: int = 40) -> np.ndarray:
    """An opaque red disc on a fully transparent background whose hidden colour is black."""
    y, x = np.mgrid[:height, :width]
    inside = ((x - width / 2) ** 2 + (y - height / 2) ** 2) < (min(width, height) * 0.35) ** 2
    arr = np.zeros((height, width, 4), np.uint8)
    arr[inside] = (230, 20, 20, 255)
    return arr


def gray16(width: int = 48, height: int = 40) -> np.ndarray:
    y, x = np.mgrid[:height, :width]
    return ((x * 977 + y * 1231) % 65536).astype(np.uint16)


def png16_rgb(arr16: np.ndarray) -> bytes:
    """A 16-bit RGB or RGBA PNG (OpenCV writes it; it wants BGR(A))."""
    ok, buf = cv2.imencode(".png", arr16[..., [2, 1, 0, 3][: arr16.shape[2]]])
    assert ok
    return buf.tobytes()


def with_png_chunk(data: bytes, kind: bytes, payload: bytes) -> bytes:
    """A PNG with one more chunk, right after IHDR."""
    ihdr_end = 8 + 8 + 13 + 4
    chunk = struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    return data[:ihdr_end] + chunk + data[ihdr_end:]


def exif_orientation(orientation: int) -> bytes:
    """A TIFF-form EXIF block holding only an orientation (a PNG ``eXIf`` payload)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes().removeprefix(b"Exif\x00\x00")


def palette_png(arr: np.ndarray) -> bytes:
    return encode(Image.fromarray(arr).convert("P", palette=Image.Palette.ADAPTIVE, colors=32), "PNG")


PALETTE = np.array([[10, 20, 30], [200, 0, 0], [0, 200, 0], [0, 0, 200]], np.uint8)


def palette_blocks(width: int = 40, height: int = 32) -> np.ndarray:
    """Palette indices 0-3 of ``PALETTE`` in 10x8 blocks."""
    y, x = np.mgrid[:height, :width]
    return ((x // 10 + y // 8) % len(PALETTE)).astype(np.uint8)


def palette_image(index: np.ndarray, palette: np.ndarray = PALETTE) -> Image.Image:
    im = Image.fromarray(index, "P")
    im.putpalette(palette.ravel().tolist())
    return im


def srgb_icc() -> bytes:
    profile: bytes = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return profile


def png_bomb(width: int = 40000, height: int = 40000) -> bytes:
    """A tiny file whose header declares a huge image: refused before decoding."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def open_image(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im
