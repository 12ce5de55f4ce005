"""Short GPU windows: packing data within a budget, snapshots in parts and back, and
``scripts/gpu_window.sh`` keeping a run going across calls."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.support import images
from training import archs
from training.checkpoint import ArchSpec, Checkpoint
from training.train import initial_weights
from training.window import _spread, join_parts, pack_data, snapshot

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    for name, count, side in (("train", 2, 64), ("photos", 6, 600), ("val", 1, 48)):
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(images.photo(side, side * 3 // 4, seed=i)).save(root / name / f"{i}.png")
    return root


def test_every_prefix_of_the_photo_order_spreads_over_the_set() -> None:
    assert _spread(8) == [0, 4, 2, 6, 1, 5, 3, 7]
    assert sorted(_spread(6)) == list(range(6)) and _spread(6)[:2] == [0, 4]


def test_pack_data_keeps_the_budget_and_shrinks_photos(data_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "packed"
    whole = pack_data(data_root, ["train"], ["val"], ["photos"], out, max_mb=10)
    assert [(p.folder, p.images) for p in whole] == [("val", 1), ("train", 2), ("photos", 6)]
    with Image.open(next((out / "photos").iterdir())) as im:
        assert max(im.size) == 512 and im.format == "JPEG"
    assert (out / "val" / "0.png").read_bytes() == (data_root / "val" / "0.png").read_bytes()

    used_without_photos = sum(f.stat().st_size for d in ("val", "train") for f in (out / d).iterdir())
    budget = (used_without_photos + 2.5 * whole[2].megabytes * 1e6 / 6) / 1e6  # room for two or three photos
    some = pack_data(data_root, ["train"], ["val"], ["photos"], tmp_path / "some", max_mb=budget)
    assert 1 <= some[2].images < 6
    assert sum(f.stat().st_size for f in (tmp_path / "some").rglob("*") if f.is_file()) <= budget * 1e6
    with pytest.raises(ValueError, match="over --max-mb"):
        pack_data(data_root, ["train"], ["val"], [], tmp_path / "none", max_mb=0.001)


def test_a_snapshot_comes_back_in_parts_and_joins_into_a_checkpoint_that_starts_a_run(tmp_path: Path) -> None:
    torch.manual_seed(0)
    spec = ArchSpec("SRVGGNetCompact", archs.full_args("SRVGGNetCompact", {"num_feat": 16, "num_conv": 2}, 2))
    net = spec.build()
    run = tmp_path / "run"
    Checkpoint(
        config={"name": "t", "task": "super-resolve"}, arch=spec, params=net.state_dict(), params_ema=net.state_dict()
    ).save(run / "best.pt")
    (run / "history.json").write_text("{}")
    written = snapshot(run, tmp_path / "out", part_mb=0.005)
    parts = [p for p in written if ".part" in p.name]
    assert len(parts) >= 2 and all(p.stat().st_size <= 0.005 * 1024 * 1024 for p in parts)
    assert (tmp_path / "out" / "history.json").exists()

    joined = join_parts(tmp_path / "out", tmp_path / "joined.pt")
    weights = initial_weights(tmp_path / "joined.pt")
    for key, value in net.state_dict().items():
        assert weights[key].dtype == torch.float32
        torch.testing.assert_close(weights[key], value.half().float(), rtol=0, atol=0)
    assert joined.arch == spec


def test_the_window_script_runs_a_config_in_the_background_and_snapshots_it(data_root: Path, tmp_path: Path) -> None:
    config = tmp_path / "tiny.toml"
    config.write_text(
        "\n".join(
            [
                'name = "tiny"',
                "arch_args = { num_feat = 4, num_conv = 1 }",
                "scale = 2",
                'train_sets = ["train"]',
                'val_sets = ["val"]',
                'eval_sets = ["val"]',
                "lr_patch = 8",
                "batch_size = 2",
                "steps = 4",
                "val_every = 2",
            ]
        )
    )
    env = {**os.environ, "PYTHON": sys.executable, "RUN": str(tmp_path / "run"), "IMGENHANCE_DATA_ROOT": str(data_root)}
    args = ["bash", str(ROOT / "scripts/gpu_window.sh"), "120", str(tmp_path / "out"), str(config)]
    done = subprocess.run([*args, "--set", 'name="tiny run"'], env=env, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "run" / "finished").exists() and (tmp_path / "out" / "best16.part0").exists()
    assert '"tiny run"' in (tmp_path / "run" / "config.json").read_text()  # quoted options arrive intact
    again = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "starting" not in again.stdout  # a finished run is not started again
