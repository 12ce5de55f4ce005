"""Task pipelines: a decoded picture in, a picture out, progress reported per tile."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from worker.alpha import bleed
from worker.codec import Picture
from worker.runtime import LoadedModel
from worker.tiling import Progress, plan_axis, run_tiled


@dataclass(frozen=True)
class TileSettings:
    """From ``Settings.tile_size``, ``tile_overlap`` and ``tile_batch``."""

    max_tile: int
    overlap: int
    batch: int


def count_tiles(h: int, w: int, tiles: TileSettings, multiple: int) -> int:
    ph, pw = h + (-h) % multiple, w + (-w) % multiple
    return len(plan_axis(ph, tiles.max_tile, tiles.overlap, multiple).starts) * len(
        plan_axis(pw, tiles.max_tile, tiles.overlap, multiple).starts
    )


def super_resolve(
    picture: Picture, model: LoadedModel, tiles: TileSettings, progress: Progress | None = None
) -> Picture:
    """Upscale colour with the model; alpha goes through the model separately, after the
    colour under transparent pixels has been filled (``bleed``) so edges get no halo."""
    scale = model.card.scale
    multiple = model.card.io.size_multiple
    rgb = np.repeat(picture.pixels, 3, axis=2) if picture.gray else picture.pixels
    alpha = picture.alpha
    alpha_pass = alpha is not None and float(alpha.min()) < 1.0
    if alpha_pass:
        assert alpha is not None
        rgb = bleed(rgb, alpha)

    per_pass = count_tiles(picture.height, picture.width, tiles, multiple)
    total = per_pass * (2 if alpha_pass else 1)

    def run(planes: np.ndarray, offset: int) -> np.ndarray:
        report: Callable[[int, int], None] | None = None
        if progress is not None:

            def report(done: int, _: int) -> None:
                progress(offset + done, total)

        return run_tiled(planes, model, scale, tiles.max_tile, tiles.overlap, tiles.batch, multiple, report)

    out = run(np.ascontiguousarray(rgb.transpose(2, 0, 1)), 0).transpose(1, 2, 0)
    if picture.gray:
        out = out.mean(axis=2, keepdims=True)
    out_alpha = None
    if alpha_pass:
        assert alpha is not None
        out_alpha = np.clip(run(np.repeat(alpha[None], 3, axis=0), per_pass).mean(axis=0), 0.0, 1.0)
    elif alpha is not None:
        out_alpha = np.ones(out.shape[:2], np.float32)
    return picture.with_pixels(np.clip(out, 0.0, 1.0), out_alpha)


PIPELINES = {"super-resolve": super_resolve}
