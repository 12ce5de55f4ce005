"""``export --fp16-weights``: half the file, parity checked against the rounded weights,
and every reader of the file (PyTorch rebuild, ncnn conversion, FLOP count) sees the
weights it computes with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch

from imgenhance.onnx_cost import conv_flops_per_pixel
from tests.support import images
from training import archs
from training.checkpoint import ArchSpec, Checkpoint
from training.export import export_onnx, rounded_to_fp16
from training.from_onnx import load_from_card
from training.publish import publish
from worker.ncnn_engine import convert
from worker.runtime import open_session


def checkpoint() -> Checkpoint:
    """A compact x2 net wide enough (32 features) that its 3x3 kernels count as large weights."""
    torch.manual_seed(0)
    spec = ArchSpec("SRVGGNetCompact", archs.full_args("SRVGGNetCompact", {"num_feat": 32, "num_conv": 6}, 2))
    net = spec.build()
    with torch.no_grad():  # distinct slopes: the exporter would share equal ones through Identity nodes
        for module in net.modules():
            if isinstance(module, torch.nn.PReLU):
                module.weight.uniform_(-0.5, 0.8)
    return Checkpoint(config={"name": "t", "task": "super-resolve", "scale": 2}, arch=spec, params=net.state_dict())


def test_fp16_weights_halve_the_file_and_compute_what_the_rounded_model_computes(tmp_path: Path) -> None:
    ckpt = checkpoint()
    full = publish(ckpt, "full", tmp_path, "general", False, None)
    half = publish(ckpt, "half", tmp_path, "quality", False, None, fp16_weights=True)
    assert "weights-fp16" in half.graph_passes and "weights-fp16" not in full.graph_passes
    assert half.bytes < 0.6 * full.bytes
    assert half.onnx_parity_max_abs_diff is not None and half.onnx_parity_max_abs_diff <= 1e-4

    rounded = rounded_to_fp16(ckpt.generator())
    rebuilt = load_from_card(tmp_path / "half.json")
    for key, value in rounded.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[key], value), key

    x = images.photo(23, 19, seed=3)[None].transpose(0, 3, 1, 2).astype(np.float32) / 255
    with torch.no_grad():
        expected = rounded(torch.from_numpy(x)).numpy()
    got = open_session(tmp_path / "half.onnx").run(None, {"input": x})[0]
    assert np.abs(got - expected).max() < 1e-5

    graph = onnx.load(str(tmp_path / "half.onnx"))
    assert (
        half.architecture.flops_per_pixel == round(conv_flops_per_pixel(graph, 64)) == full.architecture.flops_per_pixel
    )
    export_onnx(rounded, tmp_path / "rounded.onnx")  # the rounded weights stored as float32
    from_half, from_rounded = convert(graph), convert(onnx.load(str(tmp_path / "rounded.onnx")))
    assert from_half.param == from_rounded.param and from_half.weights == from_rounded.weights
