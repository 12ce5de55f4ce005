"""Style transfer: a named style (one network per painting) or any uploaded style image
(AdaIN), at a chosen scale, with strength and colour preservation.

Why untiled: the networks normalise every layer with statistics of the whole image
(instance norm, AdaIN); tiles would each get their own statistics and meet at visible
seams. The image is instead stylised whole at ``max_side`` (at most
``params.STYLE_MAX_SIDE``) and resampled back to its size, which also fixes the
stroke scale: style transfer is not scale invariant, so the same painting gives broad
strokes at 512 px and fine ones at 2048 px.

- strength, named styles: blend of the stylised and the input image;
- strength, any style: AdaIN blend in feature space (the model's ``alpha`` input);
- preserve_color: luminance-only transfer (Gatys et al. 2016): the result's luma with
  the input's chroma (BT.601 YCbCr). A gray input stays gray only with it; otherwise
  the painting's colours come in.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from imgenhance.params import IMAGE, STYLE_IMAGE, StyleTransferParams
from worker.alpha import bleed
from worker.codec import Picture
from worker.inputs import Inputs
from worker.pipelines.common import TileSettings, resize, rgb
from worker.runtime import LoadedModel
from worker.tiling import Progress

_TO_YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)
_FROM_YCBCR = np.linalg.inv(_TO_YCBCR).astype(np.float32)


def keep_colours(stylised: np.ndarray, content: np.ndarray) -> np.ndarray:
    """(H, W, 3) stylised luma with the content's chroma."""
    luma = stylised @ _TO_YCBCR[0]
    ycc = content @ _TO_YCBCR.T
    ycc[..., 0] = luma
    out: np.ndarray = ycc @ _FROM_YCBCR.T
    return out


def fit(size: tuple[int, int], side: int, upscale: bool) -> tuple[int, int]:
    """(width, height) scaled so the longer side is ``side`` (never up unless ``upscale``)."""
    w, h = size
    k = side / max(w, h)
    if not upscale:
        k = min(k, 1.0)
    return max(1, round(w * k)), max(1, round(h * k))


def _planes(image: np.ndarray, multiple: int) -> np.ndarray:
    """(H, W, 3) -> (1, 3, H', W') reflect-padded to a multiple of ``multiple``."""
    h, w = image.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    padded = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="reflect" if min(h, w) > 1 else "edge")
    return np.ascontiguousarray(padded.transpose(2, 0, 1)[None])


def _opaque(picture: Picture) -> np.ndarray:
    colour = rgb(picture)
    if picture.alpha is not None and float(picture.alpha.min()) < 1.0:
        colour = bleed(colour, picture.alpha)  # no dark fringe where transparent pixels hide black
    return colour


def run(
    inputs: Inputs, params: StyleTransferParams, model: LoadedModel, tiles: TileSettings, progress: Progress | None
) -> Picture:
    picture = inputs.picture(IMAGE)
    if progress is not None:
        progress(0, 1)  # a cancel request is honoured before the (only) model run
    size = (picture.width, picture.height)
    work_w, work_h = fit(size, params.max_side, upscale=False)
    work = resize(_opaque(picture), work_w, work_h)
    multiple = model.card.io.size_multiple
    x = _planes(work, multiple)
    if params.style is None:
        style_pic = inputs.picture(STYLE_IMAGE)
        style_w, style_h = fit((style_pic.width, style_pic.height), params.style_side, upscale=True)
        style = _planes(resize(_opaque(style_pic), style_w, style_h), multiple)
        out = model.run(image=x, style=style, strength=np.array([params.strength], np.float32))
    else:
        out = model.run(image=x)
        out = params.strength * out + (1.0 - params.strength) * x
    stylised = np.clip(out[0, :, :work_h, :work_w].transpose(1, 2, 0), 0.0, 1.0)
    if params.preserve_color:
        stylised = keep_colours(stylised, work)
    alpha = picture.alpha
    if params.keep_size:
        stylised = resize(stylised, *size)
    elif alpha is not None:
        alpha = np.clip(resize(alpha, work_w, work_h), 0.0, 1.0)
    icc = picture.icc_profile
    if picture.gray and params.preserve_color:
        stylised = stylised.mean(axis=2, keepdims=True)
    elif picture.gray:
        icc = None  # a gray profile cannot describe the colour result
    if progress is not None:
        progress(1, 1)
    return replace(picture, pixels=np.clip(stylised, 0.0, 1.0).astype(np.float32), alpha=alpha, icc_profile=icc)
