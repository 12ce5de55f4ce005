"""Denoising: the model is told a level through a constant input channel: ``sigma``
(how much noise to remove; the model was trained to leave what lies above it), for
``artifacts=jpeg`` the level the JPEG quality stands for (given, or read from the
upload's quantisation tables), or the blind value, and it estimates the level itself.
``strength`` is the share of the correction applied. Alpha passes through unchanged."""

from __future__ import annotations

import numpy as np

from imgenhance.cards import NoiseLevel
from imgenhance.jobs import JobError
from imgenhance.params import IMAGE, DenoiseParams
from worker.codec import Picture
from worker.inputs import Inputs
from worker.pipelines.common import TiledPasses, TileSettings, back, rgb
from worker.runtime import LoadedModel
from worker.tiling import Progress


def run(
    inputs: Inputs, params: DenoiseParams, model: LoadedModel, tiles: TileSettings, progress: Progress | None
) -> Picture:
    spec = model.card.io.noise_level
    if spec is None:
        raise JobError(f"{model.card.id} has no noise-level input; it is not a denoiser")
    picture = inputs.picture(IMAGE)
    level = told_level(params, spec, picture)
    colour = rgb(picture).transpose(2, 0, 1)
    planes = np.concatenate([colour, np.full((1, *colour.shape[1:]), level, np.float32)])
    out = TiledPasses(picture, model, tiles, 1, progress).run(planes)
    if params.strength < 1.0:
        out = colour + params.strength * (out - colour)
    return picture.with_pixels(back(picture, out), picture.alpha)


def told_level(params: DenoiseParams, spec: NoiseLevel, picture: Picture) -> float:
    """The value of the level channel for this job."""
    if params.sigma is not None:
        return params.sigma / spec.sigma_per_unit
    quality = params.jpeg_quality or picture.jpeg_quality
    if params.artifacts == "jpeg" and quality is not None and spec.jpeg_levels:
        return spec.jpeg_level(quality) / spec.sigma_per_unit
    return spec.blind_value
