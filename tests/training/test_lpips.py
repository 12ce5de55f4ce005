"""LPIPS (VGG): zero for the same picture, symmetric, rising with every kind of damage,
in the published range, and usable as a loss. The metric tests need the cached ImageNet
weights (``make weights``, which CI runs first); the others run anywhere."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from PIL import Image

from tests.support import images
from tests.training.conftest import random_vgg16_arrays
from training import pretrained
from training.lpips import LPIPS, LPIPS_SCALE, LPIPS_SHIFT
from training.plots import centre_crop
from training.pretrained import WeightsError
from training.realworld import jpeg_roundtrip
from training.style_data import to_batch
from training.vgg import IMAGENET_MEAN, IMAGENET_STD

needs_weights = pytest.mark.skipif(
    not pretrained.VGG16_LPIPS.cached.exists(), reason="run `python -m training weights fetch` first"
)


@pytest.fixture(scope="module")
def lpips() -> LPIPS:
    return LPIPS.pretrained()


@pytest.fixture(scope="module")
def butterfly() -> np.ndarray:
    return centre_crop(np.asarray(Image.open(images.BUTTERFLY).convert("RGB")), 128)


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    return np.asarray(cv2.GaussianBlur(img, (0, 0), sigma))


def noise(img: np.ndarray, sigma: float) -> np.ndarray:
    noisy = img + np.random.default_rng(0).normal(0.0, sigma, img.shape)
    return np.clip(noisy, 0, 255).round().astype(np.uint8)


def distances(lpips: LPIPS, reference: np.ndarray, pictures: list[np.ndarray]) -> list[float]:
    """One batch: the reference's features once, compared with every picture."""
    with torch.no_grad():
        ref = lpips.features(to_batch([reference]))
        return lpips.compare(lpips.features(to_batch(pictures)), ref).tolist()


def test_the_scaling_layer_on_minus_one_to_one_is_the_imagenet_normalisation() -> None:
    u = torch.linspace(0, 1, 11).view(1, 1, -1).expand(3, 1, -1)
    shift, scale = torch.tensor(LPIPS_SHIFT).view(3, 1, 1), torch.tensor(LPIPS_SCALE).view(3, 1, 1)
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    torch.testing.assert_close((2 * u - 1 - shift) / scale, (u - mean) / std, atol=1e-6, rtol=0)


def test_negative_heads_are_refused() -> None:
    arrays = random_vgg16_arrays()
    arrays["lpips.3.weight"] = -arrays["lpips.3.weight"]
    with pytest.raises(WeightsError, match="head 3"):
        LPIPS.from_arrays(arrays)


def test_the_metric_is_frozen_and_stays_in_eval_mode() -> None:
    metric = LPIPS.from_arrays(random_vgg16_arrays()).train()
    assert not metric.training and not any(p.requires_grad for p in metric.parameters())


@needs_weights
def test_the_same_picture_is_at_distance_zero(lpips: LPIPS, butterfly: np.ndarray) -> None:
    same, mirrored = distances(lpips, butterfly, [butterfly, butterfly[:, ::-1].copy()])
    assert same == pytest.approx(0.0, abs=1e-6)
    assert mirrored > 0.3  # another picture; measured 0.61


@needs_weights
def test_the_distance_is_symmetric(lpips: LPIPS, butterfly: np.ndarray) -> None:
    other = noise(blur(butterfly, 1.5), 10)
    with torch.no_grad():
        there, back = lpips(to_batch([butterfly, other]), to_batch([other, butterfly])).tolist()
    assert there == pytest.approx(back, rel=1e-5)


@needs_weights
@pytest.mark.parametrize(
    ("damage", "levels"),
    [
        (blur, [0.5, 1.0, 2.0, 4.0]),  # Gaussian sigma, pixels
        (noise, [5, 15, 30, 60]),  # Gaussian sigma, 0-255
        (jpeg_roundtrip, [90, 50, 20, 5]),  # quality
    ],
    ids=["blur", "noise", "jpeg"],
)
def test_more_damage_is_further_away(lpips: LPIPS, butterfly: np.ndarray, damage: object, levels: list[int]) -> None:
    pictures = [damage(butterfly, level) for level in levels]  # type: ignore[operator]
    d = distances(lpips, butterfly, pictures)
    assert all(a < b for a, b in itertools.pairwise(d)), d
    # measured on this crop: blur .025 .20 .36 .47; noise .065 .23 .39 .60; JPEG .049 .18 .27 .48
    assert 0.0 < d[0] < 0.12 and 0.2 < d[-1] < 0.8, d


@needs_weights
def test_it_works_as_a_loss(lpips: LPIPS, butterfly: np.ndarray) -> None:
    """Gradients reach the input, finite even where every feature is zero (a black
    picture), and a step down the gradient brings a blurred picture closer."""
    small = centre_crop(butterfly, 64)
    target = to_batch([small, small])
    x = torch.cat([to_batch([blur(small, 2.0)]), torch.zeros(1, 3, 64, 64)]).requires_grad_(True)
    before = lpips(x, target)
    before.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and (x.grad.abs().sum(dim=(1, 2, 3)) > 0).all()
    with torch.no_grad():
        blurred, grad = x[:1], x.grad[:1]
        after = lpips((blurred - 0.02 * grad / grad.abs().max()).clamp(0, 1), target[:1])  # <= 0.02 a pixel
    assert float(after) < before[0].item() - 0.01, (before, after)  # measured 0.344 -> 0.297
