"""Rebuild the PyTorch module of a shipped model from its card and ONNX weights.

Used to compare ONNX Runtime with PyTorch on exactly the weights the service runs,
without the training checkpoint, and to start a fine-tune from a shipped or imported model
(``init_from``). Initialisers keep their state-dict names, except
PReLU slopes: the exporter renames them, and ``prelu-as-batchnorm`` moves them into
``<output>/prelu/a``; either way they are matched to the PReLU modules in graph order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from imgenhance.cards import read_card
from imgenhance.onnx_passes import fp16_weights_as_fp32
from training import archs


def load_from_card(card_path: Path) -> nn.Module:
    card = read_card(card_path)
    whole = onnx.load(str(Path(card_path).parent / card.file))
    fp16_weights_as_fp32(whole)
    graph = whole.graph
    from training.ncnn_import import BUILT_BY, torch_model

    if card.training.built_by == BUILT_BY:  # an imported graph: ncnn layer names, matched in graph order
        return torch_model(card.id, graph)
    model = archs.build(card.architecture.name, card.architecture.args).eval()
    if card.architecture.name == "Generator":
        from training.archs.gan import fold_scales

        fold_scales(model)  # the graph holds equalised layers' weights already scaled
    weights = onnx_weights(graph)
    state = model.state_dict()
    prelu_slopes = [weights[n.input[1]] for n in graph.node if n.op_type == "PRelu"] + [
        weights[n.input[1]] for n in graph.node if n.op_type == "BatchNormalization" and n.input[1].endswith("/prelu/a")
    ]
    prelu_keys = [f"{name}.weight" for name, m in model.named_modules() if isinstance(m, nn.PReLU)]
    if len(prelu_slopes) != len(prelu_keys):
        raise ValueError(f"{card.file}: PReLU count differs between the ONNX graph and {card.architecture.name}")
    for key, slope in zip(prelu_keys, prelu_slopes, strict=True):
        weights[key] = slope.reshape(state[key].shape)
    # a generator's lower-resolution output heads (progressive growing) are not in its graph
    unused = ("to_image.",) if card.architecture.name == "Generator" else ()
    missing = [k for k in state if k not in weights and not k.startswith(unused or ("\0",))]
    if missing:
        raise ValueError(f"{card.file} lacks weights for {missing[:5]}")
    model.load_state_dict({k: torch.from_numpy(np.array(weights[k])) if k in weights else v for k, v in state.items()})
    return model


def onnx_weights(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """The graph's weights by state-dict name. The exporter keeps one initialiser for equal
    tensors (untrained norms' ones and zeros, say) and gives the others as Identity nodes
    of it; a generator's carry the name of its ExportedGenerator attribute first."""

    def name(n: str) -> str:
        return n.removeprefix("generator.")

    weights = {name(init.name): numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Identity" and name(node.input[0]) in weights:
            weights[name(node.output[0])] = weights[name(node.input[0])]
    return weights
