"""``IMGENHANCE_CPU_ENGINE=ncnn``: ONNX graphs converted to ncnn and run on its CPU kernels.

ncnn's Winograd convolutions run SRVGGNetCompact 1.5-2.4x faster than ONNX Runtime at fp32
(bench/peers.py). Its own converter (pnnx) needs torch, which the worker does not install,
so this module converts the ONNX graph itself, with numpy and ``onnx``, into ncnn's
``.param`` text and ``.bin`` weights (fp32). The ops handled are those of the
super-resolution models: Conv (+ a fused Relu / LeakyRelu), PRelu, Relu, LeakyRelu,
BatchNormalization, Add / Sub / Mul / Div (two tensors, or a tensor and a scalar), Sum,
Concat (channels), DepthToSpace, Resize (nearest, asymmetric, floor, constant scales),
Slice (channels, or what the input really holds: identity) and Identity. The PRelus that
``prelu_as_batchnorm`` rewrote at export (for ORT's blocked layout) are put back first
(``batchnorm_as_prelu``): ncnn has its own PReLU, and runs it 100x closer to ORT.

Any graph with another op, or whose conversion does not match ONNX Runtime within the
cards' parity bound (1e-4) on a small input at load, runs on ONNX Runtime instead, with one
warning: the engine setting never stops a worker. Conversion takes well under a second
(it is done at each load, in memory, then the files ncnn reads are deleted).

An ncnn ``Mat`` is one image (C, H, W): a batch runs item by item. One ``Net`` serves all
threads: ``create_extractor`` is thread-safe (Tencent/ncnn#4774), and each run makes its
own extractor. ncnn releases the GIL while it computes, so heartbeats keep beating.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from imgenhance.cards import PARITY_TOLERANCE as PARITY
from imgenhance.onnx_passes import batchnorm_as_prelu, fp16_weights_as_fp32

if TYPE_CHECKING:
    from worker.runtime import Session

log = logging.getLogger("imgenhance.worker")

MAGIC = 7767517
PARITY_SHAPE = (32, 48)  # (H, W) of the check at load: multiples of every card's size_multiple
PROVIDER = "ncnn CPU (fp32)"
INSTALL_HINT = "pip install 'imgenhance[worker,ncnn]'"

_BINARY = {"Add": 0, "Sub": 1, "Mul": 2, "Div": 3}
_REVERSED = {"Add": 0, "Sub": 7, "Mul": 2, "Div": 8}  # scalar OP tensor: ncnn's rsub, rdiv


class Unsupported(ValueError):
    """A graph the converter cannot express in ncnn; ``op`` names what stopped it."""

    def __init__(self, op: str, why: str = "") -> None:
        super().__init__(f"{op}{': ' + why if why else ''}")
        self.op = op


@dataclass
class _Layer:
    kind: str
    name: str
    inputs: list[str]
    outputs: list[str]
    params: list[str] = field(default_factory=list)
    weights: list[bytes] = field(default_factory=list)

    def line(self) -> str:
        head = f"{self.kind} {self.name} {len(self.inputs)} {len(self.outputs)}"
        return " ".join([head, *self.inputs, *self.outputs, *self.params])


@dataclass(frozen=True)
class NcnnGraph:
    """A converted graph: ncnn's param text and weight bytes, and the ONNX names of its I/O."""

    param: str
    weights: bytes
    input_name: str
    output_name: str
    input_blob: str = "in0"
    output_blob: str = "out0"


def _float(value: float) -> str:
    return f"{float(np.float32(value)):.9e}"  # ncnn reads a value with '.' or 'e' as a float


def _floats(key: int, values: list[float]) -> str:
    return f"{-23300 - key}={len(values)}," + ",".join(_float(v) for v in values)


def _fp32(array: np.ndarray) -> bytes:
    return np.ascontiguousarray(array, "<f4").tobytes()


def _tagged(array: np.ndarray) -> bytes:
    """A weight ncnn reads with its storage tag first (0: raw fp32)."""
    return b"\0\0\0\0" + _fp32(array)


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def convert(model: onnx.ModelProto) -> NcnnGraph:
    """The graph in ncnn's format; raises ``Unsupported`` for what ncnn cannot run as it is."""
    work = onnx.ModelProto()
    work.CopyFrom(model)
    fp16_weights_as_fp32(work)
    batchnorm_as_prelu(work)
    try:
        work = onnx.shape_inference.infer_shapes(work)
    except Exception:  # shapes only help Slice; without them it is refused
        log.debug("ONNX shape inference failed", exc_info=True)
    return _Converter(work.graph).run()


class _Converter:
    def __init__(self, graph: onnx.GraphProto) -> None:
        self.graph = graph
        self.consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant":
                value = _attrs(node).get("value")
                if not isinstance(value, TensorProto):
                    raise Unsupported("Constant", "only tensor-valued constants are handled")
                self.consts[node.output[0]] = numpy_helper.to_array(value)
        self.shapes: dict[str, list[int | None]] = {}
        for info in [*graph.input, *graph.value_info, *graph.output]:
            dims = info.type.tensor_type.shape.dim
            self.shapes[info.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
        self.users: dict[str, list[onnx.NodeProto]] = {}
        for node in graph.node:
            for name in node.input:
                self.users.setdefault(name, []).append(node)
        self.outputs = {o.name for o in graph.output}
        self.blobs: dict[str, str] = {}  # ONNX tensor -> ncnn blob
        self.layers: list[_Layer] = []
        self.fused: set[int] = set()  # ids of activation nodes folded into their convolution

    # Blobs.

    def blob(self, name: str) -> str:
        if name in self.consts:
            raise Unsupported("constant operand", f"{name} is a constant where ncnn needs a blob")
        if name not in self.blobs:
            raise Unsupported("graph", f"{name} is used before it is computed")
        return self.blobs[name]

    def new_blob(self, name: str) -> str:
        self.blobs[name] = f"b{len(self.blobs)}"
        return self.blobs[name]

    def const(self, node: onnx.NodeProto, index: int) -> np.ndarray:
        if index >= len(node.input) or node.input[index] not in self.consts:
            raise Unsupported(node.op_type, f"input {index} must be a constant")
        return self.consts[node.input[index]]

    def add(self, kind: str, node: onnx.NodeProto, inputs: list[str], params: list[str], *weights: bytes) -> None:
        outputs = [self.new_blob(name) for name in node.output[:1]]
        self.layers.append(_Layer(kind, f"{kind}_{len(self.layers)}", inputs, outputs, params, list(weights)))

    # The graph.

    def run(self) -> NcnnGraph:
        graph = self.graph
        inputs = [i for i in graph.input if i.name not in self.consts]
        if len(inputs) != 1 or len(graph.output) != 1:
            raise Unsupported("graph", "one image input and one output are handled")
        for info in (inputs[0], graph.output[0]):
            if info.type.tensor_type.elem_type != TensorProto.FLOAT or len(info.type.tensor_type.shape.dim) != 4:
                raise Unsupported("graph", f"{info.name} is not a float32 NCHW tensor")
        self.blobs[inputs[0].name] = "in0"
        self.layers.append(_Layer("Input", "input", [], ["in0"]))
        for node in graph.node:
            if node.op_type == "Constant" or id(node) in self.fused:
                continue
            handler = getattr(self, f"_{node.op_type}", None)
            if handler is None:
                raise Unsupported(node.op_type, "the ncnn converter does not handle this op")
            handler(node)
        out = graph.output[0].name
        final = self.blob(out)
        if final == "in0":
            raise Unsupported("graph", "the output is the input")
        for layer in self.layers:  # the output blob gets its fixed name
            layer.inputs = ["out0" if b == final else b for b in layer.inputs]
            layer.outputs = ["out0" if b == final else b for b in layer.outputs]
        self._splits()
        blob_count = len({b for layer in self.layers for b in layer.outputs})
        lines = [str(MAGIC), f"{len(self.layers)} {blob_count}", *(layer.line() for layer in self.layers)]
        weights = b"".join(w for layer in self.layers for w in layer.weights)
        return NcnnGraph("\n".join(lines) + "\n", weights, inputs[0].name, out)

    def _splits(self) -> None:
        """ncnn needs a Split layer wherever a blob feeds several layers."""
        uses: dict[str, int] = {}
        for layer in self.layers:
            for b in layer.inputs:
                uses[b] = uses.get(b, 0) + 1
        copies: dict[str, list[str]] = {}
        laid: list[_Layer] = []
        for layer in self.layers:
            layer.inputs = [copies[b].pop(0) if b in copies else b for b in layer.inputs]
            laid.append(layer)
            for b in layer.outputs:
                if uses.get(b, 0) > 1:
                    copies[b] = [f"{b}_{i}" for i in range(uses[b])]
                    laid.append(_Layer("Split", f"split_{b}", [b], list(copies[b])))
        self.layers = laid

    # Ops.

    def _Conv(self, node: onnx.NodeProto) -> None:
        a = _attrs(node)
        w = self.const(node, 1).astype(np.float32)
        if w.ndim != 4 or _text(a.get("auto_pad", "NOTSET")) != "NOTSET":
            raise Unsupported("Conv", "2-D convolutions with explicit pads are handled")
        c_out, _, kh, kw = w.shape
        bias = self.const(node, 2).astype(np.float32) if len(node.input) > 2 and node.input[2] else None
        top, left, bottom, right = a.get("pads", [0, 0, 0, 0])
        dh, dw = a.get("dilations", [1, 1])
        sh, sw = a.get("strides", [1, 1])
        group = int(a.get("group", 1))
        params = [f"0={c_out}", f"1={kw}", f"11={kh}", f"2={dw}", f"12={dh}", f"3={sw}", f"13={sh}"]
        params += [f"4={left}", f"14={top}", f"15={right}", f"16={bottom}", f"5={int(bias is not None)}"]
        params.append(f"6={w.size}")
        if group != 1:
            params.append(f"7={group}")
        # A Relu or LeakyRelu that alone reads the convolution runs inside it.
        users = self.users.get(node.output[0], [])
        target = node
        if node.output[0] not in self.outputs and len(users) == 1 and users[0].op_type in ("Relu", "LeakyRelu"):
            act = users[0]
            target = act
            self.fused.add(id(act))
            if act.op_type == "Relu":
                params.append("9=1")
            else:
                params += ["9=2", _floats(10, [float(_attrs(act).get("alpha", 0.01))])]
        weights = [_tagged(w)] + ([_fp32(bias)] if bias is not None else [])
        kind = "Convolution" if group == 1 else "ConvolutionDepthWise"
        self.add(kind, target, [self.blob(node.input[0])], params, *weights)

    def _Relu(self, node: onnx.NodeProto) -> None:
        self.add("ReLU", node, [self.blob(node.input[0])], [])

    def _LeakyRelu(self, node: onnx.NodeProto) -> None:
        self.add("ReLU", node, [self.blob(node.input[0])], [f"0={_float(_attrs(node).get('alpha', 0.01))}"])

    def _PRelu(self, node: onnx.NodeProto) -> None:
        slope = self.const(node, 1).astype(np.float32)
        dims = [1] * (4 - slope.ndim) + list(slope.shape)
        if slope.ndim > 4 or dims[0] != 1 or dims[2:] != [1, 1]:
            raise Unsupported("PRelu", f"slope of shape {slope.shape} is not per channel")
        self.add("PReLU", node, [self.blob(node.input[0])], [f"0={slope.size}"], _fp32(slope.reshape(-1)))

    def _BatchNormalization(self, node: onnx.NodeProto) -> None:
        if len(node.output) != 1:
            raise Unsupported("BatchNormalization", "training mode is not handled")
        scale, bias, mean, var = (self.const(node, i).astype(np.float32).reshape(-1) for i in range(1, 5))
        eps = float(_attrs(node).get("epsilon", 1e-5))
        weights = (_fp32(scale), _fp32(mean), _fp32(var), _fp32(bias))
        self.add("BatchNorm", node, [self.blob(node.input[0])], [f"0={scale.size}", f"1={_float(eps)}"], *weights)

    def _binary(self, node: onnx.NodeProto) -> None:
        left, right = node.input
        if left not in self.consts and right not in self.consts:
            shapes = [self.shapes.get(name) for name in (left, right)]
            if shapes[0] is not None and shapes[1] is not None and len(shapes[0]) != len(shapes[1]):
                raise Unsupported(node.op_type, "operands of different ranks")
            self.add("BinaryOp", node, [self.blob(left), self.blob(right)], [f"0={_BINARY[node.op_type]}"])
            return
        scalar_first = left in self.consts
        value = self.consts[left if scalar_first else right]
        if value.size != 1:
            raise Unsupported(node.op_type, "a constant operand that is not a scalar")
        op = (_REVERSED if scalar_first else _BINARY)[node.op_type]
        tensor = right if scalar_first else left
        self.add("BinaryOp", node, [self.blob(tensor)], [f"0={op}", "1=1", f"2={_float(value.reshape(-1)[0])}"])

    _Add = _Sub = _Mul = _Div = _binary

    def _Sum(self, node: onnx.NodeProto) -> None:
        if len(node.input) == 1:
            self.blobs[node.output[0]] = self.blob(node.input[0])
            return
        self.add("Eltwise", node, [self.blob(b) for b in node.input], ["0=1"])

    def _Concat(self, node: onnx.NodeProto) -> None:
        axis = int(_attrs(node)["axis"])
        if axis not in (1, -3):
            raise Unsupported("Concat", f"axis {axis} (only channels are handled)")
        self.add("Concat", node, [self.blob(b) for b in node.input], ["0=0"])

    def _DepthToSpace(self, node: onnx.NodeProto) -> None:
        a = _attrs(node)
        mode = {"CRD": 0, "DCR": 1}[_text(a.get("mode", "DCR"))]
        self.add("PixelShuffle", node, [self.blob(node.input[0])], [f"0={int(a['blocksize'])}", f"1={mode}"])

    def _Resize(self, node: onnx.NodeProto) -> None:
        a = _attrs(node)
        how = (_text(a.get("mode", "nearest")), _text(a.get("coordinate_transformation_mode", "half_pixel")))
        if how != ("nearest", "asymmetric") or _text(a.get("nearest_mode", "round_prefer_floor")) != "floor":
            raise Unsupported("Resize", f"{how} (only nearest, asymmetric, floor is handled)")
        if len(node.input) > 3 and node.input[3]:
            raise Unsupported("Resize", "output sizes (only scales are handled)")
        scales = self.const(node, 2).astype(np.float32).reshape(-1)
        if scales.size != 4 or scales[0] != 1 or scales[1] != 1:
            raise Unsupported("Resize", f"scales {scales.tolist()} (only height and width are handled)")
        params = ["0=1", f"1={_float(scales[2])}", f"2={_float(scales[3])}"]
        self.add("Interp", node, [self.blob(node.input[0])], params)

    def _Slice(self, node: onnx.NodeProto) -> None:
        starts, ends = self.const(node, 1).reshape(-1), self.const(node, 2).reshape(-1)
        axes = self.const(node, 3).reshape(-1) if len(node.input) > 3 and node.input[3] else np.arange(starts.size)
        steps = self.const(node, 4).reshape(-1) if len(node.input) > 4 and node.input[4] else np.ones_like(starts)
        shape = self.shapes.get(node.input[0])
        if shape is None or len(shape) != 4:
            raise Unsupported("Slice", "the input's rank is unknown")
        crop: dict[int, tuple[int, int]] = {}  # ncnn axis (channels 0) -> start, end (-233: to the end)
        for start, end, axis, step in zip(starts.tolist(), ends.tolist(), axes.tolist(), steps.tolist(), strict=True):
            axis %= 4
            size = shape[axis]
            if step != 1:
                raise Unsupported("Slice", f"step {step}")
            if size is not None:  # ONNX's clamping, on a known size
                begin = min(max(start + size if start < 0 else start, 0), size)
                stop = min(max(end + size if end < 0 else end, 0), size)
                if stop <= begin:
                    raise Unsupported("Slice", "an empty slice")
                cut = (begin, -233 if stop == size else stop)
            elif start >= 0 and (end < 0 or end >= 2**31 - 1):  # unknown size: to the end, or to the end less a count
                cut = (start, end if end < 0 else -233)
            else:
                raise Unsupported("Slice", f"[{start}:{end}] on axis {axis} of unknown size")
            if cut == (0, -233):
                continue  # all of this axis
            if axis == 0:
                raise Unsupported("Slice", "a slice of the batch")
            crop[axis - 1] = cut
        if not crop:  # it takes everything (the compact models' channels 0:3 of a 3-channel input)
            self.blobs[node.output[0]] = self.blob(node.input[0])
            return
        keys = sorted(crop)
        params = [
            f"{-23300 - key}={len(keys)}," + ",".join(str(v) for v in values)
            for key, values in ((9, [crop[k][0] for k in keys]), (10, [crop[k][1] for k in keys]), (11, keys))
        ]
        self.add("Crop", node, [self.blob(node.input[0])], params)

    def _Identity(self, node: onnx.NodeProto) -> None:
        self.blobs[node.output[0]] = self.blob(node.input[0])

    _Dropout = _Identity


@dataclass(frozen=True)
class _Port:
    name: str


class NcnnSession:
    """A converted graph on ncnn's CPU kernels, fp32, with the ``Session`` methods the worker uses."""

    def __init__(self, model: str | Path | onnx.ModelProto, threads: int = 0) -> None:
        import ncnn

        source = model if isinstance(model, onnx.ModelProto) else onnx.load(str(model))
        self.graph = convert(source)
        net = ncnn.Net()
        opt = net.opt
        opt.use_vulkan_compute = False
        opt.num_threads = threads or os.cpu_count() or 1
        # fp32 throughout: ncnn's defaults store and compute in fp16/bf16 where the CPU has it.
        for name in ("use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic", "use_bf16_storage"):
            setattr(opt, name, False)
        if hasattr(opt, "use_bf16_packed"):
            opt.use_bf16_packed = False
        with tempfile.TemporaryDirectory(prefix="imgenhance-ncnn-") as tmp:
            param, weights = Path(tmp) / "model.param", Path(tmp) / "model.bin"
            param.write_text(self.graph.param)
            weights.write_bytes(self.graph.weights)
            # ncnn copies both while loading (the memory loaders would keep pointers into Python bytes)
            if net.load_param(str(param)) != 0 or net.load_model(str(weights)) != 0:
                raise RuntimeError("ncnn refused the converted graph")
        self.graph = replace(self.graph, weights=b"")  # ncnn holds its own copy
        self._net = net
        self._ncnn = ncnn
        self.threads = opt.num_threads

    def run(self, output_names: list[str] | None, input_feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        if output_names not in (None, [self.graph.output_name]):
            raise ValueError(f"this graph has one output, {self.graph.output_name!r}")
        batch = np.asarray(input_feed[self.graph.input_name], np.float32)
        if batch.ndim != 4:
            raise ValueError(f"input of shape {batch.shape} is not NCHW")
        return [np.stack([self._one(item) for item in batch])]

    def _one(self, image: np.ndarray) -> np.ndarray:
        image = np.ascontiguousarray(image)  # ncnn.Mat reads the array in place: keep it alive until extracted
        extractor = self._net.create_extractor()
        extractor.input(self.graph.input_blob, self._ncnn.Mat(image))
        status, out = extractor.extract(self.graph.output_blob)
        if status != 0:
            raise RuntimeError(f"ncnn failed on an input of shape {image.shape} (status {status})")
        return np.array(out, np.float32)  # a copy: the Mat's memory goes back to ncnn's pool

    def get_inputs(self) -> list[Any]:
        return [_Port(self.graph.input_name)]

    def get_outputs(self) -> list[Any]:
        return [_Port(self.graph.output_name)]

    def get_providers(self) -> list[str]:
        return [PROVIDER]


def parity_input(model: onnx.ModelProto, name: str) -> np.ndarray:
    """The deterministic image the check at load compares the engines on."""
    info = next(i for i in model.graph.input if i.name == name)
    channels = info.type.tensor_type.shape.dim[1].dim_value or 3
    return np.random.default_rng(0).random((1, channels, *PARITY_SHAPE), dtype=np.float32)


def open_ncnn_session(model: str | Path, threads: int = 0) -> Session:
    """The graph on ncnn when it converts and matches ONNX Runtime within ``PARITY``; otherwise on
    ONNX Runtime (one warning says why). Raises ``EngineUnavailable`` without the ncnn package."""
    from worker.runtime import EngineUnavailable, open_session

    try:
        import ncnn  # noqa: F401
    except ImportError as exc:
        raise EngineUnavailable(f"IMGENHANCE_CPU_ENGINE=ncnn needs the ncnn package: {INSTALL_HINT}") from exc
    name = Path(model).name
    graph = onnx.load(str(model))
    try:
        session = NcnnSession(graph, threads)
        x = parity_input(graph, session.graph.input_name)
        reference = open_session(str(model), ["CPUExecutionProvider"], threads, cpu_layout=False)
        expected = reference.run(None, {session.graph.input_name: x})[0]
        got = session.run(None, {session.graph.input_name: x})[0]
        diff = float(np.abs(got - expected).max()) if got.shape == expected.shape else float("inf")
        if not diff <= PARITY:
            raise Unsupported("parity", f"ncnn differs from ONNX Runtime by {diff:.1e} (bound {PARITY:.0e})")
        log.info("%s: ncnn within %.1e of ONNX Runtime", name, diff)
        ncnn_session: Session = session
        return ncnn_session
    except Unsupported as exc:
        log.warning("%s runs on ONNX Runtime, not ncnn: %s", name, exc)
    except Exception as exc:  # a converted graph ncnn will not load or run: the worker still serves it
        log.warning("%s runs on ONNX Runtime, not ncnn: %s: %s", name, type(exc).__name__, exc)
    fallback: Session = open_session(str(model), ["CPUExecutionProvider"], threads)
    return fallback
