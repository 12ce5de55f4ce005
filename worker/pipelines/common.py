"""What every pipeline shares: tile settings, tiled passes with progress over all of
them, and the conversions between pictures and model planes."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from imgenhance.settings import Settings
from worker.codec import Picture
from worker.runtime import LoadedModel
from worker.tiling import Progress, plan_axis, run_tiled


@dataclass(frozen=True)
class TileSettings:
    max_tile: int
    overlap: int
    batch: int

    @classmethod
    def from_settings(cls, settings: Settings) -> TileSettings:
        return cls(settings.tile_size, settings.tile_overlap, settings.tile_batch)


def count_tiles(h: int, w: int, tiles: TileSettings, multiple: int) -> int:
    ph, pw = h + (-h) % multiple, w + (-w) % multiple
    return len(plan_axis(ph, tiles.max_tile, tiles.overlap, multiple).starts) * len(
        plan_axis(pw, tiles.max_tile, tiles.overlap, multiple).starts
    )


class TiledPasses:
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


def rgb(picture: Picture) -> np.ndarray:
    """(H, W, 3) colour, gray repeated into three channels."""
    return np.repeat(picture.pixels, 3, axis=2) if picture.gray else picture.pixels


def back(picture: Picture, planes: np.ndarray, keep_gray: bool = True) -> np.ndarray:
    """(3, H, W) model output -> (H, W, C) in [0, 1], gray again if the input was (and kept)."""
    out = planes.transpose(1, 2, 0)
    if picture.gray and keep_gray:
        out = out.mean(axis=2, keepdims=True)
    clipped: np.ndarray = np.clip(out, 0.0, 1.0)
    return clipped


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resample (H, W[, C]) float32 to a new size: area averaging down, Lanczos up."""
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    shrinking = width * height < w * h
    out = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LANCZOS4)
    return out.reshape(height, width, *image.shape[2:]).astype(np.float32)
