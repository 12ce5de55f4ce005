"""Distillation (``teacher`` in a TrainConfig): targets are the teacher's outputs on the
student's inputs, made into a pool that refreshes, and validation follows the teacher."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.support import images
from training.config import TrainConfig
from training.sources import TEACHER_MARGIN, TeacherSource
from training.train import train

ROOT = Path(__file__).resolve().parents[2]


class Counter:
    """A source of numbered patches: patch k has k / 255 in green and a ramp in red (so
    flips and rotations change it)."""

    def __init__(self, side: int) -> None:
        self.side, self.made = side, 0

    def sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        values = torch.arange(self.made, self.made + n, dtype=torch.float32) / 255
        self.made += n
        lr = values.view(n, 1, 1, 1).expand(n, 3, self.side, self.side).clone()
        lr[:, 0] = torch.arange(self.side * self.side, dtype=torch.float32).view(self.side, self.side) / 1024
        return lr, torch.zeros(n, 3, 2 * self.side, 2 * self.side)


def nearest_x2(batch: np.ndarray) -> np.ndarray:
    return np.asarray(batch.repeat(2, axis=2).repeat(2, axis=3), dtype=np.float32)


def test_targets_are_the_teachers_output_inside_the_margin_and_stay_aligned() -> None:
    side = 6 + 2 * TEACHER_MARGIN
    source = TeacherSource(Counter(side), nearest_x2, scale=2, pool=5, refresh=0, seed=0)
    assert source.inputs.shape == (5, 3, 6, 6) and source.targets.shape == (5, 3, 12, 12)
    assert source.targets.dtype == torch.uint8
    lr, target = source.sample(8)
    # nearest x2 commutes with every flip and rotation, so augmentation kept the pairs aligned
    expected = torch.from_numpy(nearest_x2(lr.numpy()))
    assert torch.allclose(target, expected, atol=0.5 / 255)


def test_refresh_replaces_the_oldest_pairs_with_new_degradations() -> None:
    inner = Counter(4 + 2 * TEACHER_MARGIN)
    source = TeacherSource(inner, nearest_x2, scale=2, pool=4, refresh=3, seed=0)
    first = [round(float(x) * 255) for x in source.inputs[:, 1, 0, 0]]
    assert first == [0, 1, 2, 3]
    source.sample(2)
    source.sample(2)
    after = [round(float(x) * 255) for x in source.inputs[:, 1, 0, 0]]
    assert after == [8, 9, 6, 7]  # 4, 5, 6 replaced 0-2, then 7, 8, 9 replaced 3, 4, 5
    assert inner.made == 10


def test_a_resumed_run_reuses_its_pool_unless_the_settings_changed(tmp_path: Path) -> None:
    side, cache = 4 + 2 * TEACHER_MARGIN, tmp_path / "pool.pt"
    calls: list[int] = []

    def teacher(batch: np.ndarray) -> np.ndarray:
        calls.append(len(batch))
        return nearest_x2(batch)

    first = TeacherSource(Counter(side), teacher, 2, pool=3, refresh=0, seed=0, cache=cache, cache_key="a")
    again = TeacherSource(Counter(side), teacher, 2, pool=3, refresh=0, seed=0, cache=cache, cache_key="a")
    assert sum(calls) == 3 and torch.equal(first.targets, again.targets)
    TeacherSource(Counter(side), teacher, 2, pool=3, refresh=0, seed=0, cache=cache, cache_key="b")
    assert sum(calls) == 6


def test_refresh_cannot_exceed_the_pool() -> None:
    with pytest.raises(ValueError, match="teacher_refresh"):
        TrainConfig(name="t", teacher="x.json", teacher_pool=2, teacher_refresh=3)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for sub, count in (("train", 3), ("val", 1)):
        (tmp_path / sub).mkdir()
        for i in range(count):
            Image.fromarray(images.photo(72, 72, seed=10 * i + len(sub))).save(tmp_path / sub / f"{i}.png")
    return tmp_path


def test_a_student_trains_against_a_shipped_teacher(folder: Path, tmp_path: Path, vgg_weights: Path) -> None:
    cfg = TrainConfig.from_dict(
        {
            "name": "student",
            "stage": "perceptual",
            "perceptual_batch": 1,
            "arch_args": {"num_feat": 4, "num_conv": 1},
            "scale": 2,
            "teacher": str(ROOT / "models" / "sr-compact-x2.json"),
            "teacher_pool": 4,
            "teacher_refresh": 1,
            "train_sets": ["train"],
            "val_sets": ["val"],
            "lr_patch": 8,
            "batch_size": 2,
            "steps": 2,
            "val_every": 1,
        }
    )
    best = train(cfg, folder, tmp_path / "run", progress=False)
    history = json.loads((tmp_path / "run" / "history.json").read_text())["history"]
    assert best.exists() and len(history) == 2 and (tmp_path / "run" / "teacher-pool.pt").exists()
    assert all(h["perceptual"] > 0 for h in history) and "gan" not in history[0]
    # the student (4 features, 2 steps) is far from the teacher: validation measures that gap
    assert all(np.isfinite(h["val_psnr"]) and h["val_psnr"] < 60 for h in history)


def test_every_sr_config_parses_and_the_distill_config_names_shipped_cards() -> None:
    configs = sorted((ROOT / "training" / "configs").glob("*.toml"))
    parsed = {path.stem: TrainConfig.from_toml(path) for path in configs}
    distill = parsed["sr_realworld_x4_distill"]
    assert (ROOT / distill.teacher).exists() and (ROOT / distill.init_from).exists()


def test_a_shallow_rrdbnet_starts_from_the_named_blocks_of_a_deeper_one() -> None:
    from training import archs
    from training.archs.rrdb import keep_blocks

    args = {"num_feat": 8, "num_grow_ch": 4, "scale": 4}
    deep = archs.build("RRDBNet", {**args, "num_block": 5}).state_dict()
    shallow = archs.build("RRDBNet", {**args, "num_block": 2})
    shallow.load_state_dict(keep_blocks(deep, [0, 3]))  # strict: every key present, none left over
    cut = shallow.state_dict()
    assert torch.equal(cut["body.1.rdb1.conv1.weight"], deep["body.3.rdb1.conv1.weight"])
    assert torch.equal(cut["body.0.rdb3.conv5.bias"], deep["body.0.rdb3.conv5.bias"])
    assert torch.equal(cut["conv_up2.weight"], deep["conv_up2.weight"])
    with pytest.raises(ValueError, match=r"\(0\.\.4\)"):
        keep_blocks(deep, [0, 5])


def test_init_blocks_needs_an_rrdbnet_its_init_and_one_block_per_layer() -> None:
    rrdb = {"name": "t", "arch": "RRDBNet", "arch_args": {"num_block": 2}, "init_from": "x.json"}
    TrainConfig.from_dict({**rrdb, "init_blocks": [0, 7]})
    with pytest.raises(ValueError, match="names 3 blocks"):
        TrainConfig.from_dict({**rrdb, "init_blocks": [0, 1, 2]})
    with pytest.raises(ValueError, match="needs both"):
        TrainConfig.from_dict({**rrdb, "init_from": "", "init_blocks": [0, 1]})
    with pytest.raises(ValueError, match="needs both"):
        TrainConfig.from_dict({"name": "t", "init_from": "x.json", "init_blocks": [0]})
