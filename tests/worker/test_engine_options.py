"""CPU engine options: the settings that pick them, and every option within the cards' parity bound."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from pydantic import ValidationError

from imgenhance.cards import PARITY_TOLERANCE as PARITY
from imgenhance.catalog import Catalog
from imgenhance.settings import Settings
from tests.support.threads import outputs_from_threads
from worker.runtime import (
    EngineUnavailable,
    LoadedModel,
    OpenVinoSession,
    Runtime,
    load_model,
    open_cpu_session,
    open_session,
)

MODELS = Path(__file__).resolve().parents[2] / "models"


def prelu_net(channels: int = 8) -> bytes:
    """Conv -> PRelu (slopes of both signs and above 1, as Real-ESRGAN's) -> Conv, random weights."""
    rng = np.random.default_rng(0)

    def const(name: str, shape: tuple[int, ...], scale: float = 0.3) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    slope = numpy_helper.from_array(np.linspace(-1.4, 1.7, channels, dtype=np.float32).reshape(-1, 1, 1), "slope")
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["input", "w1", "b1"], ["h"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
            helper.make_node("PRelu", ["h", "slope"], ["a"]),
            helper.make_node("Conv", ["a", "w2", "b2"], ["output"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        ],
        "prelu-net",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [
            const("w1", (channels, 3, 3, 3)),
            const("b1", (channels,)),
            slope,
            const("w2", (3, channels, 3, 3)),
            const("b2", (3,)),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def image(h: int = 21, w: int = 34, batch: int = 2, channels: int = 3) -> np.ndarray:
    return np.random.default_rng(1).random((batch, channels, h, w), dtype=np.float32)


# Settings.


def test_engine_and_precision_default_to_onnxruntime_fp32() -> None:
    settings = Settings()
    assert (settings.cpu_engine, settings.cpu_precision) == ("onnxruntime", "fp32")


def test_engine_and_precision_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMGENHANCE_CPU_ENGINE", "openvino")
    monkeypatch.setenv("IMGENHANCE_CPU_PRECISION", "bf16")
    settings = Settings()
    assert (settings.cpu_engine, settings.cpu_precision) == ("openvino", "bf16")


@pytest.mark.parametrize(("field", "value"), [("cpu_engine", "tensorrt"), ("cpu_precision", "int8")])
def test_unknown_engines_and_precisions_are_refused(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match=field):
        Settings(**{field: value})


def test_bf16_needs_the_openvino_engine() -> None:
    with pytest.raises(ValidationError, match="IMGENHANCE_CPU_ENGINE=openvino"):
        Settings(cpu_precision="bf16")
    with pytest.raises(EngineUnavailable, match="openvino"):
        open_cpu_session(MODELS / "sr-compact-x4.onnx", "onnxruntime", "bf16")


# ONNX Runtime: the PRelu rewrite.


def test_the_prelu_rewrite_keeps_outputs_within_the_parity_bound() -> None:
    net = prelu_net()
    x = image()
    plain = open_session(net, cpu_layout=False).run(None, {"input": x})[0]
    blocked = open_session(net).run(None, {"input": x})[0]
    assert np.abs(blocked - plain).max() < 1e-5


def test_graphs_without_prelu_are_opened_as_they_are() -> None:
    from worker.runtime import _blocked_prelu

    assert _blocked_prelu(str(MODELS / "sr-compact-x4.onnx")) == str(MODELS / "sr-compact-x4.onnx")


def test_the_rewrite_leaves_no_prelu_for_the_cpu_to_reorder_around() -> None:
    from worker.runtime import _blocked_prelu

    rewritten = onnx.load_from_string(_blocked_prelu(prelu_net()))
    assert "PRelu" not in {n.op_type for n in rewritten.graph.node}


def test_an_imported_real_esrgan_model_stays_within_parity_of_the_plain_graph() -> None:
    path = MODELS / "sr-realesr-animevideov3-x4.onnx"
    if not path.exists():
        pytest.skip("built at set-up: python -m training.ncnn install")
    x = image(24, 19, batch=1)
    plain = open_session(path, cpu_layout=False).run(None, {"input": x})[0]
    served = open_cpu_session(path).run(None, {"input": x})[0]
    assert np.abs(served - plain).max() < PARITY


# OpenVINO.


def test_a_missing_openvino_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino -> ImportError
    with pytest.raises(EngineUnavailable, match="pip install openvino"):
        open_cpu_session(MODELS / "sr-compact-x4.onnx", "openvino")


@pytest.fixture(scope="module")
def openvino_ready() -> None:
    pytest.importorskip("openvino")


@pytest.mark.usefixtures("openvino_ready")
@pytest.mark.parametrize("model", ["sr-compact-x4", "sr-compact-x2", "denoise-unet", "style-udnie"])
def test_openvino_fp32_matches_onnxruntime_within_the_parity_bound(model: str) -> None:
    card = Catalog.load(MODELS).get(model)
    assert card is not None
    channels, multiple = card.io.inputs[0].shape[1], card.io.size_multiple
    x = image(4 * multiple, 6 * multiple, channels=channels)
    ours = open_session(MODELS / card.file).run(None, {"input": x})[0]
    theirs = OpenVinoSession(MODELS / card.file, threads=1).run(None, {"input": x})[0]
    assert theirs.shape == ours.shape
    assert np.abs(theirs - ours).max() < PARITY


@pytest.mark.usefixtures("openvino_ready")
def test_openvino_sessions_serve_several_threads_at_once() -> None:
    session = OpenVinoSession(MODELS / "sr-compact-x4.onnx")
    inputs = [image(8 + i, 9, batch=1) for i in range(4)]
    expected = [session.run(None, {"input": x})[0] for x in inputs]
    got = outputs_from_threads(session, inputs)
    assert all(np.array_equal(g, e) for g, e in zip(got, expected, strict=True))


@pytest.mark.usefixtures("openvino_ready")
def test_runtime_on_openvino_keeps_generators_on_onnxruntime() -> None:
    runtime = Runtime(Catalog.load(MODELS), Settings(models_dir=MODELS, ort_providers=["cpu"], cpu_engine="openvino"))
    assert runtime.get("sr-compact-x4").provider == "OpenVINO CPU (fp32)"
    assert runtime.get("sr-compact-x4")(np.zeros((2, 3, 8, 10), np.float32)).shape == (2, 3, 32, 40)
    assert runtime.get("gen-digits").provider == "CPUExecutionProvider"  # deterministic kernels


@pytest.mark.usefixtures("openvino_ready")
def test_bf16_is_refused_or_close() -> None:
    """bf16 runs where the CPU has it, within ~0.03 of fp32 here (outside the parity bound:
    opt-in); elsewhere it is refused rather than silently run in fp32."""
    import openvino as ov

    path = MODELS / "sr-compact-x4.onnx"
    if "BF16" not in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        with pytest.raises(EngineUnavailable, match="AVX512_BF16"):
            OpenVinoSession(path, precision="bf16")
        return
    session = OpenVinoSession(path, precision="bf16")
    x = image()
    fp32 = open_session(path).run(None, {"input": x})[0]
    assert session.get_providers() == ["OpenVINO CPU (bf16)"]
    assert np.abs(session.run(None, {"input": x})[0] - fp32).max() < 0.1


@pytest.mark.usefixtures("openvino_ready")
@pytest.mark.parametrize("model", ["sr-compact-x2", "denoise-unet"])
def test_auto_times_every_installed_engine_and_keeps_the_fastest(
    model: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("ncnn")
    import worker.runtime as rt

    card = Catalog.load(MODELS).get(model)
    assert card is not None
    timed: list[str] = []
    # Fixed timings in the engines' order: the choice must follow them, not the load order.
    fake = {"CPUExecutionProvider": 0.3, "OpenVINO CPU (fp32)": 0.1, "ncnn CPU (fp32)": 0.2}

    def time_runs(loaded: LoadedModel) -> float:
        timed.append(loaded.provider)
        return fake[loaded.provider]

    monkeypatch.setattr(rt, "_time_runs", time_runs)
    with caplog.at_level("INFO", logger="imgenhance.worker"):
        loaded = load_model(card, str(MODELS / card.file), ["CPUExecutionProvider"], 1, cpu_engine="auto")
    # denoise-unet has ops the ncnn converter lacks: its ncnn try is ONNX Runtime again, not timed twice
    expected = ["CPUExecutionProvider", "OpenVINO CPU (fp32)"] + (
        ["ncnn CPU (fp32)"] if model != "denoise-unet" else []
    )
    assert timed == expected
    assert loaded.provider == "OpenVINO CPU (fp32)"
    assert f"{model} timed on each CPU engine, the fastest kept: OpenVINO CPU (fp32) 100 ms" in caplog.text
    x = image(32, 48, batch=1, channels=card.io.inputs[0].shape[1])
    ref = open_session(MODELS / card.file).run(None, {"input": x})[0]
    assert np.abs(loaded.session.run(None, {"input": x})[0] - ref).max() < 1e-4


def test_auto_keeps_generators_on_onnxruntime() -> None:
    card = Catalog.load(MODELS).get("gen-digits")
    assert card is not None
    loaded = load_model(card, str(MODELS / card.file), ["CPUExecutionProvider"], 1, cpu_engine="auto")
    assert loaded.provider == "CPUExecutionProvider"


def test_auto_times_a_model_on_a_real_input() -> None:
    import worker.runtime as rt

    card = Catalog.load(MODELS).get("sr-compact-x2")
    assert card is not None
    loaded = load_model(card, str(MODELS / card.file), ["CPUExecutionProvider"], 1)
    assert 0 < rt._time_runs(loaded) < 30
