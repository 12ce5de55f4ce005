from __future__ import annotations

import numpy as np

from worker.alpha import bleed


def test_transparent_pixels_take_nearby_visible_colour() -> None:
    h, w = 40, 50
    y, x = np.mgrid[:h, :w]
    alpha = (((y - 20) ** 2 + (x - 25) ** 2) < 100).astype(np.float32)
    rgb = np.zeros((h, w, 3), np.float32)
    rgb[alpha > 0] = (1.0, 0.2, 0.0)
    out = bleed(rgb, alpha)
    np.testing.assert_allclose(out, np.broadcast_to((1.0, 0.2, 0.0), out.shape), atol=1e-5)


def test_transparent_pixels_take_the_colour_of_the_region_near_them() -> None:
    rgb = np.zeros((16, 64, 3), np.float32)
    alpha = np.zeros((16, 64), np.float32)
    rgb[:, :8], alpha[:, :8] = (1.0, 0.0, 0.0), 1.0  # red on the left
    rgb[:, 56:], alpha[:, 56:] = (0.0, 0.0, 1.0), 1.0  # blue on the right
    out = bleed(rgb, alpha)
    np.testing.assert_allclose(out[:, 8:16], np.broadcast_to((1.0, 0.0, 0.0), (16, 8, 3)), atol=1e-5)
    np.testing.assert_allclose(out[:, 48:56], np.broadcast_to((0.0, 0.0, 1.0), (16, 8, 3)), atol=1e-5)


def test_visible_pixels_are_untouched_and_extreme_cases_pass_through() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.random((9, 31, 3), dtype=np.float32)
    alpha = (rng.random((9, 31)) > 0.5).astype(np.float32) * 0.7
    out = bleed(rgb, alpha)
    np.testing.assert_array_equal(out[alpha > 0], rgb[alpha > 0])
    assert np.isfinite(out).all()
    assert bleed(rgb, np.ones((9, 31), np.float32)) is rgb
    assert bleed(rgb, np.zeros((9, 31), np.float32)) is rgb


def test_thin_images_fill_completely() -> None:
    rgb = np.zeros((1, 200, 3), np.float32)
    alpha = np.zeros((1, 200), np.float32)
    rgb[0, 0], alpha[0, 0] = (0.0, 1.0, 0.0), 1.0
    out = bleed(rgb, alpha)
    np.testing.assert_allclose(out[0, :, 1], 1.0, atol=1e-5)
