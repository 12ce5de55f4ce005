"""Graph rewrites, each exact up to float rounding: applied by ``training`` at export and by
the worker when it opens a graph on the CPU (imported models have not had them).

``prelu_as_batchnorm``: ONNX Runtime's CPU provider runs convolutions in a blocked
channel layout (NCHWc) but has no blocked PRelu, so every PRelu costs a reorder out of
and back into that layout (35 reorders in SRVGGNetCompact). Written as
``BN_a(x) + BN_(1-a)(relu(x))`` (per-channel scales), every op stays blocked: the
BatchNorms become depthwise convolutions with the Add fused in. Measured 16-20% faster
on a 2-core AVX2 CPU (bench/inference.py); CUDA is unaffected.

``weights_as_fp16``: a file half the size for big models (a 23-block RRDBNet is 67 MB in
float32), arithmetic unchanged: each large float32 weight is stored as float16 and read
through a Cast to float32, which ONNX Runtime folds when it opens the graph. Not exact by
itself (the weights are rounded), so export rounds the PyTorch model first and checks
parity against that; ``fp16_weights_as_fp32`` undoes it for readers of initialisers
(ncnn, FLOP counts, PyTorch rebuilds).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


def _channel_scale(inp: str, prefix: str, factor: str, out: str) -> onnx.NodeProto:
    """out = inp * factor per channel, as a BatchNormalization (mean 0, var 1, bias 0)."""
    return helper.make_node(
        "BatchNormalization",
        [inp, f"{prefix}/{factor}", f"{prefix}/zero", f"{prefix}/zero", f"{prefix}/one"],
        [out],
        epsilon=0.0,
    )


def prelu_as_batchnorm(model: onnx.ModelProto) -> int:
    """Rewrite in place every PRelu whose slope is a constant; returns how many."""
    graph = model.graph
    constants = {init.name: init for init in graph.initializer}
    nodes: list[onnx.NodeProto] = []
    rewritten = 0
    for node in graph.node:
        if node.op_type != "PRelu" or node.input[1] not in constants:
            nodes.append(node)
            continue
        x, slope_name = node.input
        y = node.output[0]
        slope = numpy_helper.to_array(constants[slope_name]).reshape(-1).astype(np.float32)
        channels = slope.shape[0]
        prefix = f"{y}/prelu"
        for suffix, value in (
            ("a", slope),
            ("1-a", 1.0 - slope),
            ("zero", np.zeros(channels, np.float32)),
            ("one", np.ones(channels, np.float32)),
        ):
            graph.initializer.append(numpy_helper.from_array(value, f"{prefix}/{suffix}"))

        nodes += [
            helper.make_node("Relu", [x], [f"{prefix}/relu"]),
            _channel_scale(x, prefix, "a", f"{prefix}/neg"),
            _channel_scale(f"{prefix}/relu", prefix, "1-a", f"{prefix}/pos"),
            helper.make_node("Add", [f"{prefix}/neg", f"{prefix}/pos"], [y]),
        ]
        rewritten += 1
    _set_nodes(model, nodes)
    return rewritten


FP16_SUFFIX = "/fp16"
FP16_MIN_ELEMENTS = 4096  # smaller weights (biases, norms, slopes) stay float32: they are a rounding error of the file
FP16_MAX = 65504.0


def stored_as_fp16(elements: int, largest_magnitude: float) -> bool:
    """Whether ``weights_as_fp16`` stores a float32 weight of this size and range as float16
    (one rule, also used to round the PyTorch model that the file is checked against)."""
    return elements >= FP16_MIN_ELEMENTS and largest_magnitude <= FP16_MAX


def weights_as_fp16(model: onnx.ModelProto) -> int:
    """Store, in place, every float32 initialiser that ``stored_as_fp16`` picks as float16
    behind a Cast back to float32; returns how many. Initialisers that are also graph
    inputs (overridable at run time) stay as they are."""
    graph = model.graph
    taken = {i.name for i in graph.initializer} | {i.name for i in graph.input}
    taken |= {name for n in graph.node for name in [*n.input, *n.output]}
    inputs = {i.name for i in graph.input}
    casts: list[onnx.NodeProto] = []
    kept: list[onnx.TensorProto] = []
    for init in graph.initializer:
        values = numpy_helper.to_array(init) if init.data_type == onnx.TensorProto.FLOAT else None
        big = values is not None and values.size and stored_as_fp16(values.size, float(np.abs(values).max()))
        if values is None or not big or init.name in inputs or init.name + FP16_SUFFIX in taken:
            kept.append(init)
            continue
        half = numpy_helper.from_array(values.astype(np.float16), init.name + FP16_SUFFIX)
        kept.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=onnx.TensorProto.FLOAT))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    _set_nodes(model, casts + list(graph.node))
    return len(casts)


def fp16_weights_as_fp32(model: onnx.ModelProto) -> int:
    """The inverse of ``weights_as_fp16``, in place: each float16 weight behind its Cast
    becomes a float32 initialiser under the name the graph reads; returns how many."""
    graph = model.graph
    halves = {i.name: i for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT16}
    restored: dict[str, onnx.TensorProto] = {}
    nodes = []
    for node in graph.node:
        source = node.input[0] if node.op_type == "Cast" and node.input else ""
        to_float = any(a.name == "to" and a.i == onnx.TensorProto.FLOAT for a in node.attribute)
        if source in halves and source == node.output[0] + FP16_SUFFIX and to_float:
            values = numpy_helper.to_array(halves[source]).astype(np.float32)
            restored[node.output[0]] = numpy_helper.from_array(values, node.output[0])
        else:
            nodes.append(node)
    if restored:
        graph.initializer.extend(restored.values())
        _set_nodes(model, nodes)
    return len(restored)


def _consumers(graph: onnx.GraphProto) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            counts[name] = counts.get(name, 0) + 1
    for out in graph.output:
        counts[out.name] = counts.get(out.name, 0) + 1
    return counts


def batchnorm_as_prelu(model: onnx.ModelProto) -> int:
    """The inverse of ``prelu_as_batchnorm``, in place: each ``BN_a(x) + BN_(1-a)(relu(x))``
    it wrote (recognised by its names and checked by its values) back to one PRelu with a
    (C, 1, 1) slope; returns how many. For engines that have a PRelu of their own (ncnn):
    there the rewritten form only costs time and precision."""
    graph = model.graph
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    uses = _consumers(graph)

    def scale_of(node: onnx.NodeProto | None, inp: str, prefix: str, factor: str) -> np.ndarray | None:
        """The per-channel factor of a ``_channel_scale`` BatchNorm of ``inp``, or None."""
        if node is None or node.op_type != "BatchNormalization" or len(node.output) != 1:
            return None
        expected = [inp, f"{prefix}/{factor}", f"{prefix}/zero", f"{prefix}/zero", f"{prefix}/one"]
        if list(node.input) != expected or any(name not in constants for name in expected[1:]):
            return None
        if any(a.name == "epsilon" and a.f != 0.0 for a in node.attribute):
            return None
        if np.any(constants[f"{prefix}/zero"] != 0) or np.any(constants[f"{prefix}/one"] != 1):
            return None
        return constants[f"{prefix}/{factor}"].astype(np.float32).reshape(-1)

    drop: set[int] = set()  # ids of the nodes a PRelu replaces
    replace: dict[int, onnx.NodeProto] = {}
    for node in graph.node:
        if node.op_type != "Add" or len(node.input) != 2:
            continue
        y = node.output[0]
        prefix = f"{y}/prelu"
        neg_name, pos_name, relu_name = f"{prefix}/neg", f"{prefix}/pos", f"{prefix}/relu"
        if list(node.input) != [neg_name, pos_name]:
            continue
        neg, pos, relu = producer.get(neg_name), producer.get(pos_name), producer.get(relu_name)
        if relu is None or relu.op_type != "Relu" or len(relu.input) != 1:
            continue
        x = relu.input[0]
        slope = scale_of(neg, x, prefix, "a")
        rest = scale_of(pos, relu_name, prefix, "1-a")
        if slope is None or rest is None or not np.array_equal(rest, np.float32(1.0) - slope):
            continue
        if any(uses.get(name, 0) != 1 for name in (neg_name, pos_name)) or uses.get(relu_name, 0) != 1:
            continue
        slope_name = f"{prefix}/slope"
        graph.initializer.append(numpy_helper.from_array(slope.reshape(-1, 1, 1), slope_name))
        replace[id(node)] = helper.make_node("PRelu", [x, slope_name], [y])
        drop.update({id(neg), id(pos), id(relu)})
    nodes = [replace.get(id(n), n) for n in graph.node if id(n) not in drop]
    _set_nodes(model, nodes)
    return len(replace)


def _set_nodes(model: onnx.ModelProto, nodes: list[onnx.NodeProto]) -> None:
    """Replace the graph's nodes, drop the initialisers no node reads any more, and check it."""
    graph = model.graph
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for n in graph.node for name in n.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    onnx.checker.check_model(model)
