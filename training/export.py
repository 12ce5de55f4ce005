"""ONNX export with a parity check, and the card that describes the result.

A graph takes float32 RGB in [0, 1], NCHW, with dynamic batch, height and width:
``input`` for single-image models (plus a level channel for denoisers), or
``content``, ``style`` and ``alpha`` for the any-style model. It returns ``output``
(``scale`` times the size for super-resolution). Parity with PyTorch is checked at
sizes other than the export size before a card is written.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from imgenhance.cards import (
    PARITY_TOLERANCE,
    Architecture,
    GeneratorInfo,
    ModelCard,
    ModelIO,
    NoiseLevel,
    NotMeasured,
    StyleInfo,
    TensorSpec,
    Training,
    file_sha256,
)
from imgenhance.onnx_cost import card_flops_per_pixel
from imgenhance.onnx_passes import prelu_as_batchnorm, stored_as_fp16, weights_as_fp16
from training import archs
from training.archs.unet import BLIND, LEVEL_SCALE
from training.checkpoint import ArchSpec, Checkpoint

OPSET = 17
DATA_TERMS = {
    "T91": "T91 (Yang et al. 2010)",
    "BSD200": "BSD200 (BSDS300 training split, Martin et al. 2001)",
    "photos": "photographs from desktop-wallpaper collections (CC BY-SA 3.0, CC0, public domain; per-file "
    "licences in the data set's LICENSES.tsv)",
    "mnist": "MNIST digits (LeCun et al. 1998), the 10,000 of its test-split files: 8,000 trained on, 2,000 held out",
    "faces_london": "Face Research Lab London Set (DeBruine & Jones 2017, doi:10.6084/m9.figshare.5047666.v5, "
    "CC BY 4.0; subjects consented to altered use)",
}


@dataclass(frozen=True)
class GraphInput:
    name: str
    role: str  # image | style | strength | latent | class (imgenhance.cards.TensorSpec.role)
    channels: int | None  # images: channels; latent: its size; None: one value per sample
    dtype: str = "float32"  # or int64 (class indices)

    @property
    def image(self) -> bool:
        return self.role in ("image", "style")

    def shape(self) -> list[int]:
        if self.image:
            return [-1, self.channels or 3, -1, -1]
        return [-1] if self.channels is None else [-1, self.channels]

    def layout(self) -> str:
        return "NCHW" if self.image else ("N" if self.channels is None else "NC")


def graph_inputs(arch: ArchSpec) -> list[GraphInput]:
    if arch.name == "AdaINNet":
        return [
            GraphInput("content", "image", 3),
            GraphInput("style", "style", 3),
            GraphInput("alpha", "strength", None),
        ]
    if arch.name == "Generator":
        latent = [GraphInput("latent", "latent", int(arch.args["latent"]))]
        return latent + ([GraphInput("class", "class", None, "int64")] if arch.args.get("classes") else [])
    return [GraphInput("input", "image", archs.input_channels(arch.name, arch.args))]


def _dummies(
    inputs: list[GraphInput], batch: int, sides: list[tuple[int, int]], gen: torch.Generator
) -> tuple[torch.Tensor, ...]:
    """Random inputs; image-like input i gets ``sides[i]`` (so content and style differ)."""
    out = []
    for i, spec in enumerate(inputs):
        if spec.dtype == "int64":
            out.append(torch.randint(0, 2, (batch,), generator=gen))
        elif spec.image:
            h, w = sides[min(i, len(sides) - 1)]
            out.append(torch.rand(batch, spec.channels or 3, h, w, generator=gen))
        elif spec.channels is None:
            out.append(torch.rand(batch, generator=gen))
        else:
            out.append(torch.randn(batch, spec.channels, generator=gen))
    return tuple(out)


def export_onnx(
    model: nn.Module,
    path: Path,
    in_ch: int = 3,
    size: int = 64,
    inputs: list[GraphInput] | None = None,
    fp16_weights: bool = False,
) -> list[str]:
    """Export, then apply the graph passes; returns the names of the passes that changed the graph.
    ``fp16_weights``: store the large weights as float16 (``weights_as_fp16``); give a model
    whose weights are already rounded (``rounded_to_fp16``) so parity holds."""
    inputs = inputs or [GraphInput("input", "image", in_ch)]
    path.parent.mkdir(parents=True, exist_ok=True)
    dummies = _dummies(inputs, 1, [(size, size), (size + 8, size - 8)], torch.Generator().manual_seed(0))
    image_dims = {0: "batch", 2: "height", 3: "width"}
    dynamic = {
        spec.name: ({0: "batch", 2: f"{spec.name}_h", 3: f"{spec.name}_w"} if spec.image else {0: "batch"})
        for spec in inputs
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
        torch.onnx.export(
            model.eval().cpu(),
            dummies,
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=[spec.name for spec in inputs],
            output_names=["output"],
            dynamic_axes={**dynamic, "output": image_dims if any(i.image for i in inputs) else {0: "batch"}},
        )
    graph = onnx.load(str(path))
    passes = ["prelu-as-batchnorm"] if prelu_as_batchnorm(graph) else []
    if fp16_weights and weights_as_fp16(graph):
        passes.append("weights-fp16")
    if passes:
        onnx.save(graph, str(path))
    return passes


def rounded_to_fp16(model: nn.Module) -> nn.Module:
    """A copy whose weights are what ``weights_as_fp16`` keeps of them: the tensors it
    stores as float16 rounded to float16 (computed in float32), the rest as they are."""
    out = copy.deepcopy(model)
    with torch.no_grad():
        for tensor in [*out.parameters(), *out.buffers()]:
            if tensor.dtype == torch.float32 and stored_as_fp16(tensor.numel(), float(tensor.abs().max())):
                tensor.copy_(tensor.half().float())
    return out


def parity(
    model: nn.Module, onnx_path: Path, multiple: int = 1, in_ch: int = 3, inputs: list[GraphInput] | None = None
) -> float:
    """Largest absolute difference between ONNX Runtime's outputs and the model's computed
    in float64 by PyTorch, at sizes other than the export size (odd ones where the model
    allows them). The reference is float64 because PyTorch's fp32 can be the less exact
    of the two: on a trained style network and a 40x56 noise input its instance norms
    were 1.3e-4 from the float64 result where ONNX Runtime's were 6e-6."""
    from worker.runtime import open_session

    inputs = inputs or [GraphInput("input", "image", in_ch)]

    def fit(h: int, w: int) -> tuple[int, int]:
        return -(-h // multiple) * multiple, -(-w // multiple) * multiple

    cases = ((1, [fit(37, 53), fit(29, 45)]), (2, [fit(48, 30), fit(40, 56)]))
    sess = open_session(onnx_path)
    exact = copy.deepcopy(model).eval().cpu().double()
    worst = 0.0
    gen = torch.Generator().manual_seed(0)
    for batch, sides in cases:
        xs = _dummies(inputs, batch, sides, gen)
        with torch.no_grad():
            ref = exact(*(x.double() if x.is_floating_point() else x for x in xs)).float().numpy()
        got = sess.run(None, {spec.name: x.numpy() for spec, x in zip(inputs, xs, strict=True)})[0]
        if got.shape != ref.shape:
            raise ParityError(f"ONNX output {got.shape} != PyTorch {ref.shape} for inputs {[x.shape for x in xs]}")
        diff = float(np.abs(got - ref).max())
        if not diff <= worst:  # max() would keep the old value when diff is NaN
            worst = diff
    return worst


class ParityError(RuntimeError):
    """The exported graph does not compute what the PyTorch model computes."""


def require_parity(
    model: nn.Module, onnx_path: Path, multiple: int = 1, in_ch: int = 3, inputs: list[GraphInput] | None = None
) -> float:
    """``parity`` or refuse: a graph that differs from its model must never reach ``models/``."""
    diff = parity(model, onnx_path, multiple, in_ch, inputs)
    if not diff <= PARITY_TOLERANCE:  # also refuses NaN
        raise ParityError(
            f"{onnx_path.name}: ONNX output differs from PyTorch by {diff:.2e} > {PARITY_TOLERANCE:.0e}; "
            "a graph pass or the exporter changed what the model computes"
        )
    return diff


def describe_losses(cfg: dict[str, object], perceptual: str) -> str:
    if cfg.get("task") == "style-transfer":
        if cfg.get("method") == "adain":
            gram = cfg.get("gram_weight")
            with_gram = f" + {gram} x Gram (relu1_2..relu4_3, against each style sample)" if gram else ""
            return (
                f"{cfg.get('content_weight')} x content (relu4_1 vs AdaIN target) + {cfg.get('style_weight')} x "
                f"style (channel mean and std, relu1_1..relu4_1{with_gram}); VGG16 ImageNet encoder, decoder trained"
            )
        return (
            f"{cfg.get('content_weight')} x content (relu2_2 MSE) + {cfg.get('style_weight')} x Gram style "
            f"(relu1_2, relu2_2, relu3_3, relu4_3) + {cfg.get('tv_weight')} x TV; VGG16 ImageNet; trained with "
            f"{len(cfg.get('styles', []))} paintings at once (a conditional instance norm each), exported per painting"
        )
    pixel = {"l1": "L1", "charbonnier": "Charbonnier"}.get(str(cfg.get("loss", "l1")), str(cfg.get("loss", "")))
    stage = cfg.get("stage", "psnr")
    target = f" to the outputs of {cfg['teacher']} (distillation)" if cfg.get("teacher") else ""
    if stage == "psnr":
        return pixel + target
    parts = [f"{cfg.get('pixel_weight', 1.0)} x {pixel}"]
    if cfg.get("perceptual_weight"):
        share = f", {cfg['perceptual_batch']} samples per batch" if cfg.get("perceptual_batch") else ""
        parts.append(f"{cfg['perceptual_weight']} x perceptual ({perceptual}{share})")
    if stage == "gan":
        parts.append(f"{cfg.get('gan_weight')} x {cfg.get('gan_type')} GAN ({cfg.get('discriminator')})")
    return " + ".join(parts) + target + f"; generator initialised from {cfg.get('init_from') or 'scratch'}"


def _output_shape(arch: ArchSpec) -> list[int]:
    if arch.name == "Generator":
        side = int(arch.args["resolution"])
        return [-1, int(arch.args["channels"]), side, side]
    return [-1, 3, -1, -1]


def _flops_per_pixel(ckpt: Checkpoint, onnx_path: Path) -> float | None:
    """For the pixel-to-pixel tasks; the others' cost is not per pixel of one image."""
    if ckpt.task not in ("super-resolve", "denoise"):
        return None
    return card_flops_per_pixel(onnx_path, ckpt.arch.size_multiple)


def _generator_info(ckpt: Checkpoint) -> GeneratorInfo | None:
    if ckpt.arch.name != "Generator":
        return None
    args = ckpt.arch.args
    return GeneratorInfo(
        resolution=int(args["resolution"]),
        channels=int(args["channels"]),
        latent=int(args["latent"]),
        classes=[str(c) for c in ckpt.config.get("classes", [])],
    )


def exportable(ckpt: Checkpoint) -> nn.Module:
    """The module whose graph ships: generators get their output mapped to [0, 1]."""
    from training.archs.gan import ExportedGenerator, Generator, fold_scales

    model = ckpt.generator()
    return ExportedGenerator(fold_scales(model)).eval() if isinstance(model, Generator) else model


def model_io(ckpt: Checkpoint, jpeg_levels: dict[str, float] | None = None) -> ModelIO:
    arch = ckpt.arch
    specs = graph_inputs(arch)
    noise_level = None
    if arch.name == "DenoiseUNet":
        noise_level = NoiseLevel(
            channel=archs.input_channels(arch.name, arch.args) - 1,
            sigma_per_unit=LEVEL_SCALE,
            blind_value=BLIND,
            trained_max_sigma=float(ckpt.config.get("max_sigma", 50.0)),
            jpeg_levels=jpeg_levels,
        )
    return ModelIO(
        inputs=[
            TensorSpec(name=s.name, role=s.role, shape=s.shape(), layout=s.layout(), dtype=s.dtype)  # type: ignore[arg-type]
            for s in specs
        ],
        outputs=[TensorSpec(name="output", shape=_output_shape(arch))],
        size_multiple=arch.size_multiple,
        noise_level=noise_level,
    )


def build_card(
    ckpt: Checkpoint,
    onnx_path: Path,
    model_id: str,
    variant: str,
    default: bool,
    graph_passes: list[str],
    parity_diff: float,
    style: StyleInfo | None = None,
    jpeg_levels: dict[str, float] | None = None,
) -> ModelCard:
    """The card of a freshly exported model; its quality is measured next (``training.measure``).
    ``jpeg_levels``: a denoiser's table (``training.jpeg_levels``)."""
    cfg = ckpt.config
    sets = cfg.get("train_sets") or cfg.get("content_sets") or ([cfg["data"]] if cfg.get("task") == "generate" else [])
    data = [DATA_TERMS.get(s, s) for s in sets]
    if cfg.get("task") == "style-transfer":
        data.append(
            "paintings: " + (", ".join(p["image"] for p in cfg.get("styles", [])) or ", ".join(cfg["style_sets"]))
        )
    return ModelCard(
        id=model_id,
        task=ckpt.task,  # type: ignore[arg-type]
        variant=variant,
        scale=int(cfg.get("scale", 1)),
        default=default,
        file=onnx_path.name,
        sha256=file_sha256(onnx_path),
        bytes=onnx_path.stat().st_size,
        opset=OPSET,
        graph_passes=graph_passes,
        architecture=Architecture(
            name=ckpt.arch.name,
            args=ckpt.arch.args,
            params=archs.count_params(ckpt.arch.build()),
            receptive_radius=archs.receptive_radius(ckpt.arch.name, ckpt.arch.args),
            flops_per_pixel=_flops_per_pixel(ckpt, onnx_path),
        ),
        io=model_io(ckpt, jpeg_levels),
        training=Training(
            command=ckpt.command,
            data=data,
            config=cfg,
            steps=ckpt.step,
            wall_seconds=round(ckpt.elapsed, 1),
            device=ckpt.device,
            framework=f"torch {ckpt.torch}",
            losses=describe_losses(cfg, ckpt.perceptual),
        ),
        onnx_parity_max_abs_diff=parity_diff,
        style=style,
        generator=_generator_info(ckpt),
        quality=NotMeasured(reason="no evaluation data was given to export"),
        data_terms=ckpt.data_terms
        or "Trained on " + ", ".join(data) + ": research data sets whose original terms apply (research use).",
        created=datetime.now(UTC).replace(microsecond=0).isoformat(),
    )
