"""Uploads to float arrays and results back to files, as a photo tool would.

Kept from the input: EXIF orientation (applied, so the pixels are upright), the ICC
profile, grayscale, 16 bits per channel (PNG), and alpha. Palette and CMYK images
become RGB(A). Pillow reads 16-bit colour PNGs as 8-bit, so those (and 16-bit
output) go through OpenCV; the ICC profile is then carried in an ``iCCP`` chunk.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, replace

import cv2
import numpy as np
from PIL import Image, ImageCms, ImageOps

from imgenhance.jobs import JobError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "zip": "application/zip"}
_ORIENTATION = 0x0112


@dataclass(frozen=True)
class Picture:
    pixels: np.ndarray  # float32 (H, W, C) in [0, 1]; C = 1 (gray) or 3 (RGB)
    alpha: np.ndarray | None  # float32 (H, W) in [0, 1]
    bits: int  # 8 or 16 per channel
    icc_profile: bytes | None = None
    jpeg_quality: int | None = None  # a JPEG upload: the IJG quality its tables match best

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def gray(self) -> bool:
        return bool(self.pixels.shape[2] == 1)

    def with_pixels(self, pixels: np.ndarray, alpha: np.ndarray | None) -> Picture:
        return replace(self, pixels=pixels, alpha=alpha)


@dataclass(frozen=True)
class Encoded:
    """A result a pipeline encoded itself (an archive, an animation)."""

    data: bytes
    content_type: str
    width: int
    height: int


def _is_png16_colour(data: bytes) -> bool:
    # IHDR is always the first chunk: bit depth at byte 24, colour type at byte 25.
    return bool(data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR" and data[24] == 16 and data[25] in (2, 6))


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to an (H, W, ...) array."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.swapaxes(a, 0, 1)[:, ::-1],
        7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],
        8: lambda a: np.swapaxes(a, 0, 1)[::-1],
    }
    return np.ascontiguousarray(ops[orientation](arr)) if orientation in ops else arr


def _decode_png16(data: bytes, im: Image.Image) -> Picture:
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16:
        raise JobError("the 16-bit PNG could not be decoded")
    arr = _orient(arr, im.getexif().get(_ORIENTATION, 1))
    rgb = arr[..., 2::-1].astype(np.float32) / 65535.0  # OpenCV is BGR(A)
    alpha = arr[..., 3].astype(np.float32) / 65535.0 if arr.shape[2] == 4 else None
    return Picture(np.ascontiguousarray(rgb), alpha, 16, im.info.get("icc_profile"))


def decode(data: bytes) -> Picture:
    im: Image.Image
    try:
        im = Image.open(io.BytesIO(data))
        if _is_png16_colour(data):
            return _decode_png16(data, im)
        icc = im.info.get("icc_profile")
        tables = getattr(im, "quantization", None) if im.format in ("JPEG", "MPO") else None
        im = ImageOps.exif_transpose(im)
        im.load()
    except JobError:
        raise
    except Exception as exc:  # Pillow raises a zoo of types for damaged files
        raise JobError(f"the image could not be decoded: {exc}") from exc

    try:
        picture = _to_picture(im, icc)
    except Exception as exc:  # a palette with more entries than colours, a broken mode ...
        raise JobError(f"the image could not be converted to RGB: {exc}") from exc
    if tables and 0 in tables and len(tables[0]) == 64:
        picture = replace(picture, jpeg_quality=jpeg_quality(list(tables[0])))
    return picture


# The IJG (libjpeg) luminance table at quality 50, row-major, as Pillow reports tables.
_IJG_LUMA = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip


def _ijg_table(quality: int) -> np.ndarray:
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    table: np.ndarray = np.clip((np.array(_IJG_LUMA) * scale + 50) // 100, 1, 255)
    return table


def jpeg_quality(luma_table: list[int]) -> int:
    """The IJG quality (1-100) whose luminance table is nearest ``luma_table``: exact for
    libjpeg's encoders (Pillow, OpenCV, most cameras' software), an estimate for others."""
    table = np.asarray(luma_table, dtype=np.int64)
    return int(min(range(1, 101), key=lambda q: int(np.abs(_ijg_table(q) - table).sum())))


_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


def _to_picture(im: Image.Image, icc: bytes | None) -> Picture:
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(im).astype(np.float32)
        return Picture((np.clip(arr, 0, 65535) / 65535.0)[..., None], None, 16, icc)
    if mode == "F":  # float samples: 0..1 by convention, 0..255 when they go above 1
        arr = np.nan_to_num(np.asarray(im, dtype=np.float32))
        peak = 1.0 if float(arr.max(initial=0.0)) <= 1.0 else 255.0
        return Picture((np.clip(arr, 0, peak) / peak)[..., None], None, 8, icc)
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode == "PA":
        im = im.convert("RGBA")
    elif mode == "1":
        im = im.convert("L")
    elif mode in ("CMYK", "LAB") and icc:
        im, icc = _to_srgb(im, icc), None
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        # YCbCr, RGBX, La, RGBa, and CMYK/LAB without a profile. The profile, if any,
        # described the old colour space: it does not go with the RGB pixels.
        im = im.convert("RGBA" if mode in _ALPHA_MODES else "RGB")
        icc = icc if mode in ("YCbCr", "RGBX", "RGBa", "La") else None
    arr = np.asarray(im).astype(np.float32) / 255.0
    if im.mode == "L":
        return Picture(arr[..., None], None, 8, icc)
    if im.mode == "LA":
        return Picture(np.ascontiguousarray(arr[..., :1]), np.ascontiguousarray(arr[..., 1]), 8, icc)
    if im.mode == "RGBA":
        return Picture(np.ascontiguousarray(arr[..., :3]), np.ascontiguousarray(arr[..., 3]), 8, icc)
    return Picture(arr, None, 8, icc)


def _to_srgb(im: Image.Image, icc: bytes) -> Image.Image:
    """CMYK or Lab with an embedded profile, to sRGB through that profile (a colour-managed
    conversion, as a photo editor does); Pillow's plain formula if the profile is unusable."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(im, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError):
        converted = None
    return converted if isinstance(converted, Image.Image) else im.convert("RGB")


def _quantise(x: np.ndarray, bits: int) -> np.ndarray:
    peak = 65535.0 if bits == 16 else 255.0
    out: np.ndarray = np.round(np.clip(x, 0.0, 1.0) * peak).astype(np.uint16 if bits == 16 else np.uint8)
    return out


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _with_icc(png: bytes, icc: bytes | None) -> bytes:
    if not icc:
        return png
    ihdr_end = 8 + 8 + 13 + 4  # signature, IHDR header, IHDR payload, CRC
    chunk = _png_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(icc))
    return png[:ihdr_end] + chunk + png[ihdr_end:]


def _encode_png16(pic: Picture) -> bytes:
    rgb = _quantise(np.repeat(pic.pixels, 3, axis=2) if pic.gray else pic.pixels, 16)
    planes = [rgb[..., ::-1]]  # OpenCV wants BGR(A)
    if pic.alpha is not None:
        planes.append(_quantise(pic.alpha, 16)[..., None])
    ok, buf = cv2.imencode(".png", np.concatenate(planes, axis=2), [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise RuntimeError("OpenCV failed to encode a 16-bit PNG")
    return _with_icc(buf.tobytes(), pic.icc_profile)


def encode(pic: Picture, fmt: str, quality: int | None = None) -> tuple[bytes, str]:
    """Encode as png / jpeg / webp; returns (bytes, content type).

    PNG keeps 16 bits and alpha; JPEG has no alpha, so transparent areas are
    composited over white; WebP is lossless unless a quality is given.
    """
    if fmt == "png" and pic.bits == 16:
        if pic.gray and pic.alpha is None:
            im = Image.fromarray(_quantise(pic.pixels[..., 0], 16))
            buf = io.BytesIO()
            im.save(buf, "PNG", icc_profile=pic.icc_profile, compress_level=3)
            return buf.getvalue(), CONTENT_TYPES[fmt]
        return _encode_png16(pic), CONTENT_TYPES[fmt]

    pixels, alpha = pic.pixels, pic.alpha
    if fmt == "jpeg" and alpha is not None:
        pixels = pixels * alpha[..., None] + (1.0 - alpha[..., None])
        alpha = None
    plane = _quantise(pixels, 8)
    if plane.shape[2] == 1:
        plane = plane[..., 0]
    im = Image.fromarray(plane)
    if alpha is not None:
        im.putalpha(Image.fromarray(_quantise(alpha, 8)))
    options: dict[str, object] = {"icc_profile": pic.icc_profile} if pic.icc_profile else {}
    if fmt == "png":
        options["compress_level"] = 3  # level 6 doubles encode time for ~3% smaller files
    elif fmt == "jpeg":
        q = quality or 95
        options.update(quality=q, subsampling=0 if q >= 90 else 2, optimize=False)
    elif fmt == "webp":
        options.update(lossless=True, quality=80) if quality is None else options.update(quality=quality)
    else:
        raise ValueError(f"unsupported output format {fmt!r}")
    buf = io.BytesIO()
    try:
        im.save(buf, fmt.upper(), **options)
    except (OSError, ValueError) as exc:  # the format's own limits (webp 16383 px a side, jpeg 65500)
        raise JobError(f"the result cannot be written as {fmt}: {exc}; ask for png") from exc
    return buf.getvalue(), CONTENT_TYPES[fmt]
