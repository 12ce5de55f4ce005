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
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Task = Literal["super-resolve", "denoise", "style-transfer", "generate"]
TASKS: tuple[Task, ...] = ("super-resolve", "denoise", "style-transfer", "generate")
# Largest |ONNX - PyTorch| a card's file may show at export, and what any other engine
# running the file (ncnn) is held to against ONNX Runtime.
PARITY_TOLERANCE = 1e-4


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TensorSpec(_Strict):
    name: str
    dtype: Literal["float32", "float16", "int64"] = "float32"
    shape: list[int] = Field(description="-1 marks a variable dimension")
    layout: Literal["NCHW", "NC", "N"] = "NCHW"
    role: str = Field(
        "image",
        description="image, style (a second image), strength (a scalar per sample), latent (a vector per sample) "
        "or class (an index per sample)",
    )


class NoiseLevel(_Strict):
    """A denoiser's strength input: one constant input channel holding sigma / sigma_per_unit."""

    channel: int = Field(description="index of the level channel in the input")
    sigma_per_unit: float = Field(description="sigma (0-255 scale) that a level of 1.0 stands for")
    blind_value: float = Field(description="level value that asks the model to estimate the noise itself")
    trained_max_sigma: float = Field(description="largest sigma seen in training")
    jpeg_levels: dict[str, float] | None = Field(
        None, description="JPEG quality -> the level its artefacts carry (median RMS error, 0-255, training images)"
    )

    def jpeg_level(self, quality: int) -> float:
        """The level (0-255 scale) for artefacts of JPEG ``quality``: interpolated in the
        measured table, held at its ends."""
        if not self.jpeg_levels:
            raise ValueError("this denoiser's card has no JPEG levels")
        table = sorted((int(q), level) for q, level in self.jpeg_levels.items())
        if quality <= table[0][0]:
            return table[0][1]
        for (q0, l0), (q1, l1) in pairwise(table):
            if quality <= q1:
                return l0 + (l1 - l0) * (quality - q0) / (q1 - q0)
        return table[-1][1]


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
    flops_per_pixel: float | None = Field(
        None, description="convolution FLOPs per input pixel, counted on the graph (imgenhance.onnx_cost)"
    )


class Training(_Strict):
    command: str
    data: list[str]
    config: dict[str, Any]
    steps: int
    wall_seconds: float
    device: str
    framework: str
    losses: str = ""
    built_by: str | None = Field(
        None, description="for files not kept in git: the command that rebuilds them, byte for byte, at set-up"
    )


class StyleInfo(_Strict):
    """The painting a named-style model learnt, and what a person should know about it."""

    name: str = Field(description="the name requests use: style=<name>")
    title: str
    artist: str
    year: str
    licence: str
    source: str
    image_sha256: str = Field(description="of the painting file the model was trained on")
    style_side: int = Field(description="the painting's longer side when its statistics were taken")
    preview: str = Field(description="a thumbnail of the painting, beside the card")
    example: str = Field(description="a photograph stylised by this model, beside the card")


class GeneratorInfo(_Strict):
    """What a generate model makes, and how a request steers it."""

    resolution: int
    channels: int = Field(description="1 = gray, 3 = RGB")
    latent: int = Field(description="size of the latent vector z ~ N(0, I), drawn from the request's seed")
    classes: list[str] = Field(description="names a request may give as class (or their index); [] = unconditional")
    truncation: str = "psi scales z towards the mean (0): 1 = full variety, smaller = more typical images"


class UnknownClass(ValueError):
    pass


# -- measured quality: one typed block per task, written by `python -m training eval` ----

Protocol = dict[str, str | int | float | list[float] | list[str]]


class Score(_Strict):
    psnr: float
    ssim: float


class SRScores(_Strict):
    protocol: Protocol
    results: dict[str, dict[str, Score]] = Field(description="set -> method -> score")
    gain_over_bicubic_db: dict[str, float] = Field(description="set -> model minus bicubic, dB")


class PerceptualScore(_Strict):
    lpips: float = Field(description="LPIPS (VGG, v0.1) on RGB: 0 = the same picture, lower is better")
    psnr: float


class RealWorldScores(_Strict):
    """LPIPS and PSNR on inputs as they come in practice (``python -m training eval-realworld``)."""

    protocol: Protocol
    settings: dict[str, str] = Field(description="setting -> how its inputs were made")
    results: dict[str, dict[str, dict[str, PerceptualScore]]] = Field(
        description="setting -> set -> method (model, bicubic) -> mean score"
    )
    onnx_sha256: str = Field(description="the file measured: `eval --write-card` keeps the block while it is unchanged")
    measured_by: str


class SRQuality(SRScores):
    kind: Literal["super-resolve"] = "super-resolve"
    real_world_degradation: SRScores | None = Field(None, description="on Real-ESRGAN-degraded inputs")
    real_world_lpips: RealWorldScores | None = Field(None, description="LPIPS and PSNR on four real-world settings")
    measured_by: str

    def headline(self) -> str:
        scores: SRScores = self.real_world_degradation or self
        where = " (degraded inputs)" if self.real_world_degradation else ""
        return ", ".join(f"{name} {db:+.2f} dB vs bicubic" for name, db in scores.gain_over_bicubic_db.items()) + where


class DenoiseGain(_Strict):
    vs_bm3d_db: float
    vs_nlm_db: float


class StrengthCurve(_Strict):
    """What ``sigma`` does: PSNR of the output against the level the model is told, on
    Gaussian noise of known true levels (the denoise protocol otherwise)."""

    set: str
    noisy_psnr: dict[str, float] = Field(description="true sigma -> PSNR of the noisy input")
    psnr: dict[str, dict[str, float]] = Field(description="true sigma -> requested sigma (or blind) -> PSNR")


class JpegScores(_Strict):
    jpeg: Score = Field(description="the JPEG-compressed input against the original")
    model: Score = Field(description="artifacts=jpeg, the quality read from the file, against the original")
    model_blind: Score = Field(description="the blind level, against the original")


class JpegQuality(_Strict):
    """``artifacts=jpeg`` on JPEG-compressed images, against the compressed input."""

    protocol: Protocol
    results: dict[str, dict[str, JpegScores]] = Field(description="set -> JPEG quality (q10 ...) -> scores")


class DenoiseQuality(_Strict):
    kind: Literal["denoise"] = "denoise"
    protocol: Protocol
    results: dict[str, dict[str, dict[str, Score]]] = Field(description="set -> sigma -> method -> score")
    gains: dict[str, dict[str, DenoiseGain]] = Field(description="set -> sigma -> gains of the model")
    strength: StrengthCurve | None = Field(None, description="PSNR against the requested sigma")
    jpeg: JpegQuality | None = Field(None, description="JPEG artefact removal")
    measured_by: str

    def headline(self) -> str:
        return ", ".join(
            f"{name} {sigma}: {g.vs_bm3d_db:+.2f} dB vs BM3D, {g.vs_nlm_db:+.2f} vs NLM"
            for name, by in self.gains.items()
            for sigma, g in by.items()
        )


class StyleScores(_Strict):
    content_loss: float = Field(description="mean unweighted content loss (relu2_2 MSE)")
    style_loss: float = Field(description="mean unweighted Gram style loss (relu1_2..relu4_3)")
    seconds: float = Field(description="mean time per image at the evaluation size")
    images: int


class StyleComparison(_Strict):
    """This model against the Gatys optimisation on the same images, painting and loss network."""

    feed_forward: StyleScores
    gatys: StyleScores
    style_loss_ratio: float | None = Field(description="feed-forward / Gatys (1.0 = as well matched)")
    content_loss_ratio: float | None = Field(description="feed-forward / Gatys (None: Gatys's is 0)")
    speedup: float = Field(description="Gatys time / feed-forward time")


class StyleQuality(_Strict):
    kind: Literal["style-transfer"] = "style-transfer"
    protocol: Protocol
    results: dict[str, dict[str, StyleScores]] = Field(description="style -> content set -> feed-forward scores")
    versus_gatys: dict[str, StyleComparison] = Field(description="style -> comparison on the Gatys image set")
    measured_by: str

    def headline(self) -> str:
        return ", ".join(
            f"{name}: style loss {c.style_loss_ratio}x, content {c.content_loss_ratio}x Gatys's, "
            f"{c.speedup:,.0f}x faster"
            for name, c in self.versus_gatys.items()
        )


class ClassAccuracy(_Strict):
    """A classifier trained on the real training images, reading held-out real images and
    images generated for each class."""

    real: dict[str, float] = Field(description="class -> accuracy on held-out real images")
    generated: dict[str, float] = Field(description="class -> accuracy on images generated for that class")
    worst_ratio: float = Field(description="min over classes of generated / real accuracy")


class GenerateQuality(_Strict):
    kind: Literal["generate"] = "generate"
    protocol: Protocol
    fid: float
    kid: float
    fid_floor: float = Field(description="FID between two halves of the held-out real images")
    kid_floor: float
    generated_images: int
    real_images: int
    classifier: ClassAccuracy | None = None
    measured_by: str

    def headline(self) -> str:
        text = f"FID {self.fid:.1f} (floor {self.fid_floor:.1f}), KID {self.kid:.4f} (floor {self.kid_floor:.4f})"
        if self.classifier is not None:
            text += f", class accuracy >= {100 * self.classifier.worst_ratio:.0f}% of real's"
        return text


class NotMeasured(_Strict):
    kind: Literal["not-measured"] = "not-measured"
    reason: str

    def headline(self) -> str:
        return f"not measured: {self.reason}"


Quality = Annotated[
    SRQuality | DenoiseQuality | StyleQuality | GenerateQuality | NotMeasured, Field(discriminator="kind")
]


class SpeedFigure(_Strict):
    """How fast one engine ran the model on one machine (``python -m training speed``)."""

    device: str = Field(description="the processor or GPU, as the machine names it")
    engine: str = Field(description="what ran the graph: ONNX Runtime and its provider, or PyTorch eager")
    precision: str = Field(description="fp32, or the reduced precision the engine computed in")
    input_side: int = Field(description="side of the square input, one image per run, no tiling")
    ms_per_output_mp: float = Field(description="median milliseconds per megapixel of output")
    measured_by: str
    measured_at: str


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
    graph_passes: list[str] = Field(
        default_factory=list, description="rewrites applied after export: exact, except weights-fp16 (rounded weights)"
    )
    architecture: Architecture
    io: ModelIO
    training: Training
    onnx_parity_max_abs_diff: float | None = Field(None, description="ONNX vs PyTorch at export, other sizes")
    style: StyleInfo | None = Field(None, description="named style-transfer models: the painting")
    generator: GeneratorInfo | None = Field(None, description="generate models: what they make")
    quality: Quality
    speed: list[SpeedFigure] = Field(default_factory=list, description="one figure per machine, engine and precision")
    data_terms: str
    created: str

    def summary(self) -> str:
        return f"{self.id} ({self.task}, x{self.scale}, {self.variant})"

    def class_index(self, label: str | int) -> int:
        """A generate request's class, a name or an index (digits in a string count as an
        index when they are not a name), as its index; ``UnknownClass`` says why not."""
        classes = self.generator.classes if self.generator else []
        if isinstance(label, str) and label in classes:
            return classes.index(label)
        if not classes:
            raise UnknownClass(f"{self.id} is unconditional: it takes no class")
        index = label if isinstance(label, int) else int(label) if label.isascii() and label.isdigit() else -1
        if not 0 <= index < len(classes):
            raise UnknownClass(f"no class {label!r} in {self.id}; its classes are {classes} (or 0-{len(classes) - 1})")
        return index


def with_earlier_speed(card: ModelCard, earlier: Path) -> ModelCard:
    """``card`` with the speed figures of the card at ``earlier`` when both describe the same
    file (same sha256): a re-export or re-import that wrote the same bytes keeps them."""
    if not earlier.exists():
        return card
    old = read_card(earlier)
    return card.model_copy(update={"speed": old.speed}) if old.sha256 == card.sha256 else card


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
