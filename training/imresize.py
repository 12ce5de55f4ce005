"""MATLAB-compatible bicubic ``imresize`` in NumPy.

Published super-resolution tables make low-resolution inputs with MATLAB's
``imresize(img, 1/scale, 'bicubic')``: a cubic kernel (a = -0.5) widened by the scale
when shrinking (antialiasing), symmetric padding at the borders, rows then columns,
and rounding back to uint8. PIL's bicubic differs at the borders and in rounding, so
numbers computed with it are not comparable. Each axis is one dense matrix product.
"""

from __future__ import annotations

import numpy as np


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))


def resize_matrix(in_len: int, out_len: int, scale: float) -> np.ndarray:
    """(out_len, in_len) matrix whose rows hold each output sample's weights."""
    width = 4.0
    if scale < 1:  # antialias: stretch the kernel over 1/scale input pixels

        def kernel(x: np.ndarray) -> np.ndarray:
            return scale * _cubic(scale * x)

        width /= scale
    else:
        kernel = _cubic
    out_pos = np.arange(1, out_len + 1, dtype=np.float64)
    centre = out_pos / scale + 0.5 * (1 - 1 / scale)  # 1-based input coordinate
    left = np.floor(centre - width / 2)
    taps = int(np.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]
    weights = kernel(centre[:, None] - idx)
    weights /= weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    idx0 = mirror[np.mod(idx - 1, 2 * in_len).astype(np.int64)]  # symmetric padding
    matrix = np.zeros((out_len, in_len), dtype=np.float64)
    np.add.at(matrix, (np.repeat(np.arange(out_len), taps), idx0.ravel()), weights.ravel())
    return matrix


def imresize(img: np.ndarray, scale: float) -> np.ndarray:
    """Resize an HxW or HxWxC image by ``scale``; uint8 in gives rounded uint8 out,
    float in gives float64 out (no clipping), as MATLAB does."""
    h, w = img.shape[:2]
    out_h, out_w = int(np.ceil(h * scale)), int(np.ceil(w * scale))
    x = img.astype(np.float64)
    rows = resize_matrix(h, out_h, scale)
    cols = resize_matrix(w, out_w, scale)
    out = np.tensordot(rows, x, axes=(1, 0))  # (out_h, w, ...)
    out = np.moveaxis(np.tensordot(cols, out, axes=(1, 1)), 0, 1)  # (out_h, out_w, ...)
    if img.dtype == np.uint8:
        return np.clip(np.round(out), 0, 255).astype(np.uint8)
    return out


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop so both sides are multiples of ``scale`` (as HR images are before evaluation)."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]
