"""``eval-realworld``: a tiny run (one 64-px image, the shipped compact x4 model, a VGG16
with random weights) writes sane figures into the card's typed block and one grid per
setting, measures the strong setting as the card's degraded figures do, and a later
``eval --write-card`` keeps the block while the ONNX file is the one it measured."""

from __future__ import annotations

import io
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgenhance.cards import RealWorldScores, SRQuality, read_card
from tests.support import images
from training import evaluate as ev
from training import pretrained
from training.cli import main as train_cli
from training.config import TrainConfig
from training.measure import keep_real_world_lpips
from training.realworld import MODERATE, SETTINGS, jpeg_roundtrip

MODELS = Path(__file__).resolve().parents[2] / "models"
CONFIGS = Path(__file__).resolve().parents[2] / "training" / "configs"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    (root / "Set5").mkdir()
    with Image.open(images.BUTTERFLY) as im:
        im.convert("RGB").crop((96, 96, 160, 160)).save(root / "Set5" / "butterfly.png")
    return root


@pytest.fixture(scope="module")
def measured(data_root: Path, random_vgg_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shipped compact x4 model, measured once (so the shipped card is left alone)."""
    folder = tmp_path_factory.mktemp("models")
    for suffix in (".json", ".onnx"):
        shutil.copy(MODELS / f"sr-compact-x4{suffix}", folder / f"sr-compact-x4{suffix}")
    card = folder / "sr-compact-x4.json"
    args = ["--models", str(card), "--sets", "Set5", "--write-card", "--grid", str(folder / "realworld.jpg")]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pretrained, "CACHE_DIR", random_vgg_cache)
        train_cli(["--data-root", str(data_root), "eval-realworld", *args, "--grid-size", "32"])
    return card


def block_of(card: Path) -> RealWorldScores:
    quality = read_card(card).quality
    assert isinstance(quality, SRQuality) and quality.real_world_lpips is not None
    return quality.real_world_lpips


def test_a_tiny_run_writes_sane_figures_into_the_card(measured: Path) -> None:
    block = block_of(measured)
    shipped = read_card(MODELS / "sr-compact-x4.json")
    assert list(block.results) == [s.name for s in SETTINGS] == list(block.settings)
    assert block.onnx_sha256 == shipped.sha256 and " eval-realworld " in block.measured_by
    assert block.protocol["crop_border"] == 4 and block.protocol["sets"] == ["Set5"]
    for by_set in block.results.values():
        scores = by_set["Set5"]
        assert set(scores) == {"model", "bicubic"}
        for score in scores.values():
            assert 10.0 < score.psnr < 40.0 and math.isfinite(score.lpips) and score.lpips > 0.0
    quality = read_card(measured).quality  # the rest of the card is untouched
    assert isinstance(quality, SRQuality) and isinstance(shipped.quality, SRQuality)
    assert quality.results == shipped.quality.results


def test_one_grid_per_setting(measured: Path) -> None:
    for setting in SETTINGS:
        with Image.open(measured.parent / f"realworld-{setting.name}.jpg") as im:
            assert im.width > 4 * 32 and im.height > 32  # input, bicubic, model, ground truth


def test_the_strong_setting_is_what_the_cards_degraded_figures_measure(data_root: Path, measured: Path) -> None:
    sets = ev.load_sets(data_root, ["Set5"], 4)
    methods = {"model": ev.pipeline_upscaler(measured), "bicubic": ev.bicubic(4)}
    degraded = ev.evaluate_sr(methods, ev.degrade_sets(sets, 4), 4, progress=False)["results"]["Set5"]
    strong = block_of(measured).results["realesrgan-strong"]["Set5"]
    assert strong["model"].psnr == pytest.approx(degraded["model"]["psnr"], abs=1e-3)
    assert strong["bicubic"].psnr == pytest.approx(degraded["bicubic"]["psnr"], abs=1e-3)


def test_eval_keeps_the_block_while_the_onnx_file_is_unchanged(data_root: Path, measured: Path, tmp_path: Path) -> None:
    for suffix in (".json", ".onnx"):
        shutil.copy(measured.with_suffix(suffix), tmp_path / f"sr-compact-x4{suffix}")
    card = tmp_path / "sr-compact-x4.json"
    train_cli(["--data-root", str(data_root), "eval", "--model", str(card), "--sets", "Set5", "--write-card"])
    assert block_of(card) == block_of(measured)
    old = read_card(card)
    assert isinstance(old.quality, SRQuality)
    quality = old.quality.model_copy(update={"real_world_lpips": None})
    assert keep_real_world_lpips(quality, old, old.sha256) == old.quality
    assert keep_real_world_lpips(quality, old, "0" * 64) == quality  # another file: the figures are not its own


def test_the_jpeg_settings_are_one_pillow_round_trip() -> None:
    img = images.photo(40, 32)
    with Image.open(io.BytesIO(images.jpeg(img, quality=30))) as im:
        np.testing.assert_array_equal(jpeg_roundtrip(img, 30), np.asarray(im))


def test_the_moderate_setting_is_what_sr_realworld_x4_trains_on() -> None:
    for stage in ("psnr", "gan"):
        config = TrainConfig.from_toml(CONFIGS / f"sr_realworld_x4_{stage}.toml", [])
        assert config.degradation_args == MODERATE, stage
