"""Short GPU windows: packing data within a budget, snapshots in parts and back, and
``scripts/gpu_window.sh`` keeping a run going across calls."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.support import images
from training import archs, pretrained
from training.checkpoint import ArchSpec, Checkpoint
from training.train import initial_weights
from training.window import _spread, join_parts, pack_data, read_plan, snapshot

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


def test_copied_sets_arrive_whole_and_count_against_the_budget(data_root: Path, tmp_path: Path) -> None:
    (data_root / "digits").mkdir()
    (data_root / "digits" / "labels.csv").write_text("file,label\n0.png,7\n")
    Image.fromarray(images.photo(28, 28, seed=9)).save(data_root / "digits" / "0.png")
    out = tmp_path / "packed"
    packed = pack_data(data_root, ["train"], [], [], out, max_mb=10, copy_sets=["digits"])
    assert [(p.folder, p.images) for p in packed] == [("digits", 2), ("train", 2)]
    assert (out / "digits" / "labels.csv").read_text() == "file,label\n0.png,7\n"
    with pytest.raises(ValueError, match="over --max-mb"):
        pack_data(data_root, [], [], [], tmp_path / "none", max_mb=1e-4, copy_sets=["digits"])


def test_the_packed_vgg16_is_half_the_bytes_and_loads_as_float32_features_close_to_the_original(
    vgg_weights: Path, tmp_path: Path
) -> None:
    original = pretrained.load_vgg16_arrays()
    packed = pretrained.pack_vgg16(tmp_path / "upload")
    assert packed.name == pretrained.VGG16_LPIPS.name
    assert packed.stat().st_size < 0.55 * (vgg_weights / pretrained.VGG16_LPIPS.name).stat().st_size
    back = pretrained.load_vgg16_arrays(packed)
    assert back.keys() == original.keys() and all(v.dtype == np.float32 for v in back.values())
    assert pretrained.check_close_features(original, back) < 1e-2
    noisy = {k: v + np.float32(0.2) * np.abs(v).mean() for k, v in original.items()}
    with pytest.raises(pretrained.WeightsError, match="relu4_3"):
        pretrained.check_close_features(original, noisy)


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


def _tiny_style(tmp_path: Path) -> tuple[Path, Path]:
    """A data root with content, evaluation and painting folders, and a one-painting config."""
    root = tmp_path / "data"
    for name, count, side in (("content", 8, 64), ("Set5", 1, 48), ("styles", 1, 64)):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            Image.fromarray(images.photo(side, side, seed=10 + i)).save(root / name / f"{i}.png")
    config = tmp_path / "named.toml"
    lines = ['name = "tiny-style"', 'method = "johnson"', "arch_args = { width = 4, blocks = 1 }", "steps = 2"]
    lines += ['content_sets = ["content"]', 'eval_sets = ["Set5"]', "crop = 32", "batch_size = 1", "val_every = 2"]
    lines += ["eval_size = 48", "style_size = 64", "[[styles]]", 'name = "one"', 'image = "styles/0.png"']
    lines += ['title = "One"', 'artist = "A. Test"', 'year = "2026"']
    config.write_text("\n".join(lines))
    return root, config


def test_the_window_script_runs_style_training_from_a_weights_cache_named_by_the_environment(
    random_vgg_cache: Path, tmp_path: Path
) -> None:
    root, config = _tiny_style(tmp_path)
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "RUN": str(tmp_path / "run"),
        "TRAIN": "train-style",
        "IMGENHANCE_DATA_ROOT": str(root),
        "IMGENHANCE_CACHE": str(random_vgg_cache),
    }
    args = ["bash", str(ROOT / "scripts/gpu_window.sh"), "120", str(tmp_path / "out"), str(config), "--device", "cpu"]
    done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=150)
    assert done.returncode == 0, done.stderr
    assert "starting train-style" in done.stdout and (tmp_path / "out" / "best16.part0").exists()
    joined = join_parts(tmp_path / "out", tmp_path / "best.pt")
    assert joined.arch.name == "TransformerNet" and joined.step == 2

    wrong = subprocess.run(args, env={**env, "TRAIN": "serve"}, cwd=ROOT, capture_output=True, text=True)
    assert wrong.returncode == 2 and "train-style or train-gan" in wrong.stderr


def test_the_shipped_window_plan_loads_and_a_plan_with_a_typo_is_refused(tmp_path: Path) -> None:
    runs = read_plan(ROOT / "training/configs/window_plan.txt")
    assert {r.program for r in runs} == {"train-style", "train-gan"} and all("cuda" in r.options for r in runs)
    for bad, message in [
        ("a train-gan training/configs/gan/faces.toml --set d_widht=3", "d_widht"),
        ("a train-gan training/configs/gan/faces.toml --sett x=1", "does not take"),
        ("a serve training/configs/gan/faces.toml", "expected"),
        ("a train-gan training/configs/gan/faces.toml\na train-gan training/configs/gan/faces.toml", "second run"),
    ]:
        plan = tmp_path / "bad.txt"
        plan.write_text(bad + "\n")
        with pytest.raises(ValueError, match=message):
            read_plan(plan)


def test_the_plan_script_trains_its_runs_side_by_side_from_joined_starting_weights(
    random_vgg_cache: Path, tmp_path: Path
) -> None:
    root, config = _tiny_style(tmp_path)
    first = tmp_path / "first"
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "IMGENHANCE_DATA_ROOT": str(root),
        "IMGENHANCE_CACHE": str(random_vgg_cache),
    }
    train = [sys.executable, "-m", "training", "train-style", "--config", str(config), "--device", "cpu", "--quiet"]
    subprocess.run([*train, "--out", str(first)], env=env, cwd=ROOT, check=True, capture_output=True)
    snapshot(first, tmp_path / "init" / "started")  # as carried up: float16 parts
    plan = tmp_path / "plan.txt"
    plan.write_text(
        "# two runs of one config\n"
        f"fresh  train-style {config} --device cpu\n"
        f"warm   train-style {config} --device cpu --set steps=4 --set 'init_from=\"{tmp_path}/init/started.pt\"'\n"
    )
    env |= {"RUNS": str(tmp_path / "runs"), "INITS": str(tmp_path / "init")}
    done = subprocess.run(
        ["bash", str(ROOT / "scripts/gpu_plan.sh"), "120", str(tmp_path / "out"), str(plan)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=200,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "init" / "started.pt").exists()
    fresh, warm = (join_parts(tmp_path / "out" / n, tmp_path / f"{n}.pt") for n in ("fresh", "warm"))
    assert (fresh.step, warm.step) == (2, 4)
    assert "initialised from" in (tmp_path / "runs" / "warm" / "train.log").read_text()
