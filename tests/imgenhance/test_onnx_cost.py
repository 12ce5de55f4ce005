"""imgenhance.onnx_cost (cards, bench/flops.py) counts what a hand count gives on a small graph."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from imgenhance.onnx_cost import conv_flops_per_pixel


def test_conv_and_conv_transpose_flops_per_input_pixel() -> None:
    conv_w = numpy_helper.from_array(np.zeros((8, 3, 3, 3), np.float32), "conv_w")
    up_w = numpy_helper.from_array(np.zeros((8, 3, 2, 2), np.float32), "up_w")
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "conv_w"], ["h"], pads=[1, 1, 1, 1]),
            helper.make_node("ConvTranspose", ["h", "up_w"], ["y"], strides=[2, 2]),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3, "h2", "w2"])],
        [conv_w, up_w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    # per input pixel: the conv 2 * 8 * 3 * 9 at each output pixel (same size), the
    # transposed conv 2 * 8 * 3 * 4 at each of its input pixels (same size again)
    assert conv_flops_per_pixel(model, 16) == 2 * 8 * 3 * 9 + 2 * 8 * 3 * 4
    assert conv_flops_per_pixel(model, 24) == conv_flops_per_pixel(model, 16)  # per pixel: size-free
