"""Export must refuse a graph that does not compute what its model computes.

The reference outputs here come from PyTorch and ONNX Runtime called directly, not
from ``parity``; wrong graphs are made on purpose (the PReLU rewrite's ``1 - a``
constants turned into ``1 + a``, a NaN bias) and must be rejected.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper
from PIL import Image

from tests.support import images
from training import export
from training.archs.srvgg import SRVGGNetCompact
from training.cli import main as train_cli


def prelu_net() -> SRVGGNetCompact:
    """A tiny x2 compact net whose PReLU slopes differ per channel (the default is 0.25 everywhere)."""
    torch.manual_seed(0)
    net = SRVGGNetCompact(num_feat=8, num_conv=2, upscale=2)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.PReLU):
                module.weight.uniform_(-0.5, 0.8)
    return net.eval()


def one_plus_a(graph: onnx.ModelProto) -> None:
    """The PReLU rewrite with its positive-side scale wrong: ``1 + a`` instead of ``1 - a``."""
    changed = 0
    for init in graph.graph.initializer:
        if init.name.endswith("/prelu/1-a"):
            a = 1.0 - numpy_helper.to_array(init)
            init.CopyFrom(numpy_helper.from_array((1.0 + a).astype(np.float32), init.name))
            changed += 1
    assert changed, "no PReLU rewrite found to corrupt"


def nan_bias(graph: onnx.ModelProto) -> None:
    bias = next(init for init in graph.graph.initializer if init.name.endswith("bias"))
    values = numpy_helper.to_array(bias).copy()
    values[0] = np.nan
    bias.CopyFrom(numpy_helper.from_array(values, bias.name))


def corrupt(path: Path, corruption: Callable[[onnx.ModelProto], None]) -> None:
    graph = onnx.load(str(path))
    corruption(graph)
    onnx.save(graph, str(path))


@pytest.fixture
def exported(tmp_path: Path) -> tuple[SRVGGNetCompact, Path]:
    net = prelu_net()
    path = tmp_path / "net.onnx"
    export.export_onnx(net, path)
    return net, path


def test_export_rewrites_every_prelu(tmp_path: Path) -> None:
    passes = export.export_onnx(prelu_net(), tmp_path / "net.onnx")
    ops = {node.op_type for node in onnx.load(str(tmp_path / "net.onnx")).graph.node}
    assert passes == ["prelu-as-batchnorm"] and "PRelu" not in ops and "BatchNormalization" in ops


def test_exported_graph_computes_what_the_model_computes(exported: tuple[SRVGGNetCompact, Path]) -> None:
    net, path = exported
    x = torch.rand(2, 3, 29, 41, generator=torch.Generator().manual_seed(1))  # not the export size
    with torch.no_grad():
        expected = net(x).numpy()
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[0]
    assert got.shape == (2, 3, 58, 82)
    assert np.abs(got - expected).max() < 1e-5  # measured: 1.2e-7


def test_parity_measures_the_error_of_a_wrong_graph(exported: tuple[SRVGGNetCompact, Path]) -> None:
    net, path = exported
    corrupt(path, one_plus_a)
    assert export.parity(net, path) > 0.05  # measured: 0.109


def test_require_parity_refuses_a_wrong_graph(exported: tuple[SRVGGNetCompact, Path]) -> None:
    net, path = exported
    corrupt(path, one_plus_a)
    with pytest.raises(export.ParityError, match="differs from PyTorch"):
        export.require_parity(net, path)


def test_require_parity_refuses_a_graph_that_outputs_nan(exported: tuple[SRVGGNetCompact, Path]) -> None:
    net, path = exported
    corrupt(path, nan_bias)
    with pytest.raises(export.ParityError, match="differs from PyTorch"):
        export.require_parity(net, path)


def test_require_parity_accepts_the_exported_graph(exported: tuple[SRVGGNetCompact, Path]) -> None:
    net, path = exported
    assert export.require_parity(net, path) < 1e-5  # measured: 1.2e-7


def corrupting_export(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the export's graph pass save ``1 + a`` for ``1 - a``, as a broken rewrite would."""
    real_save = onnx.save

    def save_wrong_graph(graph: onnx.ModelProto, *args: object, **kwargs: object) -> None:
        one_plus_a(graph)
        real_save(graph, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(onnx, "save", save_wrong_graph)


def test_cli_export_refuses_a_wrong_graph(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    for name in ("train", "val"):
        (data / name).mkdir(parents=True)
        Image.fromarray(images.photo(48, 48)).save(data / name / "0.png")
    config = tmp_path / "tiny.toml"
    config.write_text(
        'name = "tiny"\narch = "SRVGGNetCompact"\narch_args = { num_feat = 8, num_conv = 2 }\nscale = 2\n'
        'train_sets = ["train"]\nval_sets = ["val"]\neval_sets = ["val"]\nlr_patch = 16\nbatch_size = 2\n'
        "steps = 1\nval_every = 1\n"
    )
    common = ["--data-root", str(data)]
    train_cli([*common, "train", "--config", str(config), "--out", str(tmp_path / "run"), "--quiet"])
    corrupting_export(monkeypatch)
    models = tmp_path / "models"
    with pytest.raises(export.ParityError):
        train_cli(
            [
                *common,
                "export",
                "--checkpoint",
                str(tmp_path / "run" / "best.pt"),
                "--id",
                "t",
                "--models-dir",
                str(models),
            ]
        )
    assert not (models / "t.json").exists()


def test_cli_import_refuses_a_wrong_graph(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.save(prelu_net().state_dict(), tmp_path / "w.pth")
    corrupting_export(monkeypatch)
    models = tmp_path / "models"
    with pytest.raises(export.ParityError):
        train_cli(
            [
                *["--data-root", str(tmp_path / "no-data"), "import", "--weights", str(tmp_path / "w.pth")],
                *["--id", "w", "--models-dir", str(models)],
            ]
        )
    assert not (models / "w.json").exists()


def test_a_refused_graph_never_reaches_the_models_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.save(prelu_net().state_dict(), tmp_path / "w.pth")
    corrupting_export(monkeypatch)
    models = tmp_path / "models"
    with pytest.raises(export.ParityError):
        train_cli(
            [
                *["--data-root", str(tmp_path / "no-data"), "import", "--weights", str(tmp_path / "w.pth")],
                *["--id", "w", "--models-dir", str(models)],
            ]
        )
    assert list(models.glob("*")) == []
