"""A corpus of hostile uploads, generated from a seed, for the service to survive.

    python scripts/hostile_corpus.py OUT_DIR [--seed 0]

Why: the gateway probes every upload and a worker decodes it again, both with
Pillow (and OpenCV for 16-bit colour PNGs), so every oddity a format allows is a way
to reach a code path nobody thought about: a header that lies about the size, a
stream that stops half way, a mode with no conversion, metadata larger than the
pixels, bytes that are two formats at once. Each case says what the service may do
with it, as an outcome class:

- ``accept``: a valid image the service must process (the job succeeds);
- ``reject``: the service must refuse it, with a 4xx problem at submit or a job that
  fails as the input's fault (``error_kind`` = ``input``);
- ``either``: both are defensible; only a 5xx, an internal failure, a stuck job or a
  dead process is wrong.

Everything is built from numpy arrays with Pillow, or by hand (``zlib``, ``struct``)
where Pillow will not write the oddity, so the same seed gives the same bytes. Most
files are a few hundred bytes; the whole corpus is about 12 MB.
"""

from __future__ import annotations

import argparse
import functools
import io
import struct
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageCms

Expect = Literal["accept", "reject", "either"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ORIENTATION = 0x0112
FIXED_DATE = (2026, 1, 1, 0, 0, 0)  # in archives and ICC headers, so the same seed gives the same bytes
TOO_LARGE = ("image-too-large", "output-too-large")
# PNG colour types
GRAY, RGB, PALETTE, GRAY_ALPHA, RGBA = 0, 2, 3, 4, 6
# TIFF field types
BYTE, ASCII, SHORT, LONG = 1, 2, 3, 4


@dataclass(frozen=True)
class CorpusCase:
    """One hostile upload and what the service may do with it."""

    name: str  # unique file name in the corpus folder
    data: bytes
    category: str
    expect: Expect
    note: str = ""  # what is odd about it
    content_type: str = "application/octet-stream"  # what the client claims
    upload_name: str | None = None  # the filename the client sends (default: name)
    scale: int = 2  # super-resolve scale to ask for (4 for files that must hit the output limit)
    output_format: str | None = None  # png, jpeg or webp to ask for (default: the service's choice)
    size: tuple[int, int] | None = None  # accept cases: the upright (width, height) of the picture
    codes: tuple[str, ...] = ()  # when refused, the problem codes that are right (empty: any 4xx)
    path: Path | None = None  # where build_corpus wrote it

    @property
    def filename(self) -> str:
        return self.name if self.upload_name is None else self.upload_name


# -- pictures ------------------------------------------------------------------------


def photo(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A photo-like RGB uint8 picture: gradients, a bright square and noise."""
    y, x = np.mgrid[:height, :width].astype(np.float32)
    img = np.stack(
        [
            0.5 + 0.4 * np.sin(x / max(width, 1) * 5.0),
            0.2 + 0.6 * y / max(height, 1),
            0.5 + 0.3 * np.cos((x - y) / 5.0),
        ],
        axis=2,
    )
    img[height // 4 : height // 2, width // 4 : width // 2] = (0.95, 0.9, 0.1)
    img += rng.normal(0.0, 0.03, img.shape)
    return np.asarray(np.clip(img * 255.0, 0, 255).round(), np.uint8)


def with_alpha(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    alpha = np.tile(np.linspace(0, 255, w).round().astype(np.uint8), (h, 1))
    return np.concatenate([rgb, alpha[..., None]], axis=2)


def to16(arr8: np.ndarray) -> np.ndarray:
    return arr8.astype(np.uint16) * 257


def encode(im: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **options)
    return buf.getvalue()


# -- PNG, by hand ----------------------------------------------------------------------


def png_chunk(kind: bytes, payload: bytes, crc: int | None = None) -> bytes:
    checksum = zlib.crc32(kind + payload) if crc is None else crc
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", checksum & 0xFFFFFFFF)


_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _scanlines(px: np.ndarray, bit_depth: int) -> bytes:
    """Rows with filter type 0; samples packed at ``bit_depth``."""
    h = px.shape[0]
    if bit_depth == 16:
        rows = np.ascontiguousarray(px, ">u2").view(np.uint8).reshape(h, -1)
    elif bit_depth == 8:
        rows = np.ascontiguousarray(px, np.uint8).reshape(h, -1)
    else:  # 1, 2 or 4 bits: one channel, several samples per byte, high bits first
        per = 8 // bit_depth
        w = px.shape[1]
        padded = np.zeros((h, -(-w // per) * per), np.uint8)
        padded[:, :w] = px
        groups = padded.reshape(h, -1, per).astype(np.uint16)
        shifts = np.array([8 - bit_depth * (k + 1) for k in range(per)], np.uint16)
        rows = (groups << shifts).sum(axis=2).astype(np.uint8)
    return np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()


def png(
    px: np.ndarray,
    color_type: int,
    bit_depth: int = 8,
    *,
    interlace: bool = False,
    before_idat: Sequence[bytes] = (),
    after_idat: Sequence[bytes] = (),
    idat: bytes | None = None,
    declared: tuple[int, int] | None = None,
) -> bytes:
    """A PNG of ``px`` ((H, W) or (H, W, C)) with any bit depth, colour type, Adam7
    interlacing and extra chunks; ``declared`` overrides the IHDR size, ``idat`` the data."""
    height, width = px.shape[:2]
    if idat is None:
        if interlace:
            raw = b"".join(
                _scanlines(px[y0::dy, x0::dx], bit_depth) for x0, y0, dx, dy in _ADAM7 if px[y0::dy, x0::dx].size
            )
        else:
            raw = _scanlines(px, bit_depth)
        idat = zlib.compress(raw, 9)
    w, h = declared or (width, height)
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, int(interlace))
    return (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", ihdr)
        + b"".join(before_idat)
        + png_chunk(b"IDAT", idat)
        + b"".join(after_idat)
        + png_chunk(b"IEND", b"")
    )


def zero_png(width: int, height: int, color_type: int = RGBA, bit_depth: int = 16) -> bytes:
    """An all-zeros PNG, compressed row by row: 4096² 16-bit RGBA is 128 MiB of pixels
    in about 130 KB (a decompression bomb that stays within the pixel limit)."""
    channels = {GRAY: 1, RGB: 3, PALETTE: 1, GRAY_ALPHA: 2, RGBA: 4}[color_type]
    row = bytes(1 + -(-width * channels * bit_depth // 8))
    compressor = zlib.compressobj(6)
    parts = [compressor.compress(row) for _ in range(height)]
    parts.append(compressor.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", b"".join(parts)) + png_chunk(b"IEND", b"")


def png_chunks(data: bytes) -> list[tuple[int, bytes]]:
    """(offset, type) of each chunk."""
    out, pos = [], 8
    while pos + 8 <= len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        out.append((pos, data[pos + 4 : pos + 8]))
        pos += 12 + length
    return out


def png_with_bad_crc(data: bytes, kind: bytes) -> bytes:
    """Every chunk of ``kind`` with its CRC inverted."""
    out = bytearray(data)
    for pos, chunk in png_chunks(data):
        if chunk == kind:
            length = struct.unpack(">I", data[pos : pos + 4])[0]
            end = pos + 8 + length
            out[end : end + 4] = bytes(b ^ 0xFF for b in data[end : end + 4])
    return bytes(out)


def png_insert(data: bytes, chunks: Iterable[bytes]) -> bytes:
    """Extra chunks right after IHDR."""
    ihdr_end = 8 + 8 + 13 + 4
    return data[:ihdr_end] + b"".join(chunks) + data[ihdr_end:]


# -- TIFF, by hand ---------------------------------------------------------------------

_TYPE_SIZE = {BYTE: 1, ASCII: 1, SHORT: 2, LONG: 4, 7: 1, 11: 4, 12: 8}
_TYPE_CODE = {BYTE: "B", ASCII: "B", SHORT: "H", LONG: "I", 7: "B"}


def tiff(
    pixels: bytes,
    width: int,
    height: int,
    bits: Sequence[int],
    photometric: int,
    *,
    sample_format: int = 1,
    extra_samples: Sequence[int] = (),
    compression: int = 1,
    big_endian: bool = False,
    tags: Sequence[tuple[int, int, Sequence[int]]] = (),
    raw_entries: Sequence[tuple[int, int, int, bytes]] = (),
    strip_byte_count: int | None = None,
    next_ifd: Literal["none", "self"] = "none",
) -> bytes:
    """A one-strip TIFF holding ``pixels`` as given. ``tags`` adds (tag, type, values);
    ``raw_entries`` adds IFD entries verbatim (tag, type, count, 4-byte field), for
    counts and offsets that lie."""
    e = ">" if big_endian else "<"
    spp = len(bits)
    fields: dict[int, tuple[int, list[int]]] = {
        256: (LONG, [width]),
        257: (LONG, [height]),
        258: (SHORT, list(bits)),
        259: (SHORT, [compression]),
        262: (SHORT, [photometric]),
        273: (LONG, [8]),  # the strip follows the header
        277: (SHORT, [spp]),
        278: (LONG, [height]),
        279: (LONG, [len(pixels) if strip_byte_count is None else strip_byte_count]),
        284: (SHORT, [1]),
        339: (SHORT, [sample_format] * spp),
    }
    if extra_samples:
        fields[338] = (SHORT, list(extra_samples))
    for tag, kind, values in tags:
        fields[tag] = (kind, list(values))
    data_end = 8 + len(pixels) + (len(pixels) & 1)
    entries: list[tuple[int, int, int, list[int] | bytes]] = sorted(
        [(tag, kind, len(values), values) for tag, (kind, values) in fields.items()]
        + [(tag, kind, count, raw) for tag, kind, count, raw in raw_entries],
        key=lambda entry: entry[0],
    )
    ifd_offset = data_end
    overflow_offset = ifd_offset + 2 + 12 * len(entries) + 4
    ifd = [struct.pack(e + "H", len(entries))]
    overflow: list[bytes] = []
    for tag, kind, count, values in entries:
        if isinstance(values, bytes):
            field = values
        else:
            packed = struct.pack(e + _TYPE_CODE[kind] * count, *values)
            if len(packed) <= 4:
                field = packed.ljust(4, b"\0")
            else:
                field = struct.pack(e + "I", overflow_offset + len(b"".join(overflow)))
                overflow.append(packed + b"\0" * (len(packed) & 1))
        ifd.append(struct.pack(e + "HHI", tag, kind, count) + field)
    ifd.append(struct.pack(e + "I", ifd_offset if next_ifd == "self" else 0))
    header = (b"MM\0*" if big_endian else b"II*\0") + struct.pack(e + "I", ifd_offset)
    return header + pixels + b"\0" * (len(pixels) & 1) + b"".join(ifd) + b"".join(overflow)


# -- other formats, patched ------------------------------------------------------------


def jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def jpeg_insert(data: bytes, segments: Iterable[bytes]) -> bytes:
    """Extra segments right after SOI."""
    return data[:2] + b"".join(segments) + data[2:]


_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def jpeg_sof(data: bytes) -> int:
    """Offset of the first start-of-frame marker."""
    pos = 2
    while data[pos] == 0xFF:
        if data[pos + 1] in _SOF_MARKERS:
            return pos
        pos += 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
    raise ValueError("no SOF marker")


def jpeg_declaring(data: bytes, width: int, height: int) -> bytes:
    sof = jpeg_sof(data)
    return data[: sof + 5] + struct.pack(">HH", height, width) + data[sof + 9 :]


def gif_descriptor(data: bytes) -> int:
    """Offset of the first image descriptor (0x2C)."""
    flags = data[10]
    pos = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    while data[pos] == 0x21:  # extensions: label, then sub-blocks up to a zero length
        pos += 2
        while data[pos]:
            pos += data[pos] + 1
        pos += 1
    if data[pos] != 0x2C:
        raise ValueError("no image descriptor")
    return pos


def gif_patched(data: bytes, screen: tuple[int, int] | None = None, frame: tuple[int, int] | None = None) -> bytes:
    out = bytearray(data)
    if screen:
        out[6:10] = struct.pack("<HH", *screen)
    if frame:
        pos = gif_descriptor(data)
        out[pos + 5 : pos + 9] = struct.pack("<HH", *frame)
    return bytes(out)


def riff(chunks: Iterable[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(kind + struct.pack("<I", len(p)) + p + b"\0" * (len(p) & 1) for kind, p in chunks)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def webp_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 12
    while pos + 8 <= len(data):
        kind, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        out.append((kind, data[pos + 8 : pos + 8 + size]))
        pos += 8 + size + (size & 1)
    return out


def vp8l_declaring(vp8l: bytes, width: int, height: int) -> bytes:
    """A VP8L bitstream whose header declares another size (14 bits each, minus one)."""
    bits = struct.unpack("<I", vp8l[1:5])[0]
    bits = (bits & ~0x0FFFFFFF) | (width - 1) | ((height - 1) << 14)
    return vp8l[:1] + struct.pack("<I", bits) + vp8l[5:]


def exif_block(entries: dict[int, int]) -> bytes:
    """An EXIF block (``Exif\\0\\0`` + TIFF) as Pillow writes it."""
    exif = Image.Exif()
    for tag, value in entries.items():
        exif[tag] = value
    return bytes(exif.tobytes())


def raw_ifd(entries: Sequence[tuple[int, int, int, bytes]], next_ifd: int = 0) -> bytes:
    """A little-endian TIFF header and one IFD of verbatim entries (an EXIF payload)."""
    body = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHI", t, k, c) + v for t, k, c, v in entries)
    return b"II*\0" + struct.pack("<I", 8) + body + struct.pack("<I", next_ifd)


def undated(icc: bytes) -> bytes:
    """An ICC profile with a fixed creation date and no profile ID (LittleCMS stamps the time)."""
    header = icc[:24] + struct.pack(">6H", *FIXED_DATE) + icc[36:84] + bytes(16)
    return header + icc[100:]


def fake_icc(color_space: bytes, tags: int = 0) -> bytes:
    """An ICC header (128 bytes) and an empty tag table: well-formed on its face."""
    size = 128 + 4 + 12 * tags
    header = struct.pack(">I", size) + b"none" + bytes([4, 0x30, 0, 0]) + b"prtr" + color_space + b"Lab "
    header += bytes(12) + b"acsp" + bytes(128 - 40)
    return header + struct.pack(">I", tags) + bytes(12 * tags)


# -- the categories --------------------------------------------------------------------


class _Builder:
    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.cases: list[CorpusCase] = []
        self.base = photo(self.rng, 64, 48)
        self.small = photo(self.rng, 40, 24)

    def add(self, category: str, name: str, data: bytes, expect: Expect, note: str, **kw: object) -> None:
        self.cases.append(CorpusCase(name, data, category, expect, note, **kw))  # type: ignore[arg-type]

    def accept(self, category: str, name: str, data: bytes, note: str, size: tuple[int, int], **kw: object) -> None:
        self.add(category, name, data, "accept", note, size=size, **kw)

    def garbage(self, n: int) -> bytes:
        return self.rng.integers(0, 256, n, dtype=np.uint8).tobytes()

    # Valid files of each format, the raw material for cuts and flips.
    def samples(self) -> dict[str, bytes]:
        im = Image.fromarray(self.base)
        return {
            "png": encode(im, "PNG"),
            "jpg": encode(im, "JPEG", quality=90),
            "webp": encode(im, "WEBP", quality=80),
            "gif": encode(im.convert("P", palette=Image.Palette.ADAPTIVE, colors=64), "GIF"),
            "bmp": encode(im, "BMP"),
            "tif": encode(im, "TIFF"),
        }

    def truncated(self) -> None:
        extra = {
            "progressive.jpg": encode(Image.fromarray(self.base), "JPEG", progressive=True),
            "interlaced.png": png(self.base, RGB, interlace=True),
        }
        for ext, data in {**self.samples(), **extra}.items():
            n = len(data)
            cuts = {"6b": 6, "16b": 16, "40b": 40, "25pc": n // 4, "50pc": n // 2, "75pc": 3 * n // 4}
            cuts.update({"95pc": n * 95 // 100, "minus1": n - 1})
            for label, cut in cuts.items():
                # The last byte is a trailer (IEND's CRC, EOI, the GIF ';'): either answer is right.
                expect: Expect = "either" if label == "minus1" else "reject"
                self.add("truncated", f"truncated-{label}.{ext}", data[:cut], expect, f"{n} bytes cut to {cut}")

    def bombs(self) -> None:
        tiny = zlib.compress(b"\0" * 64)
        self.add(
            "bomb",
            "bomb-ihdr-100000x100000.png",
            png(np.zeros((1, 1, 3), np.uint8), RGB, idat=tiny, declared=(100000, 100000)),
            "reject",
            "IHDR declares 10^10 pixels; 80 bytes of data",
            codes=TOO_LARGE,
        )
        self.add(
            "bomb",
            "bomb-ihdr-2147483647-square.png",
            png(np.zeros((1, 1, 4), np.uint8), RGBA, 16, idat=tiny, declared=(2**31 - 1, 2**31 - 1)),
            "reject",
            "the largest size PNG allows, 16-bit RGBA",
        )
        self.add(
            "bomb",
            "bomb-ihdr-0x0.png",
            png(np.zeros((1, 1, 3), np.uint8), RGB, idat=tiny, declared=(0, 0)),
            "reject",
            "IHDR declares zero pixels",
        )
        self.add(
            "bomb",
            "bomb-zlib-4096-rgba16.png",
            zero_png(4096, 4096, RGBA, 16),
            "reject",
            "4096² 16-bit RGBA zeros, x4: the flood file of issue 11 (128 MiB of pixels)",
            scale=4,
            codes=("output-too-large",),
        )
        self.add(
            "bomb",
            "bomb-zlib-4096-rgb8.png",
            zero_png(4096, 4096, RGB, 8),
            "reject",
            "4096² RGB zeros, x4",
            scale=4,
            codes=("output-too-large",),
        )
        self.add(
            "bomb",
            "bomb-zlib-4096-gray1.png",
            zero_png(4096, 4096, GRAY, 1),
            "reject",
            "4096² 1-bit gray zeros, x4",
            scale=4,
            codes=("output-too-large",),
        )
        self.add(
            "bomb",
            "bomb-zlib-8192-gray8.png",
            zero_png(8192, 8192, GRAY, 8),
            "reject",
            "8192² gray zeros: over the input limit, valid data",
            codes=("image-too-large",),
        )
        self.add(
            "bomb",
            "bomb-zlib-4097x4096.png",
            zero_png(4097, 4096, GRAY, 8),
            "reject",
            "one column over the input limit",
            codes=("image-too-large",),
        )
        extra = zlib.compressobj(9)
        idat = extra.compress(b"\0" * (1 + 8 * 3) * 8) + b"".join(extra.compress(bytes(1 << 20)) for _ in range(64))
        idat += extra.flush()
        self.add(
            "bomb",
            "bomb-idat-64mib-for-8x8.png",
            png(np.zeros((8, 8, 3), np.uint8), RGB, idat=idat),
            "either",
            "an 8x8 image whose IDAT inflates to 64 MiB",
        )
        gif = encode(Image.new("P", (1, 1)), "GIF")
        self.add(
            "bomb",
            "bomb-gif-screen-65535.gif",
            gif_patched(gif, screen=(65535, 65535)),
            "reject",
            "logical screen 65535x65535, one 1x1 frame",
            codes=TOO_LARGE,
        )
        self.add(
            "bomb",
            "bomb-gif-frame-65535.gif",
            gif_patched(gif, frame=(65535, 65535)),
            "reject",
            "1x1 screen, a frame descriptor of 65535x65535",
        )
        lzw = Image.new("P", (4096, 4096))
        self.add(
            "bomb",
            "bomb-gif-lzw-4096.gif",
            encode(lzw, "GIF"),
            "reject",
            "4096² of one colour, x4",
            scale=4,
            codes=("output-too-large",),
        )
        self.add(
            "bomb",
            "bomb-tiff-100000x100000.tif",
            tiff(b"\0" * 16, 100000, 100000, [8], 1),
            "reject",
            "a 10^10-pixel gray TIFF with a 16-byte strip",
            codes=TOO_LARGE,
        )
        self.add(
            "bomb",
            "bomb-tiff-4294967295-wide.tif",
            tiff(b"\0" * 16, 2**32 - 1, 1, [8, 8, 8], 2),
            "reject",
            "ImageWidth 2^32-1",
        )
        deflated = zlib.compress(bytes(4096 * 4096), 9)
        self.add(
            "bomb",
            "bomb-tiff-deflate-4096.tif",
            tiff(deflated, 4096, 4096, [8], 1, compression=8),
            "reject",
            "4096² gray deflate strip of zeros, x4",
            scale=4,
            codes=("output-too-large",),
        )
        bmp = encode(Image.new("RGB", (1, 1)), "BMP")
        self.add(
            "bomb",
            "bomb-bmp-100000x100000.bmp",
            bmp[:18] + struct.pack("<ii", 100000, 100000) + bmp[26:],
            "reject",
            "BITMAPINFOHEADER of 10^10 pixels, 4 bytes of pixels",
            codes=TOO_LARGE,
        )
        self.add(
            "bomb",
            "bomb-bmp-topdown-100000.bmp",
            bmp[:18] + struct.pack("<ii", 100000, -100000) + bmp[26:],
            "reject",
            "negative (top-down) height of 100000",
        )
        jpg = encode(Image.fromarray(self.small), "JPEG")
        self.add(
            "bomb",
            "bomb-jpeg-sof-65500.jpg",
            jpeg_declaring(jpg, 65500, 65500),
            "reject",
            "SOF declares 65500x65500",
            codes=TOO_LARGE,
        )
        vp8l = dict(webp_chunks(encode(Image.new("RGB", (1, 1)), "WEBP", lossless=True)))[b"VP8L"]
        self.add(
            "bomb",
            "bomb-webp-vp8l-16384.webp",
            riff([(b"VP8L", vp8l_declaring(vp8l, 16384, 16384))]),
            "reject",
            "VP8L header of 16384x16384, a 1x1 bitstream",
        )
        canvas = bytes([0, 0, 0, 0]) + (16383).to_bytes(3, "little") * 2
        self.add(
            "bomb",
            "bomb-webp-vp8x-canvas-16384.webp",
            riff([(b"VP8X", canvas), (b"VP8L", vp8l)]),
            "reject",
            "VP8X canvas of 16384x16384 around a 1x1 image",
        )

    def huge_headers(self) -> None:
        base = encode(Image.fromarray(self.small), "PNG")
        size = (40, 24)
        text = (b"A" * 1023 + b"\n") * 2048
        self.accept(
            "huge-header",
            "header-png-text-2mib.png",
            png_insert(base, [png_chunk(b"tEXt", b"c\0" + text)]),
            "one 2 MiB tEXt chunk",
            size,
        )
        many = [png_chunk(b"tEXt", b"k%d\0" % i + b"v" * 64) for i in range(5000)]
        self.accept("huge-header", "header-png-5000-text-chunks.png", png_insert(base, many), "5000 tEXt chunks", size)
        private = [png_chunk(b"prVt", bytes(4)) for _ in range(20000)]
        self.accept(
            "huge-header",
            "header-png-20000-private-chunks.png",
            png_insert(base, private),
            "20000 unknown chunks",
            size,
        )
        bomb = zlib.compress(bytes(64 << 20), 9)
        for kind, payload, note in [
            (b"zTXt", b"c\0\0" + bomb, "zTXt inflating to 64 MiB"),
            (b"iTXt", b"c\0\1\0\0\0" + bomb, "compressed iTXt inflating to 64 MiB"),
            (b"iCCP", b"icc\0\0" + bomb, "iCCP inflating to 64 MiB"),
        ]:
            self.add(
                "huge-header",
                f"header-png-{kind.decode().lower()}-bomb.png",
                png_insert(base, [png_chunk(kind, payload)]),
                "either",
                note,
            )
        garbage_icc = zlib.compress(self.garbage(200_000))
        self.add(
            "huge-header",
            "header-png-iccp-garbage.png",
            png_insert(base, [png_chunk(b"iCCP", b"icc\0\0" + garbage_icc)]),
            "either",
            "iCCP holding 200 KB of random bytes",
        )
        self.add(
            "huge-header",
            "header-png-exif-1mib-garbage.png",
            png_insert(base, [png_chunk(b"eXIf", b"II*\0" + self.garbage(1 << 20))]),
            "either",
            "1 MiB eXIf of random bytes after a TIFF signature",
        )
        loop = raw_ifd([(ORIENTATION, SHORT, 1, struct.pack("<HH", 6, 0))], next_ifd=8)
        self.add(
            "huge-header",
            "header-png-exif-ifd-loop.png",
            png_insert(base, [png_chunk(b"eXIf", loop)]),
            "either",
            "an EXIF IFD whose next IFD is itself",
        )
        lying = raw_ifd([(ORIENTATION, SHORT, 1 << 30, struct.pack("<I", 8)), (0x010E, ASCII, 1 << 30, bytes(4))])
        self.add(
            "huge-header",
            "header-png-exif-count-2pow30.png",
            png_insert(base, [png_chunk(b"eXIf", lying)]),
            "either",
            "EXIF entries declaring 2^30 values",
        )
        self.add(
            "huge-header",
            "header-png-chunk-length-2pow31.png",
            png_insert(base, [struct.pack(">I", 2**31 - 1) + b"tEXt" + b"abc"]),
            "reject",
            "a chunk declaring 2 GiB, then the file ends early",
        )
        self.add(
            "huge-header",
            "header-png-plte-1000.png",
            png_insert(base, [png_chunk(b"PLTE", bytes(3000))]),
            "either",
            "a 1000-entry PLTE in an RGB image",
        )
        self.add(
            "huge-header",
            "header-png-two-ihdr.png",
            png_insert(base, [png_chunk(b"IHDR", struct.pack(">IIBBBBB", 9000, 9000, 8, 2, 0, 0, 0))]),
            "either",
            "a second IHDR declaring 9000x9000",
        )
        ancillary = [png_chunk(b"gAMA", bytes(1)), png_chunk(b"pHYs", bytes(2)), png_chunk(b"sRGB", bytes(40))]
        self.add(
            "huge-header",
            "header-png-bad-ancillary-lengths.png",
            png_insert(base, ancillary),
            "either",
            "gAMA, pHYs and sRGB of the wrong lengths",
        )

        jpg = encode(Image.fromarray(self.small), "JPEG", quality=90)
        app1 = [jpeg_segment(0xE1, b"http://ns.adobe.com/xap/1.0/\0" + b"x" * 65000) for _ in range(16)]
        self.accept(
            "huge-header", "header-jpeg-16-app1-64k.jpg", jpeg_insert(jpg, app1), "16 APP1 (XMP) segments", size
        )
        com = [jpeg_segment(0xFE, b"<script>alert(1)</script>" + b" " * 65000) for _ in range(16)]
        self.accept("huge-header", "header-jpeg-16-com-64k.jpg", jpeg_insert(jpg, com), "16 COM segments", size)
        self.add(
            "huge-header",
            "header-jpeg-icc-1mib-garbage.jpg",
            encode(Image.fromarray(self.small), "JPEG", icc_profile=self.garbage(1 << 20)),
            "either",
            "a 1 MiB random ICC profile in 17 APP2 segments",
        )
        self.add(
            "huge-header",
            "header-jpeg-exif-garbage.jpg",
            jpeg_insert(jpg, [jpeg_segment(0xE1, b"Exif\0\0" + self.garbage(60000))]),
            "either",
            "an APP1 Exif of random bytes",
        )
        count_lies = b"Exif\0\0II*\0" + struct.pack("<IH", 8, 65535) + self.garbage(1200)
        self.add(
            "huge-header",
            "header-jpeg-exif-65535-entries.jpg",
            jpeg_insert(jpg, [jpeg_segment(0xE1, count_lies)]),
            "either",
            "an EXIF IFD claiming 65535 entries, holding 100",
        )
        self.add(
            "huge-header",
            "header-jpeg-exif-not-tiff.jpg",
            jpeg_insert(jpg, [jpeg_segment(0xE1, b"Exif\0\0XX*\0\0\0\0\x08")]),
            "either",
            "an EXIF block with a bad byte-order mark",
        )
        self.add(
            "huge-header",
            "header-jpeg-segment-length-short.jpg",
            jpeg_insert(jpg, [b"\xff\xe1\x00\x01"]),
            "either",
            "a segment whose length is 1",
        )

        gif = encode(Image.fromarray(self.small).convert("P", palette=Image.Palette.ADAPTIVE, colors=32), "GIF")
        comment = b"\x21\xfe" + (b"\xff" + b"c" * 255) * 4000 + b"\0"
        apps = (b"\x21\xff\x0bXMP DataXMP" + b"\x10" + b"x" * 16 + b"\0") * 5000
        pos = gif_descriptor(gif)
        self.accept(
            "huge-header",
            "header-gif-comment-1mib.gif",
            gif[:pos] + comment + gif[pos:],
            "a 1 MiB comment extension",
            size,
        )
        self.accept(
            "huge-header",
            "header-gif-5000-app-extensions.gif",
            gif[:pos] + apps + gif[pos:],
            "5000 application extensions",
            size,
        )

        webp = dict(webp_chunks(encode(Image.fromarray(self.small), "WEBP", lossless=True)))[b"VP8L"]
        flags = bytes([0x08 | 0x04 | 0x20, 0, 0, 0]) + (39).to_bytes(3, "little") + (23).to_bytes(3, "little")
        chunks = [(b"VP8X", flags), (b"ICCP", self.garbage(1 << 19)), (b"VP8L", webp)]
        chunks += [(b"EXIF", b"II*\0" + self.garbage(1 << 19)), (b"XMP ", b"<x>" * 100000)]
        self.add(
            "huge-header",
            "header-webp-big-icc-exif-xmp.webp",
            riff(chunks),
            "either",
            "VP8X with 512 KiB ICCP, EXIF and XMP chunks of random bytes",
        )

        tif = np.ascontiguousarray(self.small).tobytes()
        many_tags = [(40000 + i, SHORT, [i]) for i in range(3000)]
        self.accept(
            "huge-header",
            "header-tiff-3000-tags.tif",
            tiff(tif, 40, 24, [8, 8, 8], 2, tags=many_tags),
            "3000 private tags",
            size,
        )
        self.add(
            "huge-header",
            "header-tiff-tag-count-2pow30.tif",
            tiff(tif, 40, 24, [8, 8, 8], 2, raw_entries=[(270, ASCII, 1 << 30, struct.pack("<I", 8))]),
            "either",
            "ImageDescription declaring 1 GiB",
        )
        self.add(
            "huge-header",
            "header-tiff-ifd-loop.tif",
            tiff(tif, 40, 24, [8, 8, 8], 2, next_ifd="self"),
            "either",
            "an IFD whose next IFD is itself",
        )
        self.add(
            "huge-header",
            "header-tiff-strip-past-eof.tif",
            tiff(tif, 40, 24, [8, 8, 8], 2, strip_byte_count=1 << 30),
            "either",
            "StripByteCounts of 1 GiB in a 3 KB file",
        )

        bmp = encode(Image.fromarray(self.small), "BMP")
        self.add(
            "huge-header",
            "header-bmp-info-size-4gib.bmp",
            bmp[:14] + struct.pack("<I", 0xFFFFFFFF) + bmp[18:],
            "reject",
            "DIB header size 0xFFFFFFFF",
        )
        pal = encode(Image.fromarray(self.small).convert("P"), "BMP")
        self.add(
            "huge-header",
            "header-bmp-2pow31-colours.bmp",
            pal[:46] + struct.pack("<I", 2**31) + pal[50:],
            "reject",
            "an 8-bit BMP declaring 2^31 palette entries",
        )

    def polyglots(self) -> None:
        base_png = encode(Image.fromarray(self.small), "PNG")
        base_jpg = encode(Image.fromarray(self.small), "JPEG")
        size = (40, 24)
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as z:
            for name, content in (("evil.sh", b"#!/bin/sh\necho pwned\n"), ("a.png", base_png)):
                z.writestr(zipfile.ZipInfo(name, date_time=FIXED_DATE), content)
        zipped = archive.getvalue()
        html = b"<html><body><script>alert(document.domain)</script></body></html>\n"
        self.accept("polyglot", "polyglot-png-then-zip.png", base_png + zipped, "a PNG with a ZIP appended", size)
        self.accept(
            "polyglot",
            "polyglot-jpeg-then-html.jpg",
            base_jpg + html,
            "HTML after EOI",
            size,
            content_type="image/jpeg",
        )
        self.accept(
            "polyglot",
            "polyglot-jpeg-html-in-comment.jpg",
            jpeg_insert(base_jpg, [jpeg_segment(0xFE, html)]),
            "HTML in a COM segment",
            size,
        )
        self.accept(
            "polyglot",
            "polyglot-png-html-in-text.png",
            png_insert(base_png, [png_chunk(b"tEXt", b"Comment\0" + html)]),
            "HTML in tEXt",
            size,
        )
        php = exif_block({0x010E: "<?php system($_GET['c']); ?>"})  # type: ignore[dict-item]
        self.accept(
            "polyglot",
            "polyglot-jpeg-php-in-exif.jpg",
            encode(Image.fromarray(self.small), "JPEG", exif=php),
            "PHP in an EXIF description",
            size,
        )
        # GIF89a/* ... */: a GIF that is also JavaScript; the width is "/*" (10799 px).
        gif = bytearray(encode(Image.new("P", (10799, 1)), "GIF"))
        gif[6:8] = b"/*"
        self.accept(
            "polyglot",
            "polyglot-gif-javascript.gif",
            bytes(gif) + b"*/=1;alert(1);//",
            "GIF89a/* ... */ JS",
            (10799, 1),
            content_type="image/gif",
        )
        self.add(
            "polyglot",
            "polyglot-zip-with-png-inside.png",
            zipped,
            "reject",
            "a ZIP named .png",
            content_type="image/png",
        )
        pdf = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Count 0/Kids[]>>endobj\n"
        pdf += b"trailer<</Root 1 0 R>>\n%%EOF\n"
        svg = (
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="100000" height="100000">'
            b'<script>alert(1)</script><rect width="100%" height="100%" fill="red"/></svg>'
        )
        texts = {
            "pdf": pdf,
            "svg": svg,
            "html": b"<!DOCTYPE html>" + html,
            "text": b"just some text, not an image at all\n" * 20,
            "json": b'{"image": "data:image/png;base64,iVBORw0KGgo="}',
            "shell": b"#!/bin/sh\nrm -rf / --no-preserve-root\n",
            "elf": b"\x7fELF\x02\x01\x01" + bytes(57),
            "utf16": "not an image".encode("utf-16"),
            "xml-entity-bomb": b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
            + b"".join(b'<!ENTITY %c "%s">' % (98 + i, b"&%c;" % (97 + i) * 10) for i in range(9))
            + b"]><svg>&j;</svg>",
            "png-signature-then-html": PNG_SIGNATURE + html,
            "jpeg-soi-then-html": b"\xff\xd8" + html,
            "gif-magic-then-js": b"GIF89a=1;alert(1);" + bytes(20),
            "bmp-magic-then-text": b"BM" + b"hello world" * 10,
            "tiff-magic-then-text": b"II*\0" + b"hello world" * 10,
            "riff-webp-then-text": b"RIFF\x20\0\0\0WEBP" + b"hello world" * 3,
        }
        for label, data in texts.items():
            self.add(
                "polyglot", f"polyglot-{label}.png", data, "reject", f"{label} named .png", content_type="image/png"
            )

    def other_formats(self) -> None:
        """Formats Pillow reads but the service does not accept: refused (415) before any decoding."""
        im = Image.fromarray(self.small)
        for fmt, ext, src in [
            ("PPM", "ppm", im),
            ("TGA", "tga", im),
            ("ICO", "ico", im),
            ("PCX", "pcx", im),
            ("QOI", "qoi", im),
            ("JPEG2000", "jp2", im),
            ("DDS", "dds", im),
            ("SGI", "sgi", im),
            ("EPS", "eps", im),
            ("AVIF", "avif", im),
            ("XBM", "xbm", im.convert("1")),
            ("MSP", "msp", im.convert("1")),
            ("SPIDER", "spider", im.convert("F")),
        ]:
            self.add(
                "other-format",
                f"format-{ext}.png",
                encode(src, fmt),
                "reject",
                f"{fmt} named .png",
                content_type="image/png",
                codes=("unsupported-format", "not-an-image"),
            )
        self.add(
            "other-format",
            "format-mpo.jpg",
            encode(im, "MPO", save_all=True, append_images=[im]),
            "either",
            "a two-picture MPO (a camera's JPEG)",
            content_type="image/jpeg",
        )

    def cmyk(self) -> None:
        im = Image.fromarray(self.small).convert("CMYK")
        size = (40, 24)
        cmyk_icc = fake_icc(b"CMYK")
        srgb = undated(bytes(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()))
        self.accept("cmyk", "cmyk.jpg", encode(im, "JPEG"), "CMYK JPEG (Adobe, inverted)", size)
        self.accept("cmyk", "cmyk-progressive.jpg", encode(im, "JPEG", progressive=True), "progressive CMYK", size)
        self.accept(
            "cmyk",
            "cmyk-icc-cmyk.jpg",
            encode(im, "JPEG", icc_profile=cmyk_icc),
            "CMYK JPEG with a CMYK ICC profile",
            size,
        )
        self.accept(
            "cmyk",
            "cmyk-icc-srgb.jpg",
            encode(im, "JPEG", icc_profile=srgb),
            "CMYK JPEG with an sRGB profile (mismatched)",
            size,
        )
        self.accept(
            "cmyk",
            "cmyk-exif-6.jpg",
            encode(im, "JPEG", exif=exif_block({ORIENTATION: 6})),
            "CMYK JPEG rotated by EXIF",
            (24, 40),
        )
        self.accept("cmyk", "cmyk.tif", encode(im, "TIFF"), "CMYK TIFF", size)
        self.accept("cmyk", "cmyk-icc.tif", encode(im, "TIFF", icc_profile=cmyk_icc), "CMYK TIFF with ICC", size)
        self.accept("cmyk", "cmyk-lzw.tif", encode(im, "TIFF", compression="tiff_lzw"), "CMYK TIFF, LZW", size)
        cmyk16 = to16(np.asarray(im)).astype("<u2").tobytes()
        self.add("cmyk", "cmyk-16bit.tif", tiff(cmyk16, 40, 24, [16] * 4, 5), "either", "16-bit CMYK TIFF")
        self.add(
            "cmyk",
            "cmyk-as-rgb-photometric.jpg",
            encode(im, "JPEG")[:2] + encode(im, "JPEG")[2:].replace(b"Adobe", b"Adobx", 1),
            "either",
            "CMYK JPEG without its Adobe marker",
        )

    def palette(self) -> None:
        idx = (np.add.outer(np.arange(24) // 4, np.arange(40) // 5) % 4).astype(np.uint8)
        plte = bytes([10, 20, 30, 200, 0, 0, 0, 200, 0, 0, 0, 200])
        size = (40, 24)
        p = [png_chunk(b"PLTE", plte)]
        for bits in (1, 2, 4, 8):
            px = idx % 2 if bits == 1 else idx
            self.accept(
                "palette", f"palette-{bits}bit.png", png(px, PALETTE, bits, before_idat=p), f"{bits}-bit palette", size
            )
        trns = png_chunk(b"tRNS", bytes([0, 128, 255, 64]))
        self.accept(
            "palette",
            "palette-trns.png",
            png(idx, PALETTE, before_idat=[*p, trns]),
            "palette with alpha per entry",
            size,
        )
        self.accept(
            "palette",
            "palette-trns-short.png",
            png(idx, PALETTE, before_idat=[*p, png_chunk(b"tRNS", b"\0")]),
            "tRNS for entry 0 only",
            size,
        )
        self.add(
            "palette",
            "palette-trns-too-long.png",
            png(idx, PALETTE, before_idat=[*p, png_chunk(b"tRNS", bytes(300))]),
            "either",
            "300 tRNS entries for 4 colours",
        )
        self.add(
            "palette",
            "palette-index-out-of-range.png",
            png(idx * 60, PALETTE, before_idat=p),
            "either",
            "indices up to 180 into a 4-entry PLTE",
        )
        self.add("palette", "palette-without-plte.png", png(idx, PALETTE), "either", "colour type 3 without PLTE")
        pim = Image.fromarray(self.small).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
        self.accept("palette", "palette.gif", encode(pim, "GIF"), "GIF, no transparency", size)
        self.accept(
            "palette", "palette-transparency.gif", encode(pim, "GIF", transparency=3), "GIF, index 3 clear", size
        )
        self.accept("palette", "palette-8bit.bmp", encode(pim, "BMP"), "8-bit BMP", size)
        self.accept(
            "palette", "palette-1bit.bmp", encode(Image.fromarray(self.small).convert("1"), "BMP"), "1-bit BMP", size
        )
        self.accept("palette", "palette.tif", encode(pim, "TIFF"), "palette TIFF", size)
        self.accept(
            "palette", "palette-webp-from-p.webp", encode(pim, "WEBP", lossless=True), "WebP of a P image", size
        )
        self.accept("palette", "palette-trns.webp", encode(pim.convert("RGBA"), "WEBP"), "lossy WebP with alpha", size)

    def animated(self) -> None:
        frames = [Image.fromarray(photo(self.rng, 32, 24)) for _ in range(3)]
        self.add(
            "animated",
            "animated-3-frames.gif",
            encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50),
            "reject",
            "3 frames",
            codes=("unsupported-format",),
        )
        self.accept(
            "animated",
            "animated-1-frame.gif",
            encode(frames[0], "GIF", save_all=True, append_images=[]),
            "an animation of one frame",
            (32, 24),
        )
        self.add(
            "animated",
            "animated-3-frames.webp",
            encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=50, lossless=True),
            "reject",
            "animated WebP",
            codes=("unsupported-format",),
        )
        self.add(
            "animated",
            "animated-3-frames.png",
            encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=50),
            "reject",
            "APNG, 3 frames",
            codes=("unsupported-format",),
        )
        self.add(
            "animated",
            "animated-2-pages.tif",
            encode(frames[0], "TIFF", save_all=True, append_images=frames[1:2]),
            "reject",
            "a two-page TIFF",
            codes=("unsupported-format",),
        )
        apng = encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=50)
        pos = apng.index(b"acTL") - 4
        for frames_declared, label in ((0, "0"), (2**31 - 1, "2pow31")):
            payload = struct.pack(">II", frames_declared, 0)
            self.add(
                "animated",
                f"animated-apng-actl-{label}-frames.png",
                apng[:pos] + png_chunk(b"acTL", payload) + apng[pos + 20 :],
                "either",
                f"acTL declaring {frames_declared} frames",
            )
        many = [Image.new("RGB", (2, 2), (i % 256, i // 256 * 60, 0)) for i in range(1000)]
        self.add(
            "animated",
            "animated-1000-frames.gif",
            encode(many[0], "GIF", save_all=True, append_images=many[1:]),
            "reject",
            "1000 frames of 2x2",
        )
        big_frame = Image.new("P", (64, 64), 1)
        self.add(
            "animated",
            "animated-frame-outside-screen.gif",
            gif_patched(encode(frames[0].convert("P"), "GIF", save_all=True, append_images=[big_frame]), screen=(8, 8)),
            "either",
            "frames larger than an 8x8 screen",
        )

    def exif(self) -> None:
        im = Image.fromarray(self.small)  # 40x24: a rotation by 90 degrees changes the shape
        for o in range(1, 9):
            upright = (24, 40) if o >= 5 else (40, 24)
            block = exif_block({ORIENTATION: o})
            self.accept(
                "exif",
                f"exif-{o}.jpg",
                encode(im, "JPEG", exif=block),
                f"orientation {o}",
                upright,
                content_type="image/jpeg",
            )
            self.accept("exif", f"exif-{o}.png", encode(im, "PNG", exif=block), f"eXIf orientation {o}", upright)
            tiff_exif = block.removeprefix(b"Exif\0\0")
            self.accept(
                "exif",
                f"exif-{o}-16bit.png",
                png(to16(self.small), RGB, 16, before_idat=[png_chunk(b"eXIf", tiff_exif)]),
                f"16-bit RGB (OpenCV path), orientation {o}",
                upright,
            )
            if o in (3, 6, 8):
                self.accept("exif", f"exif-{o}.webp", encode(im, "WEBP", exif=block), f"orientation {o}", upright)
                self.accept("exif", f"exif-{o}.tif", encode(im, "TIFF", exif=block), f"orientation {o}", upright)
            if o in (5, 7):
                self.accept(
                    "exif",
                    f"exif-{o}-gray16.png",
                    png(to16(self.small[..., 0]), GRAY, 16, before_idat=[png_chunk(b"eXIf", tiff_exif)]),
                    f"16-bit gray, orientation {o}",
                    upright,
                )
        trailing = png(self.small, RGB, after_idat=[png_chunk(b"eXIf", exif_block({ORIENTATION: 6})[6:])])
        self.accept("exif", "exif-6-after-idat.png", trailing, "eXIf after the pixels", (24, 40))
        for value in (0, 9, 65535):
            self.accept(
                "exif",
                f"exif-invalid-{value}.jpg",
                encode(im, "JPEG", exif=exif_block({ORIENTATION: value})),
                f"orientation {value}",
                (40, 24),
            )
        odd = {
            "ascii": (ORIENTATION, ASCII, 2, b"6\0\0\0"),
            "long": (ORIENTATION, LONG, 1, struct.pack("<I", 6)),
            "count-2": (ORIENTATION, SHORT, 2, struct.pack("<HH", 6, 8)),
            "rational": (ORIENTATION, 5, 1, struct.pack("<I", 26)),
        }
        for label, entry in odd.items():
            block = b"Exif\0\0" + raw_ifd([entry]) + struct.pack("<II", 6, 1)
            self.add(
                "exif",
                f"exif-orientation-{label}.jpg",
                encode(im, "JPEG", exif=block),
                "either",
                f"orientation stored as {label}",
            )

    def deep(self) -> None:
        """16 bits per channel."""
        s16 = to16(self.small)
        size = (40, 24)
        alpha16 = to16(with_alpha(self.small))
        self.accept("16-bit", "16bit-gray.png", png(s16[..., 0], GRAY, 16), "I;16 PNG", size)
        self.accept("16-bit", "16bit-rgb.png", png(s16, RGB, 16), "16-bit RGB", size)
        self.accept("16-bit", "16bit-rgba.png", png(alpha16, RGBA, 16), "16-bit RGBA", size)
        self.accept("16-bit", "16bit-gray-alpha.png", png(alpha16[..., [0, 3]], GRAY_ALPHA, 16), "16-bit LA", size)
        self.accept(
            "16-bit",
            "16bit-rgb-trns.png",
            png(s16, RGB, 16, before_idat=[png_chunk(b"tRNS", struct.pack(">HHH", *s16[0, 0]))]),
            "16-bit RGB with a tRNS colour key",
            size,
        )
        self.accept(
            "16-bit",
            "16bit-gray-trns.png",
            png(s16[..., 0], GRAY, 16, before_idat=[png_chunk(b"tRNS", struct.pack(">H", s16[0, 0, 0]))]),
            "16-bit gray with a tRNS key",
            size,
        )
        self.accept(
            "16-bit",
            "16bit-rgb-icc.png",
            png(s16, RGB, 16, before_idat=[png_chunk(b"iCCP", b"p\0\0" + zlib.compress(fake_icc(b"RGB ")))]),
            "16-bit RGB with an ICC profile",
            size,
        )
        self.accept("16-bit", "16bit-gray.tif", encode(Image.fromarray(s16[..., 0]), "TIFF"), "I;16 TIFF", size)
        self.accept(
            "16-bit",
            "16bit-gray-be.tif",
            tiff(s16[..., 0].astype(">u2").tobytes(), 40, 24, [16], 1, big_endian=True),
            "big-endian I;16B TIFF",
            size,
        )
        self.add(
            "16-bit",
            "16bit-rgb.tif",
            tiff(s16.astype("<u2").tobytes(), 40, 24, [16] * 3, 2),
            "either",
            "16-bit RGB TIFF",
        )
        self.add(
            "16-bit",
            "16bit-rgba.tif",
            tiff(alpha16.astype("<u2").tobytes(), 40, 24, [16] * 4, 2, extra_samples=[2]),
            "either",
            "16-bit RGBA TIFF",
        )
        self.add(
            "16-bit",
            "16bit-signed.tif",
            tiff((s16[..., 0].astype(np.int32) - 32768).astype("<i2").tobytes(), 40, 24, [16], 1, sample_format=2),
            "either",
            "signed 16-bit gray TIFF",
        )
        self.add(
            "16-bit",
            "16bit-float-rgb.tif",
            tiff((self.small / 255).astype("<f4").tobytes(), 40, 24, [32] * 3, 2, sample_format=3),
            "either",
            "32-bit float RGB TIFF",
        )
        self.add(
            "16-bit",
            "16bit-gray.bmp-named.png",
            png(s16[..., 0], GRAY, 16),
            "accept",
            "a 16-bit PNG named .png sent as image/bmp",
            size=size,
            content_type="image/bmp",
        )

    def modes(self) -> None:
        g = self.small[..., 0]
        lab = Image.fromarray(self.small).convert("LAB")  # with a Lab ICC profile, dated now
        size = (40, 24)
        la = np.stack([g, with_alpha(self.small)[..., 3]], axis=2)
        self.accept("mode", "mode-la.png", png(la, GRAY_ALPHA), "LA", size)
        self.accept("mode", "mode-l.png", png(g, GRAY), "L", size)
        self.accept("mode", "mode-1.png", png(g > 128, GRAY, 1), "1-bit", size)
        self.accept("mode", "mode-2bit-gray.png", png(g >> 6, GRAY, 2), "2-bit gray", size)
        self.accept("mode", "mode-4bit-gray.png", png(g >> 4, GRAY, 4), "4-bit gray", size)
        self.accept("mode", "mode-1.tif", encode(Image.fromarray(g).convert("1"), "TIFF"), "bilevel TIFF", size)
        self.accept(
            "mode",
            "mode-1-g4.tif",
            encode(Image.fromarray(g).convert("1"), "TIFF", compression="group4"),
            "CCITT G4 TIFF",
            size,
        )
        fl = (g / 255.0).astype(np.float32)
        self.accept("mode", "mode-f.tif", encode(Image.fromarray(fl), "TIFF"), "F (float32, 0..1)", size)
        wild = fl.copy()
        wild[0, :8] = [np.nan, np.inf, -np.inf, -1e30, 1e30, -0.0, 1e-45, 3.4e38]
        self.add(
            "mode",
            "mode-f-nan-inf.tif",
            encode(Image.fromarray(wild), "TIFF"),
            "either",
            "F with NaN, infinities and huge values",
        )
        i32 = (g.astype(np.int32) * 1000 - 100000).astype(np.int32)
        self.add(
            "mode",
            "mode-i32-negative.tif",
            encode(Image.fromarray(i32), "TIFF"),
            "either",
            "I (int32) with negative values",
        )
        self.accept(
            "mode", "mode-lab.tif", encode(lab, "TIFF", icc_profile=undated(lab.info["icc_profile"])), "LAB TIFF", size
        )
        self.accept(
            "mode", "mode-ycbcr.jpg", encode(Image.fromarray(self.small).convert("YCbCr"), "JPEG"), "YCbCr JPEG", size
        )
        self.accept("mode", "mode-gray.jpg", encode(Image.fromarray(g), "JPEG"), "gray JPEG", size)
        self.accept("mode", "mode-rgba.bmp", encode(Image.fromarray(with_alpha(self.small)), "BMP"), "32-bit BMP", size)
        self.accept(
            "mode",
            "mode-la.webp",
            encode(Image.fromarray(la).convert("RGBA"), "WEBP", lossless=True),
            "WebP with alpha",
            size,
        )
        rgb_extra = np.concatenate([self.small, self.small[..., :2]], axis=2)
        self.add(
            "mode",
            "mode-rgb-2-extra-samples.tif",
            tiff(rgb_extra.tobytes(), 40, 24, [8] * 5, 2, extra_samples=[0, 0]),
            "either",
            "RGB plus two unspecified samples",
        )
        self.add(
            "mode",
            "mode-2-samples-rgb.tif",
            tiff(self.small[..., :2].tobytes(), 40, 24, [8, 8], 2),
            "either",
            "photometric RGB with 2 samples",
        )
        self.add(
            "mode", "mode-12bit.tif", tiff(bytes(40 * 24 * 3 // 2), 40, 24, [12], 1), "either", "12 bits per sample"
        )
        self.add("mode", "mode-bits-0.tif", tiff(bytes(16), 40, 24, [0], 1), "either", "0 bits per sample")

    def extreme_aspect(self) -> None:
        for w, h, fmt in [
            (1, 1, "PNG"),
            (1, 1, "JPEG"),
            (1, 1, "GIF"),
            (1, 1, "BMP"),
            (1, 1, "TIFF"),
            (1, 1, "WEBP"),
            (2, 1, "PNG"),
            (1, 2, "PNG"),
            (64, 1, "PNG"),
            (1, 64, "PNG"),
            (4096, 1, "PNG"),
            (1, 4096, "JPEG"),
            (65535, 1, "PNG"),
            (1, 65535, "PNG"),
            (65500, 1, "JPEG"),
            (16383, 1, "WEBP"),
            (1, 16383, "WEBP"),
            (65535, 1, "GIF"),
            (3, 5000, "PNG"),
        ]:
            im = Image.fromarray(photo(self.rng, w, h))
            if fmt == "GIF":
                im = im.convert("P")
            ext = {"JPEG": "jpg", "TIFF": "tif"}.get(fmt, fmt.lower())
            options = {"lossless": True} if fmt == "WEBP" else {}
            self.accept("aspect", f"aspect-{w}x{h}.{ext}", encode(im, fmt, **options), f"{w}x{h}", (w, h))

    def output_formats(self) -> None:
        """Inputs whose output the asked-for format cannot hold as it is: alpha, 16 bits,
        CMYK, or a side longer than WebP (16383) or JPEG (65535) allow."""
        size = (40, 24)
        rgba = with_alpha(self.small)
        deep = to16(rgba)
        for name, data, fmt, expect, shape in [
            ("rgba-to-jpeg.png", png(rgba, RGBA), "jpeg", "accept", size),
            ("la-to-jpeg.png", png(rgba[..., [0, 3]], GRAY_ALPHA), "jpeg", "accept", size),
            ("rgba16-to-jpeg.png", png(deep, RGBA, 16), "jpeg", "accept", size),
            ("rgba16-to-webp.png", png(deep, RGBA, 16), "webp", "accept", size),
            ("gray16-to-webp.png", png(deep[..., 0], GRAY, 16), "webp", "accept", size),
            ("cmyk-to-webp.jpg", encode(Image.fromarray(self.small).convert("CMYK"), "JPEG"), "webp", "accept", size),
            (
                "palette-trns-to-jpeg.gif",
                encode(Image.fromarray(self.small).convert("P"), "GIF", transparency=0),
                "jpeg",
                "accept",
                size,
            ),
            ("rgba-8192x1-default.png", png(with_alpha(photo(self.rng, 8192, 1)), RGBA), None, "either", None),
            ("rgb-8192x1-to-webp.png", png(photo(self.rng, 8192, 1), RGB), "webp", "either", None),
            ("rgb-1x9000-to-webp.png", png(photo(self.rng, 1, 9000), RGB), "webp", "either", None),
            ("rgb-32768x1-to-jpeg.png", png(photo(self.rng, 32768, 1), RGB), "jpeg", "either", None),
        ]:
            note = f"asks for {fmt or 'the default format'}"
            self.add("output-format", f"output-{name}", data, expect, note, output_format=fmt, size=shape)  # type: ignore[arg-type]

    def mislabelled(self) -> None:
        """The content and what the client says about it disagree."""
        im = Image.fromarray(self.small)
        size = (40, 24)
        s = self.samples()
        png_data, jpg = encode(im, "PNG"), encode(im, "JPEG")
        for name, data, ctype, upload in [
            ("mislabel-png-as-jpeg.jpg", png_data, "image/jpeg", None),
            ("mislabel-jpeg-as-png.png", jpg, "image/png", None),
            ("mislabel-gif-as-webp.webp", s["gif"], "image/webp", None),
            ("mislabel-webp-as-text.txt", s["webp"], "text/plain", None),
            ("mislabel-tiff-as-pdf.pdf", s["tif"], "application/pdf", None),
            ("mislabel-bmp-no-extension", s["bmp"], "application/octet-stream", None),
            ("mislabel-png-as-svg.svg", png_data, "image/svg+xml", None),
            ("mislabel-path-traversal.png", png_data, "image/png", "../../../../etc/passwd"),
            ("mislabel-unicode-name.png", png_data, "image/png", "画像 ünïcødé \u202eexe.png"),
            ("mislabel-long-name.png", png_data, "image/png", "a" * 1000 + ".png"),
            ("mislabel-html-name.png", png_data, "text/html", "<img src=x onerror=alert(1)>.png"),
        ]:
            expect_size = (64, 48) if data in (s["gif"], s["webp"], s["tif"], s["bmp"]) else size
            self.accept(
                "mislabelled", name, data, f"sent as {ctype}", expect_size, content_type=ctype, upload_name=upload
            )

    def empty(self) -> None:
        for name, data in [
            ("empty.png", b""),
            ("one-byte.png", b"\x89"),
            ("png-signature-only.png", PNG_SIGNATURE),
            ("png-ihdr-only.png", PNG_SIGNATURE + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))),
            (
                "png-no-idat.png",
                PNG_SIGNATURE
                + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
                + png_chunk(b"IEND", b""),
            ),
            ("jpeg-soi-eoi.jpg", b"\xff\xd8\xff\xd9"),
            ("gif-header-only.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00"),
            ("bmp-header-only.bmp", encode(Image.new("RGB", (8, 8)), "BMP")[:54]),
            ("tiff-header-only.tif", b"II*\0\x08\0\0\0"),
            ("webp-riff-only.webp", b"RIFF\x04\0\0\0WEBP"),
            ("zeros-1kib.png", bytes(1024)),
        ]:
            self.add("empty", name, data, "reject", f"{len(data)} bytes")

    def bad_crc(self) -> None:
        base = png(self.small, RGB, before_idat=[png_chunk(b"tEXt", b"k\0v")])
        pal = png(self.small[..., 0] >> 6, PALETTE, 2, before_idat=[png_chunk(b"PLTE", bytes(range(12)))])
        deep = png(to16(self.small), RGB, 16)
        self.add("bad-crc", "crc-ihdr.png", png_with_bad_crc(base, b"IHDR"), "reject", "IHDR CRC wrong")
        for kind in (b"tEXt", b"IDAT", b"IEND"):
            self.add(
                "bad-crc",
                f"crc-{kind.decode().lower()}.png",
                png_with_bad_crc(base, kind),
                "either",
                f"{kind.decode()} CRC wrong",
            )
        self.add("bad-crc", "crc-plte.png", png_with_bad_crc(pal, b"PLTE"), "either", "PLTE CRC wrong")
        every = base
        for kind in (b"IHDR", b"tEXt", b"IDAT", b"IEND"):
            every = png_with_bad_crc(every, kind)
        self.add("bad-crc", "crc-every-chunk.png", every, "reject", "every CRC wrong")
        self.add(
            "bad-crc",
            "crc-idat-16bit.png",
            png_with_bad_crc(deep, b"IDAT"),
            "either",
            "16-bit RGB (decoded by OpenCV in the worker), IDAT CRC wrong",
        )
        self.add("bad-crc", "crc-ihdr-16bit.png", png_with_bad_crc(deep, b"IHDR"), "reject", "16-bit, IHDR CRC wrong")
        split = base.replace(b"IDAT", b"IDAt", 1)
        self.add("bad-crc", "crc-idat-renamed.png", split, "reject", "IDAT renamed (its CRC no longer matches)")

    def corrupt_streams(self) -> None:
        """Headers that are fine in front of pixel data that is not: each decoder's error path."""
        size = (40, 24)
        rgb = self.small.tobytes()
        n = len(rgb)
        for label, compression in (("lzw", 5), ("jpeg", 7), ("deflate", 8), ("packbits", 32773), ("unknown-99", 99)):
            self.add(
                "corrupt-stream",
                f"stream-tiff-{label}-garbage.tif",
                tiff(self.garbage(700), 40, 24, [8, 8, 8], 2, compression=compression),
                "either",
                f"TIFF compression {compression} over random bytes",
            )
        planes = b"".join(self.small[..., k].tobytes() for k in range(3))
        self.accept(
            "corrupt-stream",
            "stream-tiff-planar.tif",
            tiff(
                planes,
                40,
                24,
                [8, 8, 8],
                2,
                tags=[(273, LONG, [8, 8 + n // 3, 8 + 2 * n // 3]), (279, LONG, [n // 3] * 3), (284, SHORT, [2])],
            ),
            "separate colour planes",
            size,
        )
        rgbx = np.concatenate([self.small, np.full((24, 40, 1), 255, np.uint8)], axis=2).tobytes()
        self.add(
            "corrupt-stream",
            "stream-tiff-rgbx.tif",
            tiff(rgbx, 40, 24, [8] * 4, 2),
            "either",
            "4 samples, photometric RGB, no ExtraSamples",
        )
        self.add(
            "corrupt-stream",
            "stream-tiff-ycbcr-raw.tif",
            tiff(rgb, 40, 24, [8, 8, 8], 6, tags=[(530, SHORT, [1, 1])]),
            "either",
            "raw YCbCr samples",
        )
        self.add(
            "corrupt-stream",
            "stream-tiff-photometric-mask.tif",
            tiff(rgb[: n // 3], 40, 24, [8], 4),
            "either",
            "photometric 4 (transparency mask)",
        )
        self.add(
            "corrupt-stream",
            "stream-tiff-logl.tif",
            tiff(rgb[: n // 3 * 2], 40, 24, [16], 32844, compression=34676),
            "either",
            "photometric LogL, SGILog compression",
        )
        self.add(
            "corrupt-stream",
            "stream-tiff-strip-in-ifd.tif",
            tiff(rgb, 40, 24, [8, 8, 8], 2, tags=[(273, LONG, [0])]),
            "either",
            "strip offset 0 (the header)",
        )
        raw = bytearray(_scanlines(self.small, 8))
        raw[:: 40 * 3 + 1] = bytes([7]) * 24  # filter types 0-4 only
        self.add(
            "corrupt-stream",
            "stream-png-filter-7.png",
            png(self.small, RGB, idat=zlib.compress(bytes(raw))),
            "either",
            "filter type 7 on every row",
        )
        raw16 = bytearray(_scanlines(to16(self.small), 16))
        raw16[:: 40 * 6 + 1] = bytes([9]) * 24
        self.add(
            "corrupt-stream",
            "stream-png16-filter-9.png",
            png(to16(self.small), RGB, 16, idat=zlib.compress(bytes(raw16))),
            "either",
            "16-bit RGB (OpenCV path), filter type 9 on every row",
        )
        dictionary = zlib.compressobj(9, zdict=b"\0" * 64)
        idat = dictionary.compress(_scanlines(self.small, 8)) + dictionary.flush()
        self.add(
            "corrupt-stream",
            "stream-png-zlib-preset-dict.png",
            png(self.small, RGB, idat=idat),
            "reject",
            "a zlib stream that needs a preset dictionary",
        )
        whole = zlib.compress(_scanlines(self.small, 8))
        split = [png_chunk(b"IDAT", whole[i : i + 3]) for i in range(0, len(whole), 3)]
        empty = [png_chunk(b"IDAT", b"")] * 50
        ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 40, 24, 8, RGB, 0, 0, 0))
        self.accept(
            "corrupt-stream",
            "stream-png-idat-3-byte-chunks.png",
            PNG_SIGNATURE + ihdr + b"".join(split) + png_chunk(b"IEND", b""),
            "IDAT in 3-byte pieces",
            size,
        )
        self.accept(
            "corrupt-stream",
            "stream-png-empty-idats.png",
            PNG_SIGNATURE + ihdr + b"".join(empty) + png_chunk(b"IDAT", whole) + png_chunk(b"IEND", b""),
            "50 empty IDAT chunks first",
            size,
        )
        jpg = encode(Image.fromarray(self.small), "JPEG")
        sos = jpg.index(b"\xff\xda")
        scan = sos + 2 + struct.unpack(">H", jpg[sos + 2 : sos + 4])[0]
        self.add(
            "corrupt-stream",
            "stream-jpeg-random-scan.jpg",
            jpg[:scan] + self.garbage(len(jpg) - scan - 2).replace(b"\xff", b"\x00") + b"\xff\xd9",
            "either",
            "random entropy-coded data",
        )
        no_dht, pos = bytearray(), 0
        while pos < sos:
            length = 2 if pos == 0 else 2 + struct.unpack(">H", jpg[pos + 2 : pos + 4])[0]
            if jpg[pos + 1] != 0xC4:
                no_dht += jpg[pos : pos + length]
            pos += length
        self.add(
            "corrupt-stream",
            "stream-jpeg-no-huffman-tables.jpg",
            bytes(no_dht) + jpg[sos:],
            "either",
            "every DHT segment removed",
        )
        sof = jpeg_sof(jpg)
        self.add(
            "corrupt-stream",
            "stream-jpeg-sof-4-components.jpg",
            jpg[: sof + 9] + b"\x04" + jpg[sof + 10 :],
            "either",
            "SOF claims 4 components, lists 3",
        )
        gif = bytearray(encode(Image.fromarray(self.small).convert("P"), "GIF"))
        gif[gif_descriptor(bytes(gif)) + 10 + (3 * 256 if gif[gif_descriptor(bytes(gif)) + 9] & 0x80 else 0)] = 12
        self.add("corrupt-stream", "stream-gif-lzw-code-size-12.gif", bytes(gif), "either", "LZW minimum code size 12")
        bmp = encode(Image.fromarray(self.small).convert("P"), "BMP")
        offset = struct.unpack("<I", bmp[10:14])[0]
        rle = bmp[:30] + struct.pack("<I", 1) + bmp[34:offset] + bytes([0, 2, 255, 255] * 50 + [0, 1])
        self.add("corrupt-stream", "stream-bmp-rle8-delta-out.bmp", rle, "either", "RLE8 deltas past the image")
        webp = encode(Image.fromarray(self.small), "WEBP", quality=80)
        self.add(
            "corrupt-stream",
            "stream-webp-vp8-random.webp",
            webp[:30] + self.garbage(len(webp) - 30),
            "either",
            "a VP8 frame header, then random bytes",
        )

    def bitflips(self) -> None:
        for ext, data in self.samples().items():
            for k in range(3):
                out = bytearray(data)
                start = len(data) // 8  # past the header, into the pixel data
                for pos in self.rng.integers(start, len(data), 4 + 4 * k):
                    out[pos] ^= 1 << int(self.rng.integers(0, 8))
                self.add("bitflip", f"bitflip-{k}.{ext}", bytes(out), "either", f"{4 + 4 * k} bits flipped")

    def interlaced(self) -> None:
        im = Image.fromarray(self.small)
        size = (40, 24)
        self.accept("interlaced", "interlaced-rgb.png", png(self.small, RGB, interlace=True), "Adam7 RGB", size)
        self.accept(
            "interlaced", "interlaced-rgba.png", png(with_alpha(self.small), RGBA, interlace=True), "Adam7 RGBA", size
        )
        self.accept(
            "interlaced",
            "interlaced-gray-2bit.png",
            png(self.small[..., 0] >> 6, GRAY, 2, interlace=True),
            "Adam7 2-bit gray",
            size,
        )
        self.accept(
            "interlaced",
            "interlaced-rgb16.png",
            png(to16(self.small), RGB, 16, interlace=True),
            "Adam7 16-bit RGB (OpenCV path)",
            size,
        )
        self.accept(
            "interlaced",
            "interlaced-gray16.png",
            png(to16(self.small[..., 0]), GRAY, 16, interlace=True),
            "Adam7 16-bit gray",
            size,
        )
        for w, h in ((1, 1), (3, 3), (9, 1)):
            self.accept(
                "interlaced",
                f"interlaced-{w}x{h}.png",
                png(photo(self.rng, w, h), RGB, interlace=True),
                f"Adam7 {w}x{h}: most passes empty",
                (w, h),
            )
        self.accept("interlaced", "progressive.jpg", encode(im, "JPEG", progressive=True), "progressive", size)
        self.accept(
            "interlaced",
            "progressive-gray.jpg",
            encode(im.convert("L"), "JPEG", progressive=True),
            "progressive gray",
            size,
        )
        self.accept(
            "interlaced",
            "progressive-optimized-420.jpg",
            encode(im, "JPEG", progressive=True, optimize=True, subsampling=2),
            "progressive 4:2:0",
            size,
        )
        self.accept(
            "interlaced",
            "jpeg-restart-markers.jpg",
            encode(im, "JPEG", restart_marker_blocks=1),
            "a restart marker per block",
            size,
        )
        self.add(
            "interlaced",
            "jpeg-sof3-lossless-marker.jpg",
            (lambda d, p: d[: p + 1] + b"\xc3" + d[p + 2 :])(encode(im, "JPEG"), jpeg_sof(encode(im, "JPEG"))),
            "either",
            "a baseline JPEG relabelled lossless (SOF3)",
        )
        self.accept(
            "interlaced",
            "interlaced.gif",
            encode(im.convert("P", palette=Image.Palette.ADAPTIVE), "GIF", interlace=True),
            "interlaced GIF",
            size,
        )

    def formats(self) -> None:
        """Valid variants of the accepted formats, less common than the samples."""
        im = Image.fromarray(self.small)
        size = (40, 24)
        for compression in ("tiff_lzw", "packbits", "tiff_adobe_deflate", "jpeg"):
            self.accept(
                "format-variant",
                f"variant-{compression}.tif",
                encode(im, "TIFF", compression=compression),
                f"TIFF {compression}",
                size,
            )
        self.accept("format-variant", "variant-bigtiff.tif", encode(im, "TIFF", big_tiff=True), "BigTIFF", size)
        self.accept(
            "format-variant",
            "variant-big-endian.tif",
            tiff(self.small.tobytes(), 40, 24, [8, 8, 8], 2, big_endian=True),
            "big-endian TIFF",
            size,
        )
        self.accept(
            "format-variant",
            "variant-lossy-alpha.webp",
            encode(Image.fromarray(with_alpha(self.small)), "WEBP", quality=50),
            "lossy WebP with alpha",
            size,
        )
        self.accept(
            "format-variant", "variant-444.jpg", encode(im, "JPEG", subsampling=0, quality=100), "4:4:4 q100", size
        )
        self.accept("format-variant", "variant-q1.jpg", encode(im, "JPEG", quality=1), "quality 1", size)
        bmp24 = encode(im.convert("RGB"), "BMP")
        px565 = (
            (self.small[..., 0].astype(np.uint16) >> 3 << 11)
            | (self.small[..., 1].astype(np.uint16) >> 2 << 5)
            | (self.small[..., 2].astype(np.uint16) >> 3)
        )[::-1]
        header = struct.pack("<IiiHHIIiiII", 40, 40, 24, 1, 16, 3, px565.nbytes, 2835, 2835, 0, 0)
        masks = struct.pack("<III", 0xF800, 0x07E0, 0x001F)
        body = header + masks + px565.astype("<u2").tobytes()
        self.accept(
            "format-variant",
            "variant-565.bmp",
            b"BM" + struct.pack("<IHHI", 14 + len(body), 0, 0, 66) + body,
            "16-bit 5-6-5 BMP (bitfields)",
            size,
        )
        eight = encode(Image.fromarray(self.small).convert("P", palette=Image.Palette.ADAPTIVE, colors=8), "BMP")
        self.accept("format-variant", "variant-24bit.bmp", bmp24, "24-bit BMP", size)
        self.accept("format-variant", "variant-8colour.bmp", eight, "8-colour palette BMP", size)


def build_cases(seed: int = 0) -> list[CorpusCase]:
    """The whole corpus in memory, in a fixed order."""
    return list(_build_cases(seed))


@functools.cache  # a test collects the names, then writes the files: build once
def _build_cases(seed: int) -> tuple[CorpusCase, ...]:
    b = _Builder(seed)
    steps: list[Callable[[], None]] = [
        b.truncated,
        b.bombs,
        b.huge_headers,
        b.polyglots,
        b.other_formats,
        b.cmyk,
        b.palette,
        b.animated,
        b.exif,
        b.deep,
        b.modes,
        b.extreme_aspect,
        b.output_formats,
        b.mislabelled,
        b.empty,
        b.bad_crc,
        b.corrupt_streams,
        b.bitflips,
        b.interlaced,
        b.formats,
    ]
    for step in steps:
        step()
    names = Counter(c.name for c in b.cases)
    duplicates = [n for n, k in names.items() if k > 1]
    assert not duplicates, f"corpus file names must be unique: {duplicates}"
    return tuple(b.cases)


def build_corpus(out_dir: Path, seed: int = 0) -> list[CorpusCase]:
    """Write the corpus into ``out_dir`` (created); the cases carry their ``path``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cases = []
    for case in build_cases(seed):
        path = out_dir / case.name
        path.write_bytes(case.data)
        cases.append(replace(case, path=path))
    return cases


def summary(cases: Sequence[CorpusCase]) -> str:
    rows = [f"{'category':16s} {'files':>5s} {'accept':>6s} {'reject':>6s} {'either':>6s} {'bytes':>11s}"]
    for category in dict.fromkeys(c.category for c in cases):
        group = [c for c in cases if c.category == category]
        counts = Counter(c.expect for c in group)
        rows.append(
            f"{category:16s} {len(group):5d} {counts['accept']:6d} {counts['reject']:6d} {counts['either']:6d}"
            f" {sum(len(c.data) for c in group):11,d}"
        )
    counts = Counter(c.expect for c in cases)
    rows.append(
        f"{'total':16s} {len(cases):5d} {counts['accept']:6d} {counts['reject']:6d} {counts['either']:6d}"
        f" {sum(len(c.data) for c in cases):11,d}"
    )
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out_dir", type=Path, help="folder to write the files into (created)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    args = p.parse_args()
    cases = build_corpus(args.out_dir, args.seed)
    print(summary(cases))
    print(f"written to {args.out_dir}")


if __name__ == "__main__":
    main()
