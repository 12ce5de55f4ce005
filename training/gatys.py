"""The slow reference: Gatys et al. (2016) style transfer by optimising the image itself.

Same loss network, layers, weights and painting size as the feed-forward networks
(``training.style_losses``), so their losses compare directly. L-BFGS on the pixels,
started from the content image; snapshots at chosen iteration counts let one run
report the reference at several budgets.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from training.style_data import to_batch, to_image
from training.style_losses import GramStyleLoss


@dataclass(frozen=True)
class Snapshot:
    iterations: int
    seconds: float
    content: float  # unweighted content loss of the (clipped) image
    style: float  # unweighted style loss
    image: np.ndarray  # HxWx3 uint8


def stylize_optimize(
    content: np.ndarray,
    loss: GramStyleLoss,
    content_weight: float,
    style_weight: float,
    tv_weight: float = 0.0,
    iterations: int = 200,
    snapshots: tuple[int, ...] = (),
    device: torch.device | str = "cpu",
) -> list[Snapshot]:
    """Optimise an image for ``iterations`` L-BFGS iterations; returns a snapshot at each
    requested count (and at the end). Time counts the optimisation only."""
    x = to_batch([content], device)
    content_feat = loss.content_features(x)
    image = x.clone().requires_grad_(True)

    def fresh() -> torch.optim.LBFGS:
        return torch.optim.LBFGS(
            [image],
            lr=1.0,
            max_iter=1,
            history_size=50,
            tolerance_grad=0,
            tolerance_change=0,
            line_search_fn="strong_wolfe",
        )

    opt = fresh()
    wanted = sorted({*snapshots, iterations})
    out: list[Snapshot] = []
    elapsed = 0.0
    with torch.no_grad():
        # L-BFGS takes its first step as 1 / |gradient|_1: on an objective of ~1e7 that
        # step vanishes in float32. Dividing by the starting value changes no minimum.
        unit = float(loss.terms(image, content_feat).total(content_weight, style_weight, tv_weight)) or 1.0

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        total = loss.terms(image, content_feat).total(content_weight, style_weight, tv_weight) / unit
        total.backward()
        return total

    previous = float("inf")
    for i in range(1, iterations + 1):
        start = time.perf_counter()
        current = float(opt.step(closure).detach())
        if current >= previous:
            # The line search found no decrease (seen on The Starry Night: a curvature pair
            # from a tiny first step stalls every later step). Dropping the history
            # restarts from a gradient step; without it the image never moves again.
            opt = fresh()
        previous = min(previous, current)
        elapsed += time.perf_counter() - start
        if i in wanted:
            with torch.no_grad():
                clipped = image.detach().clamp(0, 1)
                terms = loss.terms(clipped, content_feat)
            out.append(Snapshot(i, elapsed, float(terms.content), float(terms.style), to_image(clipped)))
    return out
