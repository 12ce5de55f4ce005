"""Image quality metrics with the conventions of the super-resolution literature.

PSNR and SSIM take uint8-range arrays. ``y_channel`` is ITU-R BT.601 luma on the
16-235 scale (MATLAB ``rgb2ycbcr``); SSIM is Wang et al. 2004 with an 11x11 Gaussian
window (sigma 1.5) over valid positions, averaged over channels.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def y_channel(img: np.ndarray) -> np.ndarray:
    """HxWx3 RGB (0-255) -> HxW luma (16-235 scale); HxW gray passes through."""
    if img.ndim == 2:
        return img.astype(np.float64)
    rgb = img.astype(np.float64) / 255.0
    return 16.0 + rgb @ np.array([65.481, 128.553, 24.966])


def crop_border(img: np.ndarray, border: int) -> np.ndarray:
    return img[border:-border, border:-border] if border > 0 else img


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    assert a.shape == b.shape, f"shapes differ: {a.shape} vs {b.shape}"
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak**2 / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    ax = np.arange(size) - (size - 1) / 2
    g = np.exp(-(ax**2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    k = len(g)
    x = sliding_window_view(x, k, axis=0) @ g
    return sliding_window_view(x, k, axis=1) @ g


def _ssim_2d(a: np.ndarray, b: np.ndarray) -> float:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    g = _gaussian_window()
    mu_a, mu_b = _filter_valid(a, g), _filter_valid(b, g)
    var_a = _filter_valid(a * a, g) - mu_a**2
    var_b = _filter_valid(b * b, g) - mu_b**2
    cov = _filter_valid(a * b, g) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, f"shapes differ: {a.shape} vs {b.shape}"
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if a64.ndim == 2:
        return _ssim_2d(a64, b64)
    return float(np.mean([_ssim_2d(a64[..., c], b64[..., c]) for c in range(a64.shape[2])]))
