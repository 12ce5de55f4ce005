"""``weights_as_fp16`` and its inverse on a hand-made graph, run by ONNX Runtime."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from imgenhance.onnx_passes import FP16_SUFFIX, fp16_weights_as_fp32, weights_as_fp16


def conv_net() -> onnx.ModelProto:
    """Conv(16 -> 16, 3x3) with a bias: a weight of 2,304 values and a bias of 16."""
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((16, 16, 3, 3)).astype(np.float32) * 0.1
    bias = rng.standard_normal(16).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w", "b"], ["output"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])],
        "conv",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 16, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["n", 16, "h", "w"])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(None, {"input": x})[0])


def weights(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def test_large_weights_are_stored_as_fp16_and_computed_as_the_rounded_fp32_weights() -> None:
    model, x = conv_net(), np.random.default_rng(1).random((2, 16, 9, 7), dtype=np.float32)
    original = weights(model)
    assert weights_as_fp16(model, min_elements=1000) == 1
    stored = weights(model)
    assert stored[f"w{FP16_SUFFIX}"].dtype == np.float16 and stored["b"].dtype == np.float32  # the bias is small
    assert [n.op_type for n in model.graph.node] == ["Cast", "Conv"]

    rounded = conv_net()
    rounded.graph.initializer[0].CopyFrom(
        numpy_helper.from_array(original["w"].astype(np.float16).astype(np.float32), "w")
    )
    np.testing.assert_allclose(run(model, x), run(rounded, x), rtol=0, atol=1e-6)
    assert 0 < np.abs(run(model, x) - run(conv_net(), x)).max() < 1e-2  # rounding changed something, a little


def test_the_inverse_gives_back_float32_initialisers_under_the_names_the_graph_reads() -> None:
    model, x = conv_net(), np.random.default_rng(2).random((1, 16, 5, 6), dtype=np.float32)
    weights_as_fp16(model, min_elements=1000)
    before = run(model, x)
    assert fp16_weights_as_fp32(model) == 1
    restored = weights(model)
    assert set(restored) == {"w", "b"} and restored["w"].dtype == np.float32
    assert [n.op_type for n in model.graph.node] == ["Conv"]
    np.testing.assert_array_equal(run(model, x), before)
    assert fp16_weights_as_fp32(model) == 0  # nothing left to undo


def test_nothing_below_the_size_threshold_changes() -> None:
    model = conv_net()
    assert weights_as_fp16(model, min_elements=10_000) == 0
    assert [n.op_type for n in model.graph.node] == ["Conv"]
