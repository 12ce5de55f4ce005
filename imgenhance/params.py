"""What a job asks for and what it returns: one typed model per task, shared by the
gateway (which validates and resolves them) and the worker (which runs them).

A new task costs one class here, one pipeline module in ``worker/pipelines/``, one
route module in ``app/routes/`` and a card ``task``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from imgenhance.cards import Task

OutputFormat = Literal["png", "jpeg", "webp"]
MAX_SIGMA = 75.0
STYLE_MAX_SIDE = 2048  # style transfer runs untiled (instance norm is global); this bounds its memory

# Names of the uploads a job can carry; each is stored under ``jobs.input_key(id, name)``.
IMAGE = "image"
STYLE_IMAGE = "style_image"


class JobParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(description="the model id that runs the job, resolved by the gateway")
    output_format: OutputFormat
    quality: Annotated[int, Field(ge=1, le=100)] | None = None

    def inputs(self) -> tuple[str, ...]:
        """The uploads the worker reads."""
        return (IMAGE,)


MAX_OUTSCALE = 8.0


class SuperResolveParams(JobParams):
    scale: Literal[2, 4]
    # Left out of the job's JSON when unset, so jobs without it read as before (and old
    # workers, which forbid unknown fields, still take them during a rolling upgrade).
    outscale: Annotated[float, Field(gt=1, le=MAX_OUTSCALE)] | None = Field(
        None,
        exclude_if=lambda value: value is None,
        description="the final factor (1-8]: the model's scale output is resampled to round(w*outscale) x "
        "round(h*outscale); None = the model's scale",
    )


def model_scale_for(outscale: float, scales: Iterable[int]) -> int:
    """The model scale an ``outscale`` runs at: the smallest one at or above it (resampling
    down from more detail), else the largest there is (resampling up from it)."""
    available = sorted(set(scales))
    if not available:
        raise ValueError("no super-resolve model is installed")
    return next((s for s in available if s >= outscale), available[-1])


Artifacts = Literal["noise", "jpeg"]


class DenoiseParams(JobParams):
    sigma: Annotated[float, Field(ge=0, le=MAX_SIGMA)] | None = Field(
        None,
        description="how much noise to remove, as a Gaussian sigma on the 0-255 scale: below the image's own "
        "level the rest stays (0 = none); None = blind (the model estimates the level and removes it)",
    )
    strength: Annotated[float, Field(ge=0, le=1)] = Field(
        1.0, description="share of the model's correction applied: 0 = unchanged, 1 = full"
    )
    artifacts: Artifacts = Field(
        "noise", description="noise: sensor and Gaussian noise; jpeg: compression blocks and ringing"
    )
    jpeg_quality: Annotated[int, Field(ge=1, le=100)] | None = Field(
        None,
        description="artifacts=jpeg: the quality the image was saved at (None = read from a JPEG upload's "
        "tables, else blind); sets the level from the card's jpeg_levels",
    )


def stylised_scale(width: int, height: int, max_side: int, keep_size: bool) -> float:
    """The style-transfer output's size over the input's: the image is stylised with its
    longer side at most ``max_side`` and, with ``keep_size``, brought back to its size."""
    return 1.0 if keep_size else min(1.0, max_side / max(width, height))


def style_source_conflict(
    style_given: bool, image_given: bool, style: str = "style", image: str = "style_image"
) -> str | None:
    """Why a style-transfer request does not give exactly one style source (a named style
    or a picture), or None: the API, the command line and the library backend ask this,
    each naming its own fields (``style``, ``image``)."""
    if style_given and image_given:
        return f"send either {style} (a named style) or {image} (any picture), not both"
    if not style_given and not image_given:
        return f"name a style with {style} or send a picture with {image}"
    return None


def quality_conflict(output_format: OutputFormat | None, quality: int | None) -> str | None:
    """Why ``quality`` cannot go with this output format, or None: the API and the command line ask this."""
    if quality is not None and output_format == "png":
        return "quality applies to jpeg and webp output; png is lossless"
    return None


def denoise_level_conflict(sigma: float | None, artifacts: str, jpeg_quality: int | None) -> str | None:
    """Why these denoise options cannot go together, or None: the API and the command line ask this."""
    if jpeg_quality is not None and artifacts != "jpeg":
        return "jpeg_quality goes with artifacts=jpeg"
    if jpeg_quality is not None and sigma is not None:
        return "send sigma or jpeg_quality, not both: each sets the level"
    return None


class StyleTransferParams(JobParams):
    style: str | None = Field(None, description="a named style; None = the uploaded style image")
    strength: Annotated[float, Field(ge=0, le=1)] = Field(
        1.0, description="named: blend of output with input; any style: AdaIN blend in feature space"
    )
    preserve_color: bool = Field(False, description="keep the input's colours: transfer luminance only")
    max_side: Annotated[int, Field(ge=64, le=STYLE_MAX_SIDE)] = Field(
        1024, description="the longer side the image is stylised at (strokes scale with it)"
    )
    keep_size: bool = Field(True, description="scale the result back to the input's size")
    style_side: Annotated[int, Field(ge=64, le=STYLE_MAX_SIDE)] = Field(
        512, description="any style: the longer side the style image is read at (larger = finer strokes)"
    )

    def inputs(self) -> tuple[str, ...]:
        return (IMAGE,) if self.style is not None else (IMAGE, STYLE_IMAGE)


MAX_IMAGES = 64
MAX_SEED = 2**32 - 1
MAX_ANIMATION_IMAGES = 1024  # n x steps of one interpolation: bounds its work and memory


class Interpolation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    to_seed: Annotated[int, Field(ge=0, le=MAX_SEED, description="the seed the walk ends at")]
    steps: Annotated[int, Field(ge=2, le=120, description="frames of the animation")] = 24


class GenerateParams(JobParams):
    n: Annotated[int, Field(ge=1, le=MAX_IMAGES, description="images to generate")] = 16
    seed: Annotated[int, Field(ge=0, le=MAX_SEED, description="same seed, same model: the same pixels")] = 0
    label: int | None = Field(None, description="class index (conditional models); None = image i gets class i mod C")
    truncation: Annotated[float, Field(gt=0, le=1, description="psi: latents are scaled by it")] = 1.0
    interpolate: Interpolation | None = None
    output: Literal["grid", "zip"] = "grid"

    def inputs(self) -> tuple[str, ...]:
        return ()


TASK_PARAMS: dict[Task, type[JobParams]] = {
    "super-resolve": SuperResolveParams,
    "denoise": DenoiseParams,
    "style-transfer": StyleTransferParams,
    "generate": GenerateParams,
}


class JobResult(BaseModel):
    """What a worker returns for a finished job (stored by RQ, read by the gateway)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    content_type: str
    bytes: int
    width: int
    height: int
    model: str
