from __future__ import annotations

import numpy as np
from PIL import Image

from tests.support import images
from training.imresize import imresize, modcrop, resize_matrix
from training.metrics import crop_border, psnr, ssim, y_channel


def test_resize_rows_are_normalised_kernels() -> None:
    for n_in, n_out, scale in [(64, 16, 0.25), (16, 64, 4), (30, 15, 0.5)]:
        m = resize_matrix(n_in, n_out, scale)
        np.testing.assert_allclose(m.sum(axis=1), 1.0)
        assert m.shape == (n_out, n_in)


def test_constant_image_stays_constant_and_sizes_are_matlab_ones() -> None:
    img = np.full((33, 21, 3), 117, np.uint8)
    small = imresize(img, 0.25)
    assert small.shape == (9, 6, 3) and (small == 117).all()
    assert imresize(small, 4).shape == (36, 24, 3)


def test_bicubic_butterfly_x4_matches_the_published_figure() -> None:
    """Set5 butterfly, x4, bicubic: 22.10 dB Y-PSNR in the literature (MATLAB imresize)."""
    hr = modcrop(np.asarray(Image.open(images.BUTTERFLY).convert("RGB")), 4)
    up = imresize(imresize(hr, 0.25), 4)
    value = psnr(crop_border(y_channel(up), 4), crop_border(y_channel(hr), 4))
    assert abs(value - 22.10) < 0.02, value


def test_metrics_on_known_cases() -> None:
    a = np.full((20, 20), 100.0)
    assert psnr(a, a) == float("inf")
    assert abs(psnr(a, a + 1) - 48.13) < 0.01  # 10 log10(255^2 / 1)
    assert abs(ssim(a, a) - 1.0) < 1e-9
    noisy = a + np.random.default_rng(0).normal(0, 20, a.shape)
    assert ssim(a, noisy) < 0.5
    assert abs(y_channel(np.full((2, 2, 3), 255, np.uint8))[0, 0] - 235.0) < 1e-6
