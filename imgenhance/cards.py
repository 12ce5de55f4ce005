"""Model cards: the declarative description of every model in ``models/``.

A card says everything the service needs to know about an ONNX file (what task it
does, at what scale, its tensor names, layout, value range and channel order) and
everything a person needs to trust it (how it was trained, on what data, and its
measured quality under a stated protocol). Nothing about a model is implied by code.
``training`` writes cards; ``app`` and ``worker`` only read them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Task = Literal["super-resolve", "denoise", "style-transfer", "generate"]
TASKS: tuple[Task, ...] = ("super-resolve", "denoise", "style-transfer", "generate")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TensorSpec(_Strict):
    name: str
    dtype: Literal["float32", "float16"] = "float32"
    shape: list[int] = Field(description="-1 marks a variable dimension")
    layout: Literal["NCHW"] = "NCHW"


class NoiseLevel(_Strict):
    """A denoiser's strength input: one constant input channel holding sigma / sigma_per_unit."""

    channel: int = Field(description="index of the level channel in the input")
    sigma_per_unit: float = Field(description="sigma (0-255 scale) that a level of 1.0 stands for")
    blind_value: float = Field(description="level value that asks the model to estimate the noise itself")
    trained_max_sigma: float = Field(description="largest sigma seen in training")


class ModelIO(_Strict):
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    value_range: tuple[float, float] = (0.0, 1.0)
    channel_order: Literal["RGB"] = "RGB"
    size_multiple: int = Field(1, description="input height and width must be multiples of this")
    noise_level: NoiseLevel | None = None


class Architecture(_Strict):
    name: str
    args: dict[str, Any]
    params: int
    receptive_radius: int = Field(description="input pixels of context per side that one output pixel sees")


class Training(_Strict):
    command: str
    data: list[str]
    config: dict[str, Any]
    steps: int
    wall_seconds: float
    device: str
    framework: str
    losses: str = ""


class ModelCard(_Strict):
    id: str
    task: Task
    variant: str = Field("general", description="e.g. general (bicubic-trained) or real-world")
    scale: int = 1
    default: bool = Field(False, description="the model used when a request names none")
    file: str
    sha256: str
    bytes: int
    opset: int
    graph_passes: list[str] = Field(default_factory=list, description="exact rewrites applied after export")
    architecture: Architecture
    io: ModelIO
    training: Training
    quality: dict[str, Any]
    data_terms: str
    created: str

    def summary(self) -> str:
        return f"{self.id} ({self.task}, x{self.scale}, {self.variant})"


def file_sha256(path: Path) -> str:
    """The checksum a card records for its ONNX file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_card(path: Path) -> ModelCard:
    return ModelCard.model_validate_json(Path(path).read_text())


def write_card(card: ModelCard, path: Path) -> None:
    Path(path).write_text(json.dumps(card.model_dump(mode="json"), indent=2) + "\n")
