"""``weights_as_fp16`` and its inverse on hand-made graphs, run by ONNX Runtime."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from imgenhance.onnx_passes import FP16_SUFFIX, fp16_weights_as_fp32, stored_as_fp16, weights_as_fp16


def conv_net(channels: int = 32, scale: float = 0.1, weight_is_input: bool = False) -> onnx.ModelProto:
    """Conv(C -> C, 3x3) with a bias: a weight of 9 C^2 values (9,216 at 32) and a bias of C."""
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((channels, channels, 3, 3)).astype(np.float32) * scale
    bias = rng.standard_normal(channels).astype(np.float32)
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", channels, "h", "w"])]
    if weight_is_input:  # an initialiser a caller may override at run time
        inputs.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, list(weight.shape)))
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w", "b"], ["output"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])],
        "conv",
        inputs,
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["n", channels, "h", "w"])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(None, {"input": x})[0])


def weights(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def ops(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node]


def test_large_weights_are_stored_as_fp16_and_computed_as_the_rounded_fp32_weights() -> None:
    model, x = conv_net(), np.random.default_rng(1).random((2, 32, 9, 7), dtype=np.float32)
    original = weights(model)
    assert weights_as_fp16(model) == 1
    stored = weights(model)
    assert stored[f"w{FP16_SUFFIX}"].dtype == np.float16 and stored["b"].dtype == np.float32  # the bias is small
    assert ops(model) == ["Cast", "Conv"]

    rounded = conv_net()
    rounded.graph.initializer[0].CopyFrom(
        numpy_helper.from_array(original["w"].astype(np.float16).astype(np.float32), "w")
    )
    np.testing.assert_allclose(run(model, x), run(rounded, x), rtol=0, atol=1e-6)
    assert 0 < np.abs(run(model, x) - run(conv_net(), x)).max() < 1e-2  # rounding changed something, a little


def test_the_inverse_gives_back_float32_initialisers_under_the_names_the_graph_reads() -> None:
    model, x = conv_net(), np.random.default_rng(2).random((1, 32, 5, 6), dtype=np.float32)
    weights_as_fp16(model)
    before = run(model, x)
    assert fp16_weights_as_fp32(model) == 1
    restored = weights(model)
    assert set(restored) == {"w", "b"} and restored["w"].dtype == np.float32
    assert ops(model) == ["Conv"]
    np.testing.assert_array_equal(run(model, x), before)
    assert fp16_weights_as_fp32(model) == 0  # nothing left to undo


def test_small_weights_out_of_range_weights_and_graph_inputs_stay_float32() -> None:
    for model in (conv_net(channels=16), conv_net(scale=1e5), conv_net(weight_is_input=True)):
        assert weights_as_fp16(model) == 0
        assert ops(model) == ["Conv"] and weights(model)["w"].dtype == np.float32
    assert stored_as_fp16(4096, 65504.0) and not stored_as_fp16(4095, 1.0) and not stored_as_fp16(10**6, 7e4)


def test_only_casts_to_float32_are_undone() -> None:
    model = conv_net()
    weights_as_fp16(model)
    for attribute in model.graph.node[0].attribute:
        attribute.i = TensorProto.DOUBLE  # no longer the pass's Cast
    assert fp16_weights_as_fp32(model) == 0
