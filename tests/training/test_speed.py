"""``python -m training speed``: figures land in the card, one per machine, engine and
precision, with the graph's FLOP count; a second run replaces rather than repeats."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from imgenhance.cards import read_card
from imgenhance.onnx_cost import card_flops_per_pixel
from training import archs
from training.checkpoint import ArchSpec, Checkpoint
from training.cli import main as train_cli
from training.publish import publish


def test_speed_writes_figures_and_flops_into_the_card(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    spec = ArchSpec("SRVGGNetCompact", archs.full_args("SRVGGNetCompact", {"num_feat": 8, "num_conv": 2}, 2))
    ckpt = Checkpoint(
        config={"name": "t", "task": "super-resolve", "scale": 2}, arch=spec, params=spec.build().state_dict()
    )
    publish(ckpt, "tiny", tmp_path, "general", False, None)
    card_path = tmp_path / "tiny.json"
    args = ["speed", "--model", str(card_path), "--side", "32", "--repeats", "2", "--write-card"]
    train_cli(args)
    out = capsys.readouterr().out
    assert "ms per output MP" in out and "CPUExecutionProvider" in out
    card = read_card(card_path)
    (figure,) = card.speed
    assert figure.precision == "fp32" and figure.input_side == 32 and figure.ms_per_output_mp > 0
    assert "speed --model" in figure.measured_by and "cores" in figure.device
    assert card.architecture.flops_per_pixel == card_flops_per_pixel(tmp_path / "tiny.onnx", 1) > 0

    train_cli(args)
    assert len(read_card(card_path).speed) == 1  # the same machine and engine: replaced, not added


def test_speed_refuses_models_that_take_more_than_one_image(tmp_path: Path) -> None:
    models = Path(__file__).resolve().parents[2] / "models"
    with pytest.raises(SystemExit, match="pixel-to-pixel"):
        train_cli(["speed", "--model", str(models / "style-any.json"), "--side", "32"])
