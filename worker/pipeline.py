"""Task pipelines: a decoded picture in, a picture out, progress reported per tile."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

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


class _Passes:
    """Runs one or more tiled passes of a model, reporting progress over all of them."""

    def __init__(
        self, picture: Picture, model: LoadedModel, tiles: TileSettings, passes: int, progress: Progress | None
    ) -> None:
        self.model, self.tiles, self.progress = model, tiles, progress
        self.multiple = model.card.io.size_multiple
        self.per_pass = count_tiles(picture.height, picture.width, tiles, self.multiple)
        self.total = self.per_pass * passes
        self.done = 0

    def run(self, planes: np.ndarray) -> np.ndarray:
        """(C_in, H, W) -> (C_out, H*s, W*s)."""
        offset = self.done

        def report(done: int, _: int) -> None:
            if self.progress is not None:
                self.progress(offset + done, self.total)

        out = run_tiled(
            np.ascontiguousarray(planes),
            self.model,
            self.model.card.scale,
            self.tiles.max_tile,
            self.tiles.overlap,
            self.tiles.batch,
            self.multiple,
            report,
        )
        self.done += self.per_pass
        return out


def _rgb(picture: Picture) -> np.ndarray:
    return np.repeat(picture.pixels, 3, axis=2) if picture.gray else picture.pixels


def _back(picture: Picture, rgb: np.ndarray) -> np.ndarray:
    """(3, H, W) model output -> (H, W, C) in [0, 1], gray again if the input was."""
    out = rgb.transpose(1, 2, 0)
    if picture.gray:
        out = out.mean(axis=2, keepdims=True)
    clipped: np.ndarray = np.clip(out, 0.0, 1.0)
    return clipped


def super_resolve(
    picture: Picture, model: LoadedModel, tiles: TileSettings, progress: Progress | None = None, **_: Any
) -> Picture:
    """Upscale colour with the model; alpha goes through the model separately, after the
    colour under transparent pixels has been filled (``bleed``) so edges get no halo."""
    rgb, alpha = _rgb(picture), picture.alpha
    alpha_pass = alpha is not None and float(alpha.min()) < 1.0
    if alpha is not None and alpha_pass:
        rgb = bleed(rgb, alpha)
    passes = _Passes(picture, model, tiles, 2 if alpha_pass else 1, progress)
    out = _back(picture, passes.run(rgb.transpose(2, 0, 1)))
    out_alpha = None
    if alpha is not None and alpha_pass:
        out_alpha = np.clip(passes.run(np.repeat(alpha[None], 3, axis=0)).mean(axis=0), 0.0, 1.0)
    elif alpha is not None:
        out_alpha = np.ones(out.shape[:2], np.float32)
    return picture.with_pixels(out, out_alpha)


def denoise(
    picture: Picture,
    model: LoadedModel,
    tiles: TileSettings,
    progress: Progress | None = None,
    sigma: float | None = None,
    strength: float = 1.0,
    **_: Any,
) -> Picture:
    """Denoise assuming noise of standard deviation ``sigma`` (0-255 scale), or a level the
    model estimates itself when ``sigma`` is None (blind); apply ``strength`` of the
    correction (0 = unchanged). Alpha passes through unchanged."""
    spec = model.card.io.noise_level
    assert spec is not None, f"{model.card.id} has no noise-level input; it is not a denoiser"
    level = spec.blind_value if sigma is None else sigma / spec.sigma_per_unit
    rgb = _rgb(picture).transpose(2, 0, 1)
    planes = np.concatenate([rgb, np.full((1, *rgb.shape[1:]), level, np.float32)])
    out = _Passes(picture, model, tiles, 1, progress).run(planes)
    if strength < 1.0:
        out = rgb + strength * (out - rgb)
    return picture.with_pixels(_back(picture, out), picture.alpha)


class Pipeline(Protocol):
    def __call__(
        self,
        picture: Picture,
        model: LoadedModel,
        tiles: TileSettings,
        progress: Progress | None = None,
        **options: Any,
    ) -> Picture: ...


PIPELINES: dict[str, Pipeline] = {"super-resolve": super_resolve, "denoise": denoise}
