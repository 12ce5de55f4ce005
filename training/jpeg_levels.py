"""The level a denoiser is told for JPEG artefacts of a known quality.

Training labels a JPEG-compressed sample with the RMS error its compression left (0-255
scale; ``degradations.noisy``), so the level that matches artefacts of quality q is the
typical RMS error of JPEG at q on natural images. It is measured here, at export, on the
training images (Pillow's encoder, 4:2:0 as in training and in most files), and stored in
the card, where ``artifacts=jpeg`` with ``jpeg_quality`` reads it.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from training.data import list_images, load_rgb

QUALITIES = (10, 20, 30, 40, 50, 60, 70, 80, 90)  # the training range (NoiseConfig.jpeg_range)


def jpeg_rms(image: np.ndarray, quality: int) -> float:
    """RMS error (0-255) of one JPEG round trip of an HxWx3 uint8 image."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality)
    decoded = np.asarray(Image.open(buf).convert("RGB"), dtype=np.float64)
    return float(np.sqrt(np.mean((decoded - image.astype(np.float64)) ** 2)))


def measure_jpeg_levels(folders: list[Path], qualities: tuple[int, ...] = QUALITIES) -> dict[str, float]:
    """JPEG quality -> median RMS error over the images in ``folders``."""
    images = [load_rgb(p) for p in list_images(folders)]
    return {
        str(q): round(float(np.median([jpeg_rms(im, q) for im in images])), 3)
        for q in tqdm(qualities, desc="JPEG levels", leave=False)
    }
