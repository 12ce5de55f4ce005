"""Is this upload an image we can process, and how big is it?

The header is read first, so a decompression bomb is refused on its declared size
before a single pixel is decoded; only then is the image decoded in full, so a
damaged file is refused now (422) rather than failing later in a worker.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from app.errors import CorruptImage, ImageTooLarge, NotAnImage, UnsupportedFormat

ACCEPTED_FORMATS = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp", "BMP": "bmp", "TIFF": "tiff", "GIF": "gif"}

# We enforce our own, lower limit from settings before decoding; Pillow's own check
# would otherwise fire first with a warning or a different error.
Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True)
class ImageInfo:
    format: str  # png, jpeg, webp, ...
    width: int  # upright, after EXIF orientation
    height: int
    mode: str
    has_alpha: bool

    @property
    def pixels(self) -> int:
        return self.width * self.height


def probe(data: bytes, max_pixels: int) -> ImageInfo:
    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
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
    if getattr(im, "n_frames", 1) > 1:
        raise UnsupportedFormat("animated images are not supported; send a single frame")
    try:
        im.load()
    except Exception as exc:  # truncated data, bad CRCs, broken codec streams
        raise CorruptImage(f"the image is damaged and could not be decoded: {exc}") from exc
    orientation = im.getexif().get(0x0112, 1)
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    return ImageInfo(ACCEPTED_FORMATS[im.format], width, height, im.mode, has_alpha)
