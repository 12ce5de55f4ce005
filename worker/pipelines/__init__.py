"""Task pipelines: a job's inputs in, a picture out, progress reported as they go.

One module per task; this table is the only place that maps a task to its code.
"""

from __future__ import annotations

from typing import Any, Protocol

from imgenhance.cards import Task
from imgenhance.params import JobParams
from worker.codec import Encoded, Picture
from worker.inputs import Inputs, LocalInputs
from worker.pipelines import denoise, generate, style_transfer, super_resolve
from worker.pipelines.common import TileSettings
from worker.runtime import LoadedModel
from worker.tiling import Progress


class Pipeline(Protocol):
    def __call__(
        self, inputs: Inputs, params: Any, model: LoadedModel, tiles: TileSettings, progress: Progress | None
    ) -> Picture | Encoded: ...


PIPELINES: dict[Task, Pipeline] = {
    "super-resolve": super_resolve.run,
    "denoise": denoise.run,
    "style-transfer": style_transfer.run,
    "generate": generate.run,
}


def run_local(
    params: JobParams,
    model: LoadedModel,
    tiles: TileSettings,
    progress: Progress | None = None,
    **pictures: Picture,
) -> Picture:
    """A job's pipeline on pictures in memory (evaluation, benchmarks, the command line):
    the same code path as a worker's, without Redis. For pipelines that return a picture."""
    out = run_encoded(params, model, tiles, progress, **pictures)
    if not isinstance(out, Picture):
        raise TypeError(f"{model.card.task} gave {out.content_type}, not a picture")
    return out


def run_encoded(
    params: JobParams,
    model: LoadedModel,
    tiles: TileSettings,
    progress: Progress | None = None,
    **pictures: Picture,
) -> Picture | Encoded:
    """``run_local`` for any result (a picture, or what the pipeline encoded itself)."""
    return PIPELINES[model.card.task](LocalInputs(**pictures), params, model, tiles, progress)


__all__ = ["PIPELINES", "Pipeline", "TileSettings", "run_encoded", "run_local"]
