"""Run a model over an image of any size in overlapping tiles, with feathered blending.

Plan per axis: the fewest tiles no longer than ``max_tile`` that overlap by at least
``overlap``, all the same size (so they batch) and evenly spread. Blend: near an edge
that borders another tile a model sees zero padding instead of the neighbour's
pixels, so each tile's weight is 0 over the first quarter of the overlap, ramps
linearly across the middle half and is 1 beyond; weights of the two tiles sharing an
overlap sum to one, and image borders keep full weight. The weight of the whole grid
is separable, so normalising needs two 1-D sums instead of a full-size weight map.

    tile a  ──────────────1111111111\\\\____|
    tile b                |____////111111111111──────
                           margin ramp margin
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Infer = Callable[[np.ndarray], np.ndarray]  # (N, C_in, h, w) -> (N, C_out, h*s, w*s)
Progress = Callable[[int, int], None]  # (tiles done, tiles total)


@dataclass(frozen=True)
class AxisPlan:
    length: int
    tile: int
    starts: tuple[int, ...]

    def overlap_after(self, i: int) -> int:
        """Overlap between tile i and tile i+1 (0 for the last one)."""
        return self.starts[i] + self.tile - self.starts[i + 1] if i + 1 < len(self.starts) else 0


def plan_axis(length: int, max_tile: int, overlap: int, multiple: int = 1) -> AxisPlan:
    assert length % multiple == 0, f"pad the image to a multiple of {multiple} first"
    if length <= max_tile:
        return AxisPlan(length, length, (0,))
    overlap = math.ceil(overlap / multiple) * multiple  # starts and sides are multiples, so overlaps are too
    n = math.ceil((length - overlap) / (max_tile - overlap))
    tile = math.ceil((length + (n - 1) * overlap) / n)
    tile = min(length, math.ceil(tile / multiple) * multiple)
    step = (length - tile) / (n - 1)
    starts = tuple(round(i * step / multiple) * multiple for i in range(n))
    return AxisPlan(length, tile, starts)


def _ramp(n_out: int, overlap_out: int) -> np.ndarray:
    """Weights rising from 0 to 1 over ``n_out`` samples of an ``overlap_out`` overlap."""
    margin = overlap_out / 4
    pos = np.arange(n_out) + 0.5
    ramp: np.ndarray = np.clip((pos - margin) / max(overlap_out - 2 * margin, 1e-6), 0.0, 1.0)
    return ramp


def axis_weights(plan: AxisPlan, i: int, scale: int) -> np.ndarray:
    w = np.ones(plan.tile * scale, dtype=np.float32)
    before = plan.overlap_after(i - 1) * scale if i > 0 else 0
    after = plan.overlap_after(i) * scale
    if before:
        w[:before] *= _ramp(before, before)
    if after:
        w[-after:] *= _ramp(after, after)[::-1]
    # A pixel covered by one tile only never has weight 0; this floor only guards
    # degenerate plans (a tile swallowed by its neighbours' overlaps).
    return np.maximum(w, 1e-6)


def normalised_weights(plan: AxisPlan, scale: int) -> list[np.ndarray]:
    """Each tile's 1-D weights divided by the sum over tiles, so that the weights of
    all tiles add up to exactly one at every output sample."""
    weights = [axis_weights(plan, i, scale) for i in range(len(plan.starts))]
    total = np.zeros(plan.length * scale, np.float32)
    for start, w in zip(plan.starts, weights, strict=True):
        total[start * scale : start * scale + w.size] += w
    return [w / total[start * scale : start * scale + w.size] for start, w in zip(plan.starts, weights, strict=True)]


def _ones(w: np.ndarray) -> tuple[int, int]:
    """The [start, stop) range where a normalised 1-D weight is exactly 1 (one tile alone)."""
    full = np.flatnonzero(w == 1.0)
    return (int(full[0]), int(full[-1]) + 1) if full.size else (0, 0)


def _blend(dst: np.ndarray, tile: np.ndarray, wy: np.ndarray, wx: np.ndarray) -> None:
    """dst += tile * (wy x wx), copying the interior, which no other tile covers, as is:
    on a GPU host this host-side blend, not the model, is what tiling costs."""
    a0, a1 = _ones(wy)
    b0, b1 = _ones(wx)
    dst[:, a0:a1, b0:b1] = tile[:, a0:a1, b0:b1]
    for rows, cols in (
        (slice(0, a0), slice(None)),
        (slice(a1, None), slice(None)),
        (slice(a0, a1), slice(0, b0)),
        (slice(a0, a1), slice(b1, None)),
    ):
        band = tile[:, rows, cols]
        if band.size:
            dst[:, rows, cols] += band * (wy[rows][:, None] * wx[cols][None, :])


def run_tiled(
    image: np.ndarray,
    infer: Infer,
    scale: int,
    max_tile: int,
    overlap: int,
    batch: int = 1,
    multiple: int = 1,
    progress: Progress | None = None,
) -> np.ndarray:
    """(C_in, H, W) float32 -> (C_out, H*scale, W*scale) float32 through ``infer``."""
    _, h, w = image.shape
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h or pad_w:
        image = np.pad(image, ((0, 0), (0, pad_h), (0, pad_w)), mode="reflect")
    ph, pw = image.shape[1:]
    rows, cols = plan_axis(ph, max_tile, overlap, multiple), plan_axis(pw, max_tile, overlap, multiple)
    wy, wx = normalised_weights(rows, scale), normalised_weights(cols, scale)
    out: np.ndarray | None = None

    coords = [(i, j) for i in range(len(rows.starts)) for j in range(len(cols.starts))]
    total = len(coords)
    for first in range(0, total, batch):
        chunk = coords[first : first + batch]
        tiles = np.stack(
            [
                image[:, rows.starts[i] : rows.starts[i] + rows.tile, cols.starts[j] : cols.starts[j] + cols.tile]
                for i, j in chunk
            ]
        )
        pred = infer(np.ascontiguousarray(tiles))
        expected = (len(chunk), rows.tile * scale, cols.tile * scale)
        if (pred.shape[0], *pred.shape[2:]) != expected:  # a file that is not what its card says
            raise RuntimeError(
                f"model returned {pred.shape} for tiles {tiles.shape}; "
                f"expected N={expected[0]} and sides {expected[1:]}"
            )
        if out is None:
            out = np.zeros((pred.shape[1], ph * scale, pw * scale), np.float32)
        for (i, j), p in zip(chunk, pred, strict=True):
            y0, x0 = rows.starts[i] * scale, cols.starts[j] * scale
            _blend(out[:, y0 : y0 + rows.tile * scale, x0 : x0 + cols.tile * scale], p, wy[i], wx[j])
        if progress is not None:
            progress(first + len(chunk), total)
    assert out is not None
    return out[:, : h * scale, : w * scale]
