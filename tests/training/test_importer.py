"""Community checkpoints: every supported layout imports, nothing is unpickled blindly."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from training import archs, importer


def tiny_rrdb(scale: int = 4) -> torch.nn.Module:
    return archs.build("RRDBNet", archs.full_args("RRDBNet", {"num_feat": 8, "num_block": 2, "num_grow_ch": 4}, scale))


def to_old_esrgan_keys(state: dict[str, torch.Tensor], num_block: int) -> dict[str, torch.Tensor]:
    names = {
        "conv_first": "model.0",
        "conv_body": f"model.1.sub.{num_block}",
        "conv_up1": "model.3",
        "conv_up2": "model.6",
        "conv_hr": "model.8",
        "conv_last": "model.10",
    }
    out = {}
    for key, value in state.items():
        prefix, _, param = key.rpartition(".")
        if prefix.startswith("body."):
            _, block, rdb, conv = prefix.split(".")
            out[f"model.1.sub.{block}.RDB{rdb[-1]}.conv{conv[-1]}.0.{param}"] = value
        else:
            out[f"{names[prefix]}.{param}"] = value
    return out


@pytest.mark.parametrize("scale", [2, 4])
def test_basicsr_rrdb_with_params_ema_wrapper(tmp_path: Path, scale: int) -> None:
    net = tiny_rrdb(scale)
    torch.save({"params_ema": net.state_dict(), "params": {}}, tmp_path / "x.pth")
    ckpt = importer.to_checkpoint(tmp_path / "x.pth", "super-resolve", "cmd")
    assert ckpt.arch.name == "RRDBNet" and ckpt.arch.args["scale"] == scale
    assert ckpt.arch.args["num_block"] == 2 and ckpt.arch.size_multiple == {4: 1, 2: 2}[scale]
    x = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(ckpt.generator()(x), net.eval()(x))


def test_old_esrgan_key_style(tmp_path: Path) -> None:
    net = tiny_rrdb(4)
    torch.save(to_old_esrgan_keys(net.state_dict(), 2), tmp_path / "old.pth")
    model = importer.to_checkpoint(tmp_path / "old.pth", "super-resolve", "cmd").generator()
    x = torch.rand(1, 3, 6, 6)
    torch.testing.assert_close(model(x), net.eval()(x))


def test_compact_from_safetensors(tmp_path: Path) -> None:
    net = archs.build("SRVGGNetCompact", {"num_feat": 8, "num_conv": 3, "upscale": 2})
    save_file(net.state_dict(), str(tmp_path / "c.safetensors"))
    ckpt = importer.to_checkpoint(tmp_path / "c.safetensors", "super-resolve", "cmd")
    assert ckpt.arch.args == {
        "num_in_ch": 3,
        "num_out_ch": 3,
        "num_feat": 8,
        "num_conv": 3,
        "upscale": 2,
        "act_type": "prelu",
    }
    x = torch.rand(1, 3, 5, 7)
    torch.testing.assert_close(ckpt.generator()(x), net.eval()(x))


class Payload:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (print, ("arbitrary code ran",))


def test_arbitrary_pickles_are_refused(tmp_path: Path) -> None:
    with (tmp_path / "evil.pth").open("wb") as f:
        pickle.dump({"params": Payload()}, f)
    with pytest.raises(importer.UnsupportedCheckpoint, match="arbitrary unpickling, which is refused"):
        importer.load_state_dict(tmp_path / "evil.pth")


def test_unknown_architectures_are_refused(tmp_path: Path) -> None:
    torch.save({"encoder.weight": torch.zeros(2, 2)}, tmp_path / "u.pth")
    with pytest.raises(importer.UnsupportedCheckpoint, match="not an RRDBNet or SRVGGNetCompact"):
        importer.to_checkpoint(tmp_path / "u.pth", "super-resolve", "cmd")


def test_import_cli_writes_onnx_and_card(tmp_path: Path) -> None:
    from imgenhance.cards import read_card
    from training.cli import main

    torch.save({"params_ema": tiny_rrdb(4).state_dict()}, tmp_path / "w.pth")
    models = tmp_path / "models"
    main(
        [
            "--data-root",
            str(tmp_path / "no-data"),
            "import",
            "--weights",
            str(tmp_path / "w.pth"),
            "--id",
            "imported-x4",
            "--models-dir",
            str(models),
        ]
    )
    card = read_card(models / "imported-x4.json")
    assert card.architecture.name == "RRDBNet" and card.scale == 4 and card.variant == "real-world"
    assert card.onnx_parity_max_abs_diff is not None and card.onnx_parity_max_abs_diff <= 1e-4
    assert card.quality.kind == "not-measured"  # no evaluation data at --data-root
    assert "Imported from w.pth" in card.data_terms
