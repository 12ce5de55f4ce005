"""A few training steps on tiny data, then export, parity and the card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgenhance.cards import read_card
from tests.support import images
from training.cli import main as train_cli
from training.config import TrainConfig


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    for name, count, size in [("train", 3, 96), ("val", 2, 48)]:
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(images.photo(size, size, seed=i)).save(root / name / f"{i}.png")
    return root


def test_config_overrides_and_refusals(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('name = "x"\nscale = 2\n')
    cfg = TrainConfig.from_toml(toml, ["steps=7", "arch_args={num_feat=4}", "name=y"])
    assert (cfg.steps, cfg.arch_args, cfg.name, cfg.scale) == (7, {"num_feat": 4}, "y", 2)
    with pytest.raises(AssertionError, match="unknown config keys \\['stepz'\\]"):
        TrainConfig.from_toml(toml, ["stepz=1"])


def test_train_resume_export_and_card(data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "tiny.toml"
    config.write_text(
        "\n".join(
            [
                'name = "tiny"',
                'arch = "SRVGGNetCompact"',
                "arch_args = { num_feat = 8, num_conv = 2 }",
                "scale = 2",
                'train_sets = ["train"]',
                'val_sets = ["val"]',
                'eval_sets = ["val"]',
                "lr_patch = 16",
                "batch_size = 2",
                "steps = 6",
                "val_every = 3",
            ]
        )
    )
    run = tmp_path / "run"
    common = ["--data-root", str(data_root)]
    train_cli([*common, "train", "--config", str(config), "--out", str(run), "--quiet"])
    history = json.loads((run / "history.json").read_text())["history"]
    assert [h["step"] for h in history] == [3, 6]
    assert (run / "curves.png").exists() and (run / "samples.png").exists() and (run / "best.pt").exists()

    train_cli(
        [
            *common,
            "train",
            "--config",
            str(config),
            "--out",
            str(run),
            "--quiet",
            "--resume",
            str(run / "last.pt"),
            "--set",
            "steps=9",
        ]
    )
    assert [h["step"] for h in json.loads((run / "history.json").read_text())["history"]] == [3, 6, 9]

    models = tmp_path / "models"
    train_cli([*common, "export", "--checkpoint", str(run / "best.pt"), "--id", "tiny-x2", "--models-dir", str(models)])
    out = capsys.readouterr().out
    assert "ONNX parity" in out and "PSNR" in out
    card = read_card(models / "tiny-x2.json")
    assert card.task == "super-resolve" and card.scale == 2 and card.file == "tiny-x2.onnx"
    assert card.quality["onnx_parity_max_abs_diff"] <= 1e-4
    assert set(card.quality["results"]["val"]) == {"model", "bicubic", "lanczos"}
    assert card.quality["protocol"]["crop_border"] == 2 and card.quality["protocol"]["channel"].startswith("Y")
    assert "train" in card.training.command and card.training.steps >= 6
    assert (models / "tiny-x2.onnx").stat().st_size == card.bytes

    train_cli(
        [*common, "eval", "--model", str(models / "tiny-x2.json"), "--write-card", "--json", str(tmp_path / "r.json")]
    )
    report = json.loads((tmp_path / "r.json").read_text())
    assert np.isfinite(report["results"]["val"]["model"]["psnr"])
    assert read_card(models / "tiny-x2.json").quality["measured_by"].startswith("python -m training")
