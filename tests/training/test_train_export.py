"""A few training steps on tiny data, then export, parity and the card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from imgenhance.cards import DenoiseQuality, SRQuality, read_card
from tests.support import images
from training.cli import main as train_cli
from training.config import TrainConfig
from training.imresize import imresize, modcrop
from training.metrics import crop_border, psnr, y_channel


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    for name, count, size in [("train", 3, 144), ("val", 2, 48)]:
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(images.photo(size, size, seed=i)).save(root / name / f"{i}.png")
    return root


def test_config_overrides_and_refusals(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('name = "x"\nscale = 2\n')
    cfg = TrainConfig.from_toml(toml, ["steps=7", "arch_args={num_feat=4}", "name=y"])
    assert (cfg.steps, cfg.arch_args, cfg.name, cfg.scale) == (7, {"num_feat": 4}, "y", 2)
    with pytest.raises(ValueError, match="unknown config keys \\['stepz'\\]"):
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
    assert card.onnx_parity_max_abs_diff is not None and card.onnx_parity_max_abs_diff <= 1e-4
    assert isinstance(card.quality, SRQuality)
    assert set(card.quality.results["val"]) == {"model", "bicubic", "lanczos"}
    assert card.quality.protocol["crop_border"] == 2 and str(card.quality.protocol["channel"]).startswith("Y")
    assert "train" in card.training.command and card.training.steps >= 6
    assert (models / "tiny-x2.onnx").stat().st_size == card.bytes

    train_cli(
        [*common, "eval", "--model", str(models / "tiny-x2.json"), "--write-card", "--json", str(tmp_path / "r.json")]
    )
    report = json.loads((tmp_path / "r.json").read_text())["results"]["val"]
    assert json.loads((tmp_path / "r.json").read_text())["kind"] == "super-resolve"
    model, bicubic = y_psnr_on(data_root / "val", 2, models / "tiny-x2.onnx")
    assert abs(report["model"]["psnr"] - model) < 0.002 and abs(report["bicubic"]["psnr"] - bicubic) < 0.002
    rewritten = read_card(models / "tiny-x2.json").quality
    assert isinstance(rewritten, SRQuality) and " eval --model " in rewritten.measured_by


def y_psnr_on(folder: Path, scale: int, onnx_path: Path) -> tuple[float, float]:
    """Mean Y-PSNR (border cropped by the scale) of an ONNX model run directly, and of bicubic."""
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    model, bicubic = [], []
    for path in sorted(folder.glob("*.png")):
        hr = modcrop(np.asarray(Image.open(path).convert("RGB")), scale)
        lr = imresize(hr, 1 / scale)
        out = session.run(None, {"input": lr.transpose(2, 0, 1)[None].astype(np.float32) / 255})[0][0]
        sr = np.round(np.clip(out, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)
        for scores, up in ((model, sr), (bicubic, imresize(lr, scale))):
            scores.append(psnr(crop_border(y_channel(up), scale), crop_border(y_channel(hr), scale)))
    return float(np.mean(model)), float(np.mean(bicubic))


def _tiny_config(tmp_path: Path, lines: list[str]) -> Path:
    config = tmp_path / "c.toml"
    config.write_text(
        "\n".join(
            [
                *lines,
                'train_sets = ["train"]',
                'val_sets = ["val"]',
                'eval_sets = ["val"]',
                "batch_size = 2",
                "val_every = 2",
            ]
        )
    )
    return config


@pytest.mark.parametrize(
    ("gan_type", "disc", "net"),
    [
        ("ragan", "UNetDiscriminatorSN", "vgg19"),
        ("hinge", "VGGStyleDiscriminator", "vgg19"),
        ("wgan-gp", "UNetDiscriminatorSN", "vgg16"),
    ],
)
def test_gan_stage_from_a_psnr_checkpoint(
    data_root: Path, tmp_path: Path, vgg_weights: Path, gan_type: str, disc: str, net: str
) -> None:
    common = [
        'name = "rw"',
        'arch = "SRVGGNetCompact"',
        "arch_args = { num_feat = 8, num_conv = 2 }",
        "scale = 4",
        'degradation = "realesrgan"',
        "hr_patch = 128" if disc == "VGGStyleDiscriminator" else "hr_patch = 64",
    ]
    psnr = _tiny_config(tmp_path, [*common, "steps = 2"])
    train_cli(["--data-root", str(data_root), "train", "--config", str(psnr), "--out", str(tmp_path / "p"), "--quiet"])
    gan = _tiny_config(
        tmp_path,
        [
            *common,
            "steps = 2",
            'stage = "gan"',
            f'gan_type = "{gan_type}"',
            f'discriminator = "{disc}"',
            f'perceptual_net = "{net}"',
            'perceptual_fallback = "random"',
            "perceptual_layers = { conv1_2 = 1.0 }",
            f'init_from = "{tmp_path / "p" / "best.pt"}"',
        ],
    )
    train_cli(["--data-root", str(data_root), "train", "--config", str(gan), "--out", str(tmp_path / "g"), "--quiet"])
    record = json.loads((tmp_path / "g" / "history.json").read_text())["history"][0]
    assert {"pixel", "perceptual", "gan", "d_loss", "val_psnr"} <= set(record)
    from training.checkpoint import Checkpoint

    state = Checkpoint.load(tmp_path / "g" / "last.pt")
    assert state.discriminator is not None and state.optimizer_d is not None
    assert ("random weights" if net == "vgg19" else "VGG16 ImageNet") in state.perceptual
    best = Checkpoint.load(tmp_path / "g" / "best.pt")
    assert best.optimizer is None and best.discriminator is None  # only last.pt carries what resume needs


def test_denoise_train_export_card_and_blind_mode(data_root: Path, tmp_path: Path) -> None:
    config = _tiny_config(
        tmp_path,
        [
            'name = "dn"',
            'task = "denoise"',
            'arch = "DenoiseUNet"',
            "arch_args = { widths = [4, 8, 16], blocks = 1 }",
            "scale = 1",
            'degradation = "noise"',
            "hr_patch = 32",
            "steps = 2",
            'optimizer = "rmsprop"',
        ],
    )
    common = ["--data-root", str(data_root)]
    train_cli([*common, "train", "--config", str(config), "--out", str(tmp_path / "run"), "--quiet"])
    models = tmp_path / "models"
    train_cli(
        [
            *common,
            "export",
            "--checkpoint",
            str(tmp_path / "run" / "best.pt"),
            "--id",
            "dn",
            "--models-dir",
            str(models),
        ]
    )
    card = read_card(models / "dn.json")
    assert card.task == "denoise" and card.scale == 1 and card.io.inputs[0].shape == [-1, 4, -1, -1]
    assert card.io.noise_level is not None and card.io.noise_level.blind_value == -1.0
    assert card.io.size_multiple == 4
    quality = card.quality
    assert isinstance(quality, DenoiseQuality)
    assert set(quality.results["val"]["sigma25"]) == {"noisy", "model", "model_blind", "nlm", "bm3d"}
    gain = quality.gains["val"]["sigma25"].vs_bm3d_db
    bm3d, model = quality.results["val"]["sigma25"]["bm3d"].psnr, quality.results["val"]["sigma25"]["model"].psnr
    assert quality.protocol["channel"] == "RGB" and abs(gain - (model - bm3d)) < 0.002
    levels = card.io.noise_level.jpeg_levels
    assert levels is not None and list(levels) == ["10", "20", "30", "40", "50", "60", "70", "80", "90"]
    assert list(levels.values()) == sorted(levels.values(), reverse=True)  # lower quality, larger error
    assert quality.strength is not None and quality.strength.set == "val"
    assert set(quality.strength.psnr) == {"15", "25", "50"} and "blind" in quality.strength.psnr["25"]
    assert quality.jpeg is not None and set(quality.jpeg.results["val"]) == {"q10", "q20", "q30", "q50"}
    q10 = quality.jpeg.results["val"]["q10"].jpeg.psnr
    assert q10 < quality.jpeg.results["val"]["q50"].jpeg.psnr  # the inputs: lower quality, lower PSNR
