"""IMGENHANCE_CPU_ENGINE=ncnn: our ONNX -> ncnn converter against ONNX Runtime, and the fallbacks."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from pydantic import ValidationError

from imgenhance.cards import PARITY_TOLERANCE as PARITY
from imgenhance.catalog import Catalog
from imgenhance.onnx_passes import batchnorm_as_prelu, prelu_as_batchnorm
from imgenhance.settings import Settings
from tests.support.threads import outputs_from_threads
from worker.runtime import EngineUnavailable, load_model, open_cpu_session, open_session

MODELS = Path(__file__).resolve().parents[2] / "models"
NCNN = "ncnn CPU (fp32)"
ORT = "CPUExecutionProvider"


@pytest.fixture(scope="module")
def ncnn_ready() -> None:
    pytest.importorskip("ncnn", reason="the ncnn engine needs the ncnn package: pip install 'imgenhance[worker,ncnn]'")


def model_path(model: str) -> Path:
    path = MODELS / f"{model}.onnx"
    if not path.exists():
        pytest.skip(f"{path.name} is built at set-up: python -m training.ncnn install")
    return path


def image(h: int, w: int, batch: int = 1, channels: int = 3, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((batch, channels, h, w), dtype=np.float32)


def save(model: onnx.ModelProto, tmp_path: Path, name: str = "net.onnx") -> Path:
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def const(rng: np.random.Generator, name: str, shape: tuple[int, ...], scale: float = 0.3) -> onnx.TensorProto:
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def prelu_net(channels: int = 8) -> onnx.ModelProto:
    """Conv -> PRelu (slopes of both signs and above 1, as Real-ESRGAN's) -> Conv -> PRelu -> Conv."""
    rng = np.random.default_rng(0)
    slope = np.linspace(-1.4, 1.7, channels, dtype=np.float32).reshape(-1, 1, 1)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["input", "w1", "b1"], ["h"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
            helper.make_node("PRelu", ["h", "slope"], ["a"]),
            helper.make_node("Conv", ["a", "w2", "b2"], ["h2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
            helper.make_node("PRelu", ["h2", "slope2"], ["a2"]),
            helper.make_node("Conv", ["a2", "w3", "b3"], ["output"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        ],
        "prelu-net",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [
            const(rng, "w1", (channels, 3, 3, 3)),
            const(rng, "b1", (channels,)),
            numpy_helper.from_array(slope, "slope"),
            const(rng, "w2", (channels, channels, 3, 3)),
            const(rng, "b2", (channels,)),
            numpy_helper.from_array(slope[::-1].copy(), "slope2"),
            const(rng, "w3", (3, channels, 3, 3)),
            const(rng, "b3", (3,)),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what onnxruntime 1.31 reads
    return model


def every_op_net() -> onnx.ModelProto:
    """Each op the converter handles beyond the shipped graphs: a real channel Slice (Crop), a
    height Slice to the end less one row, grouped Conv, BatchNorm, LeakyRelu, Relu, scalar
    Mul / Sub / Div, Sub and Mul of tensors, Sum, Concat, DCR DepthToSpace, Identity."""
    rng = np.random.default_rng(2)
    n = helper.make_node
    big = np.iinfo(np.int64).max

    def ints(name: str, values: list[int]) -> onnx.TensorProto:
        return numpy_helper.from_array(np.array(values, np.int64), name)

    def scalar(name: str, value: float) -> onnx.TensorProto:
        return numpy_helper.from_array(np.array(value, np.float32), name)

    nodes = [
        n("Slice", ["input", "c_start", "c_end", "c_axis"], ["rgb"]),  # channels 1:4 of 4
        n("Slice", ["rgb", "h_start", "h_end", "h_axis"], ["rows"]),  # rows 2:-1
        n("Conv", ["rows", "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1, 0, 1, 2]),
        n("LeakyRelu", ["c1"], ["l1"], alpha=0.1),
        n("Conv", ["l1", "wg"], ["cg"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=4),
        n("BatchNormalization", ["cg", "bn_s", "bn_b", "bn_m", "bn_v"], ["bn"], epsilon=1e-3),
        n("Relu", ["bn"], ["r"]),
        n("Mul", ["r", "k"], ["rk"]),
        n("Sub", ["one", "rk"], ["s1"]),
        n("Div", ["s1", "two"], ["s2"]),
        n("Sub", ["s2", "l1"], ["d"]),
        n("Mul", ["d", "l1"], ["m"]),
        n("Sum", ["m", "l1", "bn"], ["sum"]),
        n("Identity", ["sum"], ["same"]),
        n("Concat", ["same", "l1"], ["cat"], axis=1),
        n("Conv", ["cat", "w2", "b2"], ["c2"], kernel_shape=[1, 1]),
        n("DepthToSpace", ["c2"], ["output"], blocksize=2, mode="DCR"),
    ]
    inits = [
        ints("c_start", [1]),
        ints("c_end", [big]),
        ints("c_axis", [1]),
        ints("h_start", [2]),
        ints("h_end", [-1]),
        ints("h_axis", [2]),
        const(rng, "w1", (8, 3, 3, 3)),
        const(rng, "b1", (8,)),
        const(rng, "wg", (8, 2, 3, 3)),
        numpy_helper.from_array(rng.uniform(0.5, 1.5, 8).astype(np.float32), "bn_s"),
        const(rng, "bn_b", (8,)),
        const(rng, "bn_m", (8,), 0.1),
        numpy_helper.from_array(rng.uniform(0.5, 2.0, 8).astype(np.float32), "bn_v"),
        scalar("k", 0.7),
        scalar("one", 1.0),
        scalar("two", 2.0),
        const(rng, "w2", (12, 16, 1, 1)),
        const(rng, "b2", (12,)),
    ]
    graph = helper.make_graph(
        nodes,
        "every-op",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 4, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["n", 3, "H", "W"])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def unsupported_net() -> onnx.ModelProto:
    """Conv -> Sigmoid: an op the converter does not handle."""
    rng = np.random.default_rng(3)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["input", "w"], ["c"], kernel_shape=[1, 1]),
            helper.make_node("Sigmoid", ["c"], ["output"]),
        ],
        "sigmoid-net",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [const(rng, "w", (3, 3, 1, 1))],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


# The PRelu rewrite and its inverse (no ncnn needed).


def test_batchnorm_as_prelu_undoes_prelu_as_batchnorm() -> None:
    original = prelu_net()
    rewritten = onnx.ModelProto()
    rewritten.CopyFrom(original)
    assert prelu_as_batchnorm(rewritten) == 2
    assert "PRelu" not in {node.op_type for node in rewritten.graph.node}
    assert batchnorm_as_prelu(rewritten) == 2
    assert [node.op_type for node in rewritten.graph.node] == ["Conv", "PRelu", "Conv", "PRelu", "Conv"]
    slopes = [i for i in rewritten.graph.initializer if i.name.endswith("/prelu/slope")]
    assert [tuple(s.dims) for s in slopes] == [(8, 1, 1), (8, 1, 1)]
    x = image(13, 22, batch=2)
    before = open_session(original.SerializeToString(), cpu_layout=False).run(None, {"input": x})[0]
    after = open_session(rewritten.SerializeToString(), cpu_layout=False).run(None, {"input": x})[0]
    assert np.array_equal(after, before)  # the same graph again: the same bits


def test_batchnorm_as_prelu_restores_the_shipped_graphs_prelus() -> None:
    model = onnx.load(str(MODELS / "sr-compact-x4.onnx"))
    x = image(12, 20)
    exported = open_session(model.SerializeToString(), cpu_layout=False).run(None, {"input": x})[0]
    assert batchnorm_as_prelu(model) == 17
    ops = {node.op_type for node in model.graph.node}
    assert "PRelu" in ops and "BatchNormalization" not in ops
    restored = open_session(model.SerializeToString(), cpu_layout=False).run(None, {"input": x})[0]
    assert np.abs(restored - exported).max() < 1e-5
    assert batchnorm_as_prelu(model) == 0  # nothing left to undo


def test_batchnorm_as_prelu_leaves_other_batchnorms_alone() -> None:
    model = prelu_net()
    prelu_as_batchnorm(model)
    a = next(i for i in model.graph.initializer if i.name.endswith("/prelu/1-a"))
    a.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a) + np.float32(0.5), a.name))  # no longer 1 - a
    assert batchnorm_as_prelu(model) == 1


# Settings.


def test_ncnn_is_an_engine_setting_and_runs_fp32_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMGENHANCE_CPU_ENGINE", "ncnn")
    assert Settings().cpu_engine == "ncnn"
    with pytest.raises(ValidationError, match="IMGENHANCE_CPU_ENGINE=openvino"):
        Settings(cpu_engine="ncnn", cpu_precision="bf16")
    with pytest.raises(EngineUnavailable, match="ncnn runs fp32"):
        open_cpu_session(MODELS / "sr-compact-x4.onnx", "ncnn", "bf16")


def test_a_missing_ncnn_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ncnn", None)  # import ncnn -> ImportError
    with pytest.raises(EngineUnavailable, match=r"imgenhance\[worker,ncnn\]"):
        open_cpu_session(MODELS / "sr-compact-x4.onnx", "ncnn")


# The converter against ONNX Runtime.


@pytest.mark.usefixtures("ncnn_ready")
@pytest.mark.parametrize("model", ["sr-compact-x4", "sr-compact-x2", "sr-realworld-x4", "sr-realesr-animevideov3-x4"])
def test_shipped_sr_models_match_onnxruntime_within_the_parity_bound(model: str) -> None:
    from worker.ncnn_engine import NcnnSession

    path = model_path(model)
    session = open_cpu_session(path, "ncnn", threads=2)
    assert session.get_providers() == [NCNN]
    assert isinstance(session, NcnnSession)
    assert "Crop" not in session.graph.param  # their Slice takes all 3 channels: nothing to run
    reference = open_session(path, cpu_layout=False)
    for h, w in ((20, 36), (44, 28)):
        x = image(h, w, seed=h)
        ours, theirs = session.run(None, {"input": x})[0], reference.run(None, {"input": x})[0]
        assert ours.shape == theirs.shape
        assert np.abs(ours - theirs).max() < PARITY


@pytest.mark.usefixtures("ncnn_ready")
def test_every_handled_op_matches_onnxruntime(tmp_path: Path) -> None:
    from worker.ncnn_engine import NcnnSession

    path = save(every_op_net(), tmp_path)
    session = NcnnSession(path, threads=2)
    assert "Crop" in session.graph.param and "ConvolutionDepthWise" in session.graph.param
    reference = open_session(path, cpu_layout=False)
    for h, w in ((11, 17), (16, 9)):
        x = image(h, w, channels=4, seed=w)
        ours, theirs = session.run(None, {"input": x})[0], reference.run(None, {"input": x})[0]
        assert ours.shape == theirs.shape == (1, 3, 2 * (h - 3), 2 * w)
        assert np.abs(ours - theirs).max() < PARITY


@pytest.mark.usefixtures("ncnn_ready")
def test_a_batch_is_its_images_one_by_one() -> None:
    session = open_cpu_session(MODELS / "sr-compact-x2.onnx", "ncnn", threads=2)
    x = image(18, 26, batch=2)
    both = session.run(None, {"input": x})[0]
    assert both.shape == (2, 3, 36, 52) and both.dtype == np.float32
    assert np.array_equal(both[0], session.run(None, {"input": x[:1]})[0][0])
    assert np.array_equal(both[1], session.run(None, {"input": x[1:]})[0][0])


@pytest.mark.usefixtures("ncnn_ready")
def test_one_session_serves_several_threads_at_once() -> None:
    session = open_cpu_session(MODELS / "sr-compact-x2.onnx", "ncnn", threads=1)
    inputs = [image(8 + i, 9, seed=i) for i in range(4)]
    expected = [session.run(None, {"input": x})[0] for x in inputs]
    got = outputs_from_threads(session, inputs)
    assert all(np.array_equal(g, e) for g, e in zip(got, expected, strict=True))


# Fallbacks: never a failed worker.


@pytest.mark.usefixtures("ncnn_ready")
def test_a_graph_with_an_unhandled_op_runs_on_onnxruntime(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = save(unsupported_net(), tmp_path)
    with caplog.at_level(logging.WARNING, logger="imgenhance.worker"):
        session = open_cpu_session(path, "ncnn")
    assert session.get_providers()[0] == ORT
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "Sigmoid" in warnings[0]
    x = image(5, 7)
    assert np.array_equal(session.run(None, {"input": x})[0], open_session(path).run(None, {"input": x})[0])


@pytest.mark.usefixtures("ncnn_ready")
def test_the_denoiser_names_the_op_it_falls_back_for() -> None:
    from worker.ncnn_engine import Unsupported, convert

    with pytest.raises(Unsupported, match="ConvTranspose"):
        convert(onnx.load(str(MODELS / "denoise-unet.onnx")))


@pytest.mark.usefixtures("ncnn_ready")
def test_a_conversion_outside_the_parity_bound_runs_on_onnxruntime(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import worker.ncnn_engine

    monkeypatch.setattr(worker.ncnn_engine, "PARITY", 0.0)  # float rounding alone now fails the check
    with caplog.at_level(logging.WARNING, logger="imgenhance.worker"):
        session = open_cpu_session(MODELS / "sr-compact-x2.onnx", "ncnn", threads=2)
    assert session.get_providers()[0] == ORT
    assert any("differs from ONNX Runtime" in r.getMessage() for r in caplog.records)


@pytest.mark.usefixtures("ncnn_ready")
def test_the_worker_loads_sr_models_on_ncnn_and_generators_on_onnxruntime() -> None:
    catalog = Catalog.load(MODELS)
    for model, provider in (("gen-digits", ORT), ("sr-compact-x4", NCNN)):
        card = catalog.get(model)
        assert card is not None
        loaded = load_model(card, str(catalog.path(card)), [ORT], 2, "ncnn")
        assert loaded.provider == provider
    assert loaded(np.zeros((2, 3, 8, 10), np.float32)).shape == (2, 3, 32, 40)
