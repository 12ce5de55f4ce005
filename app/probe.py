"""Is this upload an image we can process, and how big is it?

Two steps. ``probe`` reads the header only, so a decompression bomb, or an output
too large for the limits, is refused on declared sizes before a single pixel is
decoded. ``verify`` then decodes in full, so a damaged file is refused now (422)
rather than failing later in a worker; the gateway runs it within a budget of
decoded bytes (``app.budget``), so many large uploads at once cannot exhaust memory.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from app.errors import CorruptImage, ImageTooLarge, NotAnImage, UnsupportedFormat

# MPO: a camera JPEG with extra frames (a preview, a depth map); its first frame is the photo.
ACCEPTED_FORMATS = {
    "PNG": "png",
    "JPEG": "jpeg",
    "MPO": "jpeg",
    "WEBP": "webp",
    "BMP": "bmp",
    "TIFF": "tiff",
    "GIF": "gif",
}
# Leading bytes of the accepted formats: a file that starts like one but will not open is damaged (422),
# not something else (415).
SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")

# We enforce our own, lower limit from settings before decoding; Pillow's own check
# would otherwise fire first with a warning or a different error.
Image.MAX_IMAGE_PIXELS = None


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class ImageInfo:
    format: str  # png, jpeg, webp, ...
    width: int  # upright, after EXIF orientation
    height: int
    mode: str
    has_alpha: bool
    bits: int = 8  # per channel: 8 or 16

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def decoded_bytes(self) -> int:
        """About what the decoded pixels take in memory (an upper bound for 16-bit colour,
        which Pillow reduces to 8 bits)."""
        if self.has_alpha or self.mode in ("RGBA", "CMYK", "RGBX", "RGBa"):
            channels = 4
        elif self.mode in ("RGB", "YCbCr", "LAB", "HSV"):
            channels = 3
        else:
            channels = 2 if self.mode in ("LA", "La") else 1
        sample = 4 if self.mode in ("I", "F") else 2 if self.bits == 16 else 1
        return self.pixels * channels * sample


def _bits(data: bytes, im: Image.Image) -> int:
    if data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) > 24:
        return 16 if data[24] == 16 else 8
    return 16 if im.mode.startswith("I;16") else 8


def _looks_like_an_image(data: bytes) -> bool:
    return data.startswith(SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def _orientation(im: Image.Image, decoded: bool) -> int:
    # Pillow decodes a whole PNG to look for an eXIf chunk after the pixels: before the
    # decode, only the EXIF the header carried counts.
    if im.format == "PNG" and not decoded:
        raw = im.info.get("exif")
        if not isinstance(raw, bytes):
            return 1
        exif = Image.Exif()
        try:
            exif.load(raw)
        except Exception:
            return 1
        value = exif.get(0x0112, 1)
        return value if isinstance(value, int) else 1
    try:
        value = im.getexif().get(0x0112, 1)
    except Exception:  # a damaged EXIF block is ignored, as the worker ignores it
        return 1
    return value if isinstance(value, int) else 1


def probe(data: bytes, max_pixels: int) -> ImageInfo:
    """Header facts, refusing what is not an image or declares too many pixels; decodes nothing."""
    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        if _looks_like_an_image(data):
            raise CorruptImage("the image header is damaged: the file starts like an image but cannot be read") from exc
        raise NotAnImage(
            f"the upload is not an image in a supported format ({', '.join(ACCEPTED_FORMATS.values())})"
        ) from exc
    except Exception as exc:
        raise CorruptImage(f"the image header could not be read: {exc}") from exc
    if im.format not in ACCEPTED_FORMATS:
        raise UnsupportedFormat(
            f"{im.format} images are not supported; send one of {', '.join(ACCEPTED_FORMATS.values())}"
        )
    width, height = im.size
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"the image is {width}x{height} ({width * height:,} pixels); the limit is {max_pixels:,} pixels",
            width=width,
            height=height,
            max_pixels=max_pixels,
        )
    try:
        frames = getattr(im, "n_frames", 1)
    except Exception as exc:  # counting frames walks the file: a broken one fails here
        raise CorruptImage(f"the image is damaged: {exc}") from exc
    if frames > 1 and im.format != "MPO":
        raise UnsupportedFormat("animated images are not supported; send a single frame")
    return _info(data, im, decoded=False)


def _info(data: bytes, im: Image.Image, decoded: bool) -> ImageInfo:
    width, height = im.size
    if _orientation(im, decoded) in (5, 6, 7, 8):
        width, height = height, width
    has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    return ImageInfo(ACCEPTED_FORMATS[im.format or "PNG"], width, height, im.mode, has_alpha, _bits(data, im))


def verify(data: bytes) -> ImageInfo:
    """Decode in full (after ``probe`` accepted the header): 422 when the data is damaged.
    Returns the facts again, now with metadata found only after the pixels (a PNG's
    trailing eXIf chunk)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return _info(data, im, decoded=True)
    except Exception as exc:  # truncated data, bad CRCs, broken codec streams
        raise CorruptImage(f"the image is damaged and could not be decoded: {exc}") from exc
