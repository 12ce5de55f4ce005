"""Super-resolution: upscale colour with the model, tiled; alpha goes through the model
separately, after the colour under transparent pixels has been filled (``bleed``) so
edges get no halo. With ``outscale`` the model's output is then resampled to the
factor asked for (``resample``: Lanczos, in float, alpha and 16 bits included)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from imgenhance.jobs import JobError
from imgenhance.params import IMAGE, SuperResolveParams
from worker.alpha import bleed
from worker.codec import Picture
from worker.inputs import Inputs
from worker.pipelines.common import TiledPasses, TileSettings, back, rgb
from worker.runtime import LoadedModel
from worker.tiling import Progress


def run(
    inputs: Inputs, params: SuperResolveParams, model: LoadedModel, tiles: TileSettings, progress: Progress | None
) -> Picture:
    if model.card.scale != params.scale:
        raise JobError(f"model {model.card.id} upscales x{model.card.scale}, the job asked for x{params.scale}")
    picture = inputs.picture(IMAGE)
    colour, alpha = rgb(picture), picture.alpha
    alpha_pass = alpha is not None and float(alpha.min()) < 1.0
    if alpha is not None and alpha_pass:
        colour = bleed(colour, alpha)
    passes = TiledPasses(picture, model, tiles, 2 if alpha_pass else 1, progress)
    out = back(picture, passes.run(colour.transpose(2, 0, 1)))
    out_alpha = None
    if alpha is not None and alpha_pass:
        out_alpha = np.clip(passes.run(np.repeat(alpha[None], 3, axis=0)).mean(axis=0), 0.0, 1.0)
    elif alpha is not None:
        out_alpha = np.ones(out.shape[:2], np.float32)
    if params.outscale is not None:
        size = round(picture.width * params.outscale), round(picture.height * params.outscale)
        out = resample(out, *size)
        out_alpha = None if out_alpha is None else resample(out_alpha[..., None], *size)[..., 0]
    return picture.with_pixels(out, out_alpha)


def resample(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W, C) float32 in [0, 1] to (height, width, C) with Pillow's Lanczos, one float
    plane at a time. Pillow widens the kernel by the reduction factor when shrinking, so
    going from the model's x4 down to x2.5 does not alias (OpenCV's fixed 8x8 Lanczos
    would); the ringing Lanczos adds at edges is clipped back into [0, 1]."""
    if image.shape[:2] == (height, width):
        return image
    planes = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(image[..., c], dtype=np.float32)).resize(
                (width, height), Image.Resampling.LANCZOS
            )
        )
        for c in range(image.shape[2])
    ]
    out: np.ndarray = np.clip(np.stack(planes, axis=2), 0.0, 1.0).astype(np.float32)
    return out
