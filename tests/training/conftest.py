"""Fixtures for training tests: a VGG16 with random weights in a private weights cache,
so nothing is fetched and the tests run where the real weights were never downloaded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from training import pretrained
from training.vgg import VGG16_CFG


def random_vgg16_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    in_ch, conv = 3, 0
    for v in VGG16_CFG:
        if v == "M":
            continue
        index = pretrained.VGG16_CONV_INDICES[conv]
        scale = np.sqrt(2.0 / (in_ch * 9))
        arrays[f"features.{index}.weight"] = (rng.standard_normal((int(v), in_ch, 3, 3)) * scale).astype(np.float32)
        arrays[f"features.{index}.bias"] = np.zeros(int(v), np.float32)
        in_ch, conv = int(v), conv + 1
    for k, channels in enumerate(pretrained.LPIPS_CHANNELS):
        arrays[f"lpips.{k}.weight"] = np.abs(rng.standard_normal((1, channels, 1, 1))).astype(np.float32) * 0.1
    return arrays


@pytest.fixture(scope="session")
def random_vgg_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from safetensors.numpy import save_file

    cache = tmp_path_factory.mktemp("weights-cache")
    save_file(random_vgg16_arrays(), str(cache / pretrained.VGG16_LPIPS.name))
    return cache


@pytest.fixture
def vgg_weights(random_vgg_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point the weights cache at random VGG16 weights for this test."""
    monkeypatch.setattr(pretrained, "CACHE_DIR", random_vgg_cache)
    yield random_vgg_cache


@pytest.fixture(autouse=True)
def private_eval_caches(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Evaluation caches (Inception features, digit classifiers, Gatys references) go to a
    temp dir: a test must neither read a cache a real run left in runs/ nor leave one there."""
    from training import gan_eval, style_eval

    cache = tmp_path_factory.getbasetemp() / "eval-caches"
    monkeypatch.setattr(gan_eval, "CACHE", cache / "eval-cache")
    monkeypatch.setattr(style_eval, "CACHE", cache / "gatys-cache")
