"""What a graph costs to run, counted on the graph itself: convolution FLOPs per input pixel.

Written into a model's card at export (``Architecture.flops_per_pixel``) and printed side
by side by ``bench/flops.py``. FLOPs are 2 per multiply-add of every Conv and
ConvTranspose; the other ops are a few percent of these models.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import shape_inference

from imgenhance.onnx_passes import fp16_weights_as_fp32


def conv_flops_per_pixel(model: onnx.ModelProto, side: int) -> float:
    """Convolution FLOPs per input pixel of a graph with one (N, C, H, W) image input."""
    model = onnx.ModelProto.FromString(model.SerializeToString())  # shapes are fixed on a copy
    fp16_weights_as_fp32(model)  # kernels read from initialisers, not through Casts
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for dim, value in zip(dims, (1, None, side, side), strict=True):
        if value is not None:
            dim.ClearField("dim_param")
            dim.dim_value = value
    inferred = shape_inference.infer_shapes(model, strict_mode=True).graph
    values = [*inferred.input, *inferred.value_info, *inferred.output]
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in values}
    kernels = {w.name: list(w.dims) for w in inferred.initializer}
    total = 0
    for node in inferred.node:
        if node.op_type not in ("Conv", "ConvTranspose"):
            continue
        # Conv: a (Cout, Cin/g, k, k) kernel at every output pixel; ConvTranspose: a
        # (Cin, Cout/g, k, k) kernel at every input pixel
        where = shapes.get(node.output[0] if node.op_type == "Conv" else node.input[0], [])
        if len(where) != 4 or 0 in where:
            raise ValueError(f"shape inference left the shape around {node.name or node.op_type} unknown")
        total += 2 * int(np.prod(kernels[node.input[1]])) * where[2] * where[3]
    return total / side**2


def card_flops_per_pixel(path: Path, size_multiple: int) -> float:
    """What a card records (``Architecture.flops_per_pixel``): counted at a side of 64 input
    pixels (or the model's size multiple times 64), rounded to a whole FLOP."""
    return float(round(conv_flops_per_pixel(onnx.load(str(path)), 64 * size_multiple)))
