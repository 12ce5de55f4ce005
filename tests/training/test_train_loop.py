"""The loop's decisions: learning-rate schedule, overfitting warning, early stopping,
held-out validation split."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.support import images
from training import loop
from training.config import TrainConfig
from training.loop import cosine_lr
from training.train import overfitting, train


def test_cosine_schedule_runs_from_base_to_minimum() -> None:
    assert cosine_lr(1e-3, 1e-6, 0.0) == pytest.approx(1e-3)
    assert cosine_lr(1e-3, 1e-6, 0.5) == pytest.approx((1e-3 + 1e-6) / 2)
    assert cosine_lr(1e-3, 1e-6, 1.0) == pytest.approx(1e-6)
    assert cosine_lr(1e-3, 1e-6, 7.0) == pytest.approx(1e-6)  # past the budget it stays at the floor


def test_a_budget_of_no_steps_is_spent_at_once_and_steps_or_minutes_end_the_others() -> None:
    assert loop.Budget(0, 0).fraction(0) == 1.0  # `--set steps=0`: write the starting weights only
    assert loop.Budget(10, 0).fraction(5) == pytest.approx(0.5)
    assert loop.Budget(10, 1.0, elapsed_before=45.0).fraction(1) == pytest.approx(0.75, abs=0.01)


def test_overfitting_means_train_up_while_validation_goes_down() -> None:
    rising = [{"train_psnr": 20 + i, "val_psnr": 25 - 0.1 * i} for i in range(5)]
    both_up = [{"train_psnr": 20 + i, "val_psnr": 25 + 0.1 * i} for i in range(5)]
    assert overfitting(rising) and not overfitting(both_up) and not overfitting(rising[:2])


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "data" / "all"
    root.mkdir(parents=True)
    for i in range(6):
        Image.fromarray(images.photo(64, 64, seed=i)).save(root / f"{i}.png")
    return tmp_path / "data"


def tiny(**overrides: object) -> TrainConfig:
    base = {
        "name": "t",
        "arch_args": {"num_feat": 4, "num_conv": 1},
        "scale": 2,
        "train_sets": ["all"],
        "val_sets": [],
        "val_split": 0.34,
        "lr_patch": 16,
        "batch_size": 2,
        "steps": 6,
        "val_every": 1,
    }
    return TrainConfig.from_dict({**base, **overrides})


def test_early_stopping_after_patience_validations_without_gain(
    folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # lr = 0: validation can never improve after the first check, so patience 2 stops at step 3
    with caplog.at_level(logging.INFO, logger="training"):
        train(tiny(lr=0.0, lr_min=0.0, patience=2), folder, tmp_path / "run", progress=False)
    history = json.loads((tmp_path / "run" / "history.json").read_text())["history"]
    assert [h["step"] for h in history] == [1, 2, 3]
    assert "early stop at step 3" in caplog.text


def test_held_out_validation_images_are_not_trained_on(folder: Path) -> None:
    import torch

    from training import sources

    source, validator = sources.build(tiny(), folder, torch.device("cpu"), 1)
    assert isinstance(validator, sources.SRValidator) and isinstance(source, sources.BicubicSource)
    held_out = {p.name for p in validator.pairs}
    assert len(held_out) == 2 and len(source.sampler) == 4  # 34% of 6 images held out


def test_bf16_is_used_where_the_cpu_has_the_instructions_and_the_run_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loop, "cpu_has_bf16", lambda: True)
    assert loop.use_bf16(torch.device("cpu"), True) and not loop.use_bf16(torch.device("cpu"), False)


def test_bf16_is_refused_with_one_warning_on_a_cpu_without_the_instructions(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(loop, "cpu_has_bf16", lambda: False)
    with caplog.at_level(logging.WARNING, logger="training"):
        assert not loop.use_bf16(torch.device("cpu"), True)
        assert not loop.use_bf16(torch.device("cpu"), False)  # a run that did not ask hears nothing
    assert caplog.text.count("no bf16 instructions") == 1


def test_a_gradient_spike_is_clipped_to_a_multiple_of_the_recent_median_norm() -> None:
    param = torch.nn.Parameter(torch.zeros(4))
    clip = loop.SpikeClip(factor=5.0)

    def step(norm: float) -> bool:
        param.grad = torch.full((4,), norm / 2)  # a vector of 4 equal entries has this norm
        return clip([param])

    assert not any(step(1.0 + 0.01 * i) for i in range(30))  # ordinary steps pass untouched
    assert step(1000.0)
    assert float(param.grad.norm()) == pytest.approx(5 * 1.145, rel=0.01)  # 5x the median of 1.00..1.29
    assert not step(1.2)
    off = loop.SpikeClip(factor=0.0)
    param.grad = torch.full((4,), 500.0)
    assert not off([param]) and float(param.grad.norm()) == 1000.0


def test_ema_moves_every_weight_by_the_same_fraction_towards_the_model() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    ema = loop.EMA(model, decay=0.9)
    before = [p.clone() for p in ema.model.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
        model[1].running_mean.add_(2.0)
    ema.update(model)
    for old, new, target in zip(before, ema.model.parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(new, old + 0.1 * (target - old))
    torch.testing.assert_close(ema.model[1].running_mean, model[1].running_mean)  # buffers copied as they are


def test_channels_last_trains_the_same_model(folder: Path, tmp_path: Path) -> None:
    """The layout is a speed setting: the same seed gives the same weights, to float rounding."""
    runs, ema = {}, {}
    for layout in (False, True):
        out = tmp_path / f"run-{layout}"
        train(tiny(steps=3, val_every=3, channels_last=layout), folder, out, progress=False)
        saved = torch.load(out / "best.pt", weights_only=True)
        runs[layout], ema[layout] = saved["params"], saved["params_ema"]
    # the trained weights, not the EMA (at decay 0.999 it has barely left the initial weights)
    assert any((runs[False][k] - ema[False][k]).abs().max() > 1e-4 for k in runs[False])
    for key, value in runs[False].items():
        torch.testing.assert_close(runs[True][key], value, rtol=1e-4, atol=1e-5)
