"""Colour under transparent pixels, so upscaling does not drag it into visible edges.

Transparent pixels often store black or garbage RGB. A model that mixes neighbours
then paints a dark fringe (halo) where the alpha edge lands after upscaling. Before
the model runs, ``bleed`` replaces the colour of fully transparent pixels with the
alpha-weighted average of nearby visible colour (push-pull: average down a pyramid,
then fill each level's holes from the coarser one), leaving visible pixels untouched.
"""

from __future__ import annotations

import numpy as np


def _down(x: np.ndarray) -> np.ndarray:
    """2x2 mean pool of (H, W, C), padding odd sides with zeros."""
    h, w = x.shape[:2]
    x = np.pad(x, ((0, h % 2), (0, w % 2), (0, 0)))
    pooled: np.ndarray = 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])
    return pooled


def _up(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return np.repeat(np.repeat(x, 2, axis=0), 2, axis=1)[: shape[0], : shape[1]]


def bleed(rgb: np.ndarray, alpha: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """(H, W, C) colour and (H, W) alpha in [0, 1] -> colour with transparent pixels filled."""
    hole = alpha <= 0.0
    if not hole.any() or hole.all():
        return rgb
    weights = [alpha[..., None].astype(np.float32)]
    premult = [rgb * weights[0]]
    while max(weights[-1].shape[:2]) > 1:
        weights.append(_down(weights[-1]))
        premult.append(_down(premult[-1]))
    fill = premult[-1] / np.maximum(weights[-1], eps)
    for w, p in zip(reversed(weights[:-1]), reversed(premult[:-1]), strict=True):
        coarse = _up(fill, w.shape[:2])
        fill = np.where(w > eps, p / np.maximum(w, eps), coarse)
    return np.where(hole[..., None], fill, rgb).astype(rgb.dtype)
