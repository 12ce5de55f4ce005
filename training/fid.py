"""FID and KID in the TF-Inception pool3 space, as the GAN literature reports them.

Features: the TensorFlow FID InceptionV3 (TorchScript, ``training.pretrained``), pool3,
2048-d. Images go in as RGB (gray repeated), resized to 299x299 bilinearly (PyTorch,
``align_corners=False``; the TF1 reference resize differs slightly, so compare numbers
measured here with each other), scaled to [-1, 0.9921875] as the TF graph expects.

- FID (Heusel et al. 2017): ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2).
  Biased for small sets: always print it beside the real-vs-real floor.
- KID (Binkowski et al. 2018): the unbiased MMD^2 with the kernel
  k(x, y) = (x.y / d + 1)^3, averaged over random subsets; unbiased, so usable on
  the small sets few-shot GANs have.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F

INPUT_RANGE = (-1.0, 0.9921875)


class InceptionFeatures:
    def __init__(self, batch_size: int = 50) -> None:
        from training.pretrained import load_inception

        self.net = load_inception()
        self.batch_size = batch_size

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        """uint8 (N, C, H, W), C = 1 or 3 -> float64 (N, 2048)."""
        out = [self._batch(chunk) for chunk in _chunks(images, self.batch_size)]
        return np.concatenate(out).astype(np.float64)

    def _batch(self, chunk: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(chunk)).float().div(255)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        lo, hi = INPUT_RANGE
        feats: np.ndarray = self.net((x * (hi - lo) + lo).clamp(lo, hi)).numpy()
        return feats


def _chunks(images: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(images), size):
        yield images[start : start + size]


def fid(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between two feature sets (N, D)."""
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():
        # Fewer images than feature dimensions make the covariances singular: expected for
        # the small sets few-shot GANs are measured on, and why the floor is printed beside.
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(cov_a @ cov_b)
        if not np.isfinite(root).all():  # regularise, as the reference implementation does
            eps = np.eye(cov_a.shape[0]) * 1e-6
            root = scipy.linalg.sqrtm((cov_a + eps) @ (cov_b + eps))
    root = np.real(root)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def kid(a: np.ndarray, b: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> float:
    """Unbiased MMD^2 with a cubic polynomial kernel, mean over random subsets."""
    rng = np.random.default_rng(seed)
    m = min(subset_size, len(a), len(b))
    d = a.shape[1]
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        mmd = (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        values.append(mmd - 2 * kxy.mean())
    return float(np.mean(values))
