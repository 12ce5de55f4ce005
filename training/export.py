"""ONNX export with a parity check, and the card that describes the result.

The exported graph takes ``input`` (N, C, H, W) float32 RGB in [0, 1] with dynamic
batch, height and width, and returns ``output`` at ``scale`` times the size. Parity
with PyTorch is checked at sizes other than the export size before a card is written.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from imgenhance.cards import Architecture, ModelCard, ModelIO, NoiseLevel, TensorSpec, Training, file_sha256
from training import archs
from training.archs.unet import BLIND, LEVEL_SCALE
from training.onnx_passes import prelu_as_batchnorm

OPSET = 17
PARITY_TOLERANCE = 1e-4
DATA_TERMS = {
    "T91": "T91 (Yang et al. 2010)",
    "BSD200": "BSD200 (BSDS300 training split, Martin et al. 2001)",
}


def export_onnx(model: nn.Module, path: Path, in_ch: int = 3, size: int = 64) -> list[str]:
    """Export, then apply the graph passes; returns the names of the passes that changed the graph."""
    path.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.rand(1, in_ch, size, size)
    dims = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
        torch.onnx.export(
            model.eval().cpu(),
            (dummy,),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": dims, "output": dims},
        )
    graph = onnx.load(str(path))
    passes = ["prelu-as-batchnorm"] if prelu_as_batchnorm(graph) else []
    if passes:
        onnx.save(graph, str(path))
    return passes


def session(path: Path, threads: int = 0) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def parity(model: nn.Module, onnx_path: Path, multiple: int = 1, in_ch: int = 3) -> float:
    """Largest absolute difference between PyTorch and ONNX Runtime outputs, at sizes
    other than the export size (odd ones where the model allows them)."""
    sides = ((37, 53), (48, 30)) if multiple == 1 else ((36, 52), (48, 28))
    shapes = ((1, in_ch, *sides[0]), (2, in_ch, *sides[1]))
    sess = session(onnx_path)
    worst = 0.0
    gen = torch.Generator().manual_seed(0)
    for shape in shapes:
        x = torch.rand(*shape, generator=gen)
        with torch.no_grad():
            ref = model.eval().cpu()(x).numpy()
        got = sess.run(None, {"input": x.numpy()})[0]
        assert got.shape == ref.shape, f"ONNX output {got.shape} != PyTorch {ref.shape} for input {shape}"
        worst = max(worst, float(np.abs(got - ref).max()))
    return worst


def describe_losses(cfg: dict[str, Any], perceptual: str) -> str:
    pixel = {"l1": "L1", "charbonnier": "Charbonnier"}.get(cfg.get("loss", "l1"), cfg.get("loss", ""))
    if cfg.get("stage", "psnr") != "gan":
        return pixel
    parts = [f"{cfg.get('pixel_weight', 1.0)} x {pixel}"]
    if cfg.get("perceptual_weight"):
        parts.append(f"{cfg['perceptual_weight']} x perceptual ({perceptual})")
    parts.append(f"{cfg.get('gan_weight')} x {cfg.get('gan_type')} GAN ({cfg.get('discriminator')})")
    return " + ".join(parts) + f"; generator initialised from {cfg.get('init_from') or 'scratch'}"


def build_card(
    ckpt: dict[str, Any],
    onnx_path: Path,
    model_id: str,
    quality: dict[str, Any],
    variant: str,
    default: bool,
    graph_passes: list[str],
) -> ModelCard:
    cfg = ckpt["config"]
    arch = ckpt["arch"]
    model = archs.build(arch["name"], arch["args"])
    in_ch = archs.input_channels(arch["name"], arch["args"])
    noise_level = None
    if arch["name"] == "DenoiseUNet":
        noise_level = NoiseLevel(
            channel=in_ch - 1,
            sigma_per_unit=LEVEL_SCALE,
            blind_value=BLIND,
            trained_max_sigma=float(cfg.get("max_sigma", 50.0)),
        )
    history = ckpt.get("history") or [{}]
    scale = cfg["scale"]
    data = [DATA_TERMS.get(s, s) for s in cfg["train_sets"]]
    return ModelCard(
        id=model_id,
        task=cfg["task"],
        variant=variant,
        scale=scale,
        default=default,
        file=onnx_path.name,
        sha256=file_sha256(onnx_path),
        bytes=onnx_path.stat().st_size,
        opset=OPSET,
        graph_passes=graph_passes,
        architecture=Architecture(
            name=arch["name"],
            args=arch["args"],
            params=archs.count_params(model),
            receptive_radius=archs.receptive_radius(arch["name"], arch["args"]),
        ),
        io=ModelIO(
            inputs=[TensorSpec(name="input", shape=[-1, in_ch, -1, -1])],
            outputs=[TensorSpec(name="output", shape=[-1, 3, -1, -1])],
            size_multiple=archs.size_multiple(arch["name"], arch["args"]),
            noise_level=noise_level,
        ),
        training=Training(
            command=ckpt.get("command", ""),
            data=data,
            config=cfg,
            steps=int(ckpt.get("step", 0)),
            wall_seconds=round(float(history[-1].get("elapsed", 0.0)), 1),
            device=ckpt.get("device", ""),
            framework=f"torch {ckpt.get('torch', '?')}",
            losses=describe_losses(cfg, ckpt.get("perceptual", "none")),
        ),
        quality=quality,
        data_terms=ckpt.get("data_terms")
        or "Trained on " + ", ".join(data) + ": research data sets whose original terms apply (research use).",
        created=datetime.now(UTC).replace(microsecond=0).isoformat(),
    )
