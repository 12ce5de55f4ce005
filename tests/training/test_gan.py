"""GANs in training: the networks, DiffAugment, the metrics, and a few steps of each loss,
progressive growing, transfer with a frozen discriminator, then export and a card."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from imgenhance.cards import GenerateQuality, read_card
from training import pretrained
from training.archs.gan import (
    Discriminator,
    EqualizedConv2d,
    EqualizedLinear,
    ExportedGenerator,
    Generator,
    _sn,
    fold_scales,
)
from training.cli import main as train_cli
from training.config import GanConfig
from training.diffaugment import cutout, diff_augment, translation
from training.fid import fid, kid
from training.train_gan import diversity, ema_decay, schedule

INCEPTION = pytest.mark.skipif(
    not pretrained.INCEPTION_FID.cached.exists(), reason="run `python -m training weights fetch` (make test does)"
)


def test_generator_and_discriminator_shapes_at_every_level() -> None:
    g, d = Generator(32, 1, 16, classes=3, width=32, min_width=8), Discriminator(32, 1, 3, 32, 8)
    z, y = torch.randn(4, 16), torch.tensor([0, 1, 2, 0])
    for level in range(4):
        img = g(z, y, level, alpha=0.5)
        assert img.shape == (4, 1, 4 * 2**level, 4 * 2**level) and img.abs().max() <= 1
        assert d(img, y, level, alpha=0.5).shape == (4,)


def test_an_image_depends_only_on_its_own_latent() -> None:
    g = Generator(16, 3, 8, width=16, min_width=8).eval()
    z = torch.randn(5, 8)
    with torch.no_grad():
        torch.testing.assert_close(g(z)[:2], g(z[:2]))


def test_equalized_layers_scale_unit_weights_by_he_and_leave_scale_to_spectral_norm() -> None:
    conv, lin = EqualizedConv2d(4, 8, 3, padding=1, gain=2.0), EqualizedLinear(10, 3, gain=1.0)
    assert abs(float(conv.weight.detach().std()) - 1) < 0.2 and not conv.bias.any()
    x = torch.randn(2, 4, 5, 5)
    expected = torch.nn.functional.conv2d(x, conv.weight.detach() * 2.0 / 6.0, conv.bias.detach(), padding=1)
    with torch.no_grad():
        torch.testing.assert_close(conv(x), expected)
        v = torch.randn(2, 10)
        torch.testing.assert_close(lin(v), v @ (lin.weight / 10**0.5).T)
    normed = _sn(EqualizedConv2d(4, 8, 3, padding=1), True)
    assert isinstance(normed, EqualizedConv2d) and normed.scale == 1.0


def _relative_moves(g: Generator) -> list[float]:
    """How far one Adam step moves each convolution's effective weights, relative to their size."""
    layers = [m for m in g.modules() if isinstance(m, torch.nn.Conv2d)]

    def effective(m: torch.nn.Conv2d) -> torch.Tensor:
        return (m.weight * getattr(m, "scale", 1.0)).detach().clone()

    before = [effective(m) for m in layers]
    opt = torch.optim.Adam(g.parameters(), lr=1e-3, betas=(0.0, 0.99))
    g(torch.randn(8, 16, generator=torch.Generator().manual_seed(0))).square().mean().backward()
    opt.step()
    used = [(m, b) for m, b in zip(layers, before, strict=True) if m.weight.grad is not None and m.weight.grad.any()]
    return [float((effective(m) - b).norm() / b.norm()) for m, b in used]  # the lower levels' to_image are unused


def test_equalized_lr_moves_every_layer_by_the_same_fraction_per_step() -> None:
    torch.manual_seed(0)
    equal = _relative_moves(Generator(32, 3, 16, width=128, min_width=8, equalized=True))
    default = _relative_moves(Generator(32, 3, 16, width=128, min_width=8))
    assert max(equal) / min(equal) < 1.5 and all(5e-4 < m < 2e-3 for m in equal)
    assert max(default) / min(default) > 4  # the wide layers swing, the narrow ones barely move


def test_an_equalized_generator_exports_with_its_scales_folded_in(tmp_path: Path) -> None:
    import onnxruntime as ort

    from training.export import GraphInput, export_onnx

    g = ExportedGenerator(Generator(16, 3, 8, width=16, min_width=8, equalized=True)).eval()
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = g(z).numpy()
    fold_scales(g)
    path = tmp_path / "g.onnx"
    export_onnx(g, path, inputs=[GraphInput("latent", "latent", 8)])
    (out,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"latent": z.numpy()})
    np.testing.assert_allclose(out, before, atol=1e-5)
    names = {init.name for init in onnx.load(str(path)).graph.initializer}
    assert {"generator.head.weight", "generator.blocks.0.1.weight"} <= names  # what from_onnx reads back


def test_progressive_schedule_fades_each_new_level_in_over_half_a_stage() -> None:
    cfg = GanConfig(name="x", resolution=32, progressive=[8, 16, 32], stage_steps=10)
    assert schedule(cfg, 0, 3) == (1, 1.0)
    assert schedule(cfg, 10, 3) == (2, 0.0) and schedule(cfg, 12, 3) == (2, 0.4) and schedule(cfg, 15, 3) == (2, 1.0)
    assert schedule(cfg, 99, 3) == (3, 1.0)
    assert schedule(GanConfig(name="y", resolution=32), 5, 3) == (3, 1.0)


def test_the_ema_ramps_up_again_after_each_growth_only() -> None:
    grow = GanConfig(name="x", resolution=32, progressive=[8, 16, 32], stage_steps=1000, ema_decay=0.999)
    assert ema_decay(grow, 0) == ema_decay(grow, 999) == 0.999  # the first stage has no new layers
    assert ema_decay(grow, 1000) == 0.1 and ema_decay(grow, 2000) == 0.1
    assert 0.99 < ema_decay(grow, 1999) < 0.999 and ema_decay(grow, 2000 + 50_000) == 0.999
    assert ema_decay(GanConfig(name="y", resolution=32, ema_decay=0.999), 5) == 0.999


def test_translation_moves_the_picture_and_pads_with_zeros() -> None:
    x = torch.zeros(64, 1, 16, 16)
    x[:, :, 8, 8] = 1.0
    moved = translation(x, torch.Generator().manual_seed(0))
    assert (moved.sum(dim=(1, 2, 3)) <= 1).all() and not torch.equal(moved, x)


def test_cutout_zeroes_a_square_of_half_the_side() -> None:
    out = cutout(torch.ones(200, 1, 16, 16), torch.Generator().manual_seed(0))
    zeroed = (out == 0).float().sum(dim=(1, 2, 3))
    assert zeroed.max() == 64 and zeroed.min() > 0  # 8x8 when it lies inside, less at the borders


def test_diffaugment_lets_gradients_reach_the_generator() -> None:
    x = torch.rand(4, 3, 16, 16, requires_grad=True)
    diff_augment(x, ["color", "translation", "cutout"], torch.Generator().manual_seed(0)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_fid_of_gaussians_is_their_mean_distance_squared() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((20000, 4)), rng.standard_normal((20000, 4)) + np.array([2.0, 0, 0, 0])
    assert abs(fid(a, a)) < 1e-6
    assert abs(fid(a, b) - 4.0) < 0.1


def test_kid_is_unbiased_where_the_biased_estimate_is_not() -> None:
    rng = np.random.default_rng(1)
    same = [kid(rng.standard_normal((20, 8)), rng.standard_normal((20, 8)), subsets=1, seed=i) for i in range(400)]
    mean, err = float(np.mean(same)), float(np.std(same) / np.sqrt(len(same)))
    assert abs(mean) < 3 * err  # unbiased: same distribution -> zero on average, even with 20 samples
    shifted = kid(rng.standard_normal((200, 8)), rng.standard_normal((200, 8)) + 1.0, subsets=5)
    assert shifted > 10 * err


@INCEPTION
def test_fid_is_zero_for_a_set_and_itself_and_grows_with_blur_and_noise() -> None:
    import torch.nn.functional as F

    from tests.support import images
    from training.fid import InceptionFeatures

    rng = np.random.default_rng(0)
    photos = np.stack([images.photo(64, 64, seed=i).transpose(2, 0, 1) for i in range(16)])
    features = InceptionFeatures()
    base = features(photos)
    assert abs(fid(base, base)) < 1e-3

    def blurred(k: int) -> np.ndarray:
        x = torch.from_numpy(photos).float()
        return F.avg_pool2d(x, k, stride=1, padding=k // 2, count_include_pad=False).round().byte().numpy()

    def noisy(sigma: float) -> np.ndarray:
        return np.clip(photos + rng.normal(0, sigma, photos.shape), 0, 255).astype(np.uint8)

    blur = [fid(base, features(blurred(k))) for k in (3, 9)]
    noise = [fid(base, features(noisy(s))) for s in (15, 50)]
    assert blur == sorted(blur) and noise == sorted(noise) and blur[0] > 0 and noise[0] > 0


def write_idx(path: Path, array: np.ndarray) -> None:
    header = b"\x00\x00\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def digits(tmp_path: Path) -> Path:
    """A tiny MNIST: 60 28x28 'digits' (a bar whose position is the class), 20 held out."""
    root = tmp_path / "data"
    (root / "mnist").mkdir(parents=True)
    labels = np.arange(60) % 3
    imgs = np.zeros((60, 28, 28), np.uint8)
    for i, k in enumerate(labels):
        imgs[i, 4 + 8 * k : 10 + 8 * k, 6:22] = 255
    write_idx(root / "mnist" / "t10k-images-idx3-ubyte.gz", imgs)
    write_idx(root / "mnist" / "t10k-labels-idx1-ubyte.gz", labels)
    return root


TINY = [
    'data = "mnist"',
    "holdout = 20",
    'classes = ["a", "b", "c"]',
    "latent = 8",
    "g_width = 16",
    "d_width = 16",
    "min_width = 8",
    "batch_size = 4",
    "sample_every = 2",
]


def _train(root: Path, tmp_path: Path, name: str, lines: list[str], extra: list[str] | None = None) -> Path:
    config = tmp_path / f"{name}.toml"
    config.write_text("\n".join([f'name = "{name}"', *TINY, *lines]))
    run = tmp_path / name
    train_cli(
        ["--data-root", str(root), "train-gan", "--config", str(config), "--out", str(run), "--quiet", *(extra or [])]
    )
    return run


@pytest.mark.parametrize("loss", ["bce", "lsgan", "wgan-gp", "hinge"])
def test_every_loss_trains(digits: Path, tmp_path: Path, loss: str) -> None:
    run = _train(digits, tmp_path, f"g-{loss}", [f'loss = "{loss}"', "steps = 2", "r1_weight = 1.0", "cr_weight = 1.0"])
    record = json.loads((run / "history.json").read_text())["history"][-1]
    assert {"d_loss", "g_loss", "d_spread", "r1", "cr", "diversity_vs_real"} <= set(record)
    assert np.isfinite(record["d_loss"]) and np.isfinite(record["g_loss"])
    assert (run / "samples.png").exists() and (run / "progress.gif").exists() and (run / "curves.png").exists()


@pytest.mark.parametrize("spectral_norm", ["true", "false"])
def test_equalized_lr_trains_with_and_without_spectral_norm(digits: Path, tmp_path: Path, spectral_norm: str) -> None:
    lines = ["equalized_lr = true", f"spectral_norm = {spectral_norm}", "r1_weight = 0.2", "steps = 2"]
    run = _train(digits, tmp_path, f"eq-{spectral_norm}", lines)
    record = json.loads((run / "history.json").read_text())["history"][-1]
    assert np.isfinite(record["d_loss"]) and np.isfinite(record["g_loss"])
    from training.checkpoint import Checkpoint

    arch = Checkpoint.load(run / "best.pt").arch
    assert arch is not None and arch.args["equalized"] is True
    assert isinstance(arch.build().head, EqualizedLinear)


def test_progressive_diffaugment_resume_transfer_with_frozen_d_and_export(digits: Path, tmp_path: Path) -> None:
    grow = ["progressive = [8, 16, 32]", "stage_steps = 2", 'diffaugment = ["color", "translation", "cutout"]']
    run = _train(digits, tmp_path, "grow", [*grow, "steps = 4"])
    history = json.loads((run / "history.json").read_text())["history"]
    assert [h["level"] for h in history] == [1, 2]
    _train(digits, tmp_path, "grow", [*grow, "steps = 6"], ["--resume", "auto"])
    assert [h["step"] for h in json.loads((run / "history.json").read_text())["history"]] == [2, 4, 6]

    from training.checkpoint import Checkpoint

    before = Checkpoint.load(run / "last.pt").discriminator
    assert before is not None
    moved = _train(digits, tmp_path, "transfer", [f'init_from = "{run / "last.pt"}"', "freeze_d = 1", "steps = 2"])
    after = Checkpoint.load(moved / "last.pt").discriminator
    assert after is not None
    params = [k for k in before if k.endswith(("original", "bias"))]  # spectral norm's u, v buffers always move
    frozen = [k for k in params if k.startswith(("from_image.0.", "blocks.0."))]
    trained = [k for k in before if k.startswith("logit.")]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert any(not torch.equal(before[k], after[k]) for k in trained)

    if not pretrained.INCEPTION_FID.cached.exists():
        pytest.skip("export measures FID: run `python -m training weights fetch` (make test does)")
    models = tmp_path / "models"
    train_cli(
        [
            *["--data-root", str(digits), "export", "--checkpoint", str(run / "best.pt"), "--id", "gen-tiny"],
            *["--models-dir", str(models), "--generated-images", "24", "--grid", str(tmp_path / "grid.png")],
        ]
    )
    card = read_card(models / "gen-tiny.json")
    assert card.task == "generate" and card.generator is not None and card.generator.classes == ["a", "b", "c"]
    assert [(t.name, t.role, t.dtype) for t in card.io.inputs] == [
        ("latent", "latent", "float32"),
        ("class", "class", "int64"),
    ]
    assert card.io.outputs[0].shape == [-1, 1, 32, 32]
    assert card.onnx_parity_max_abs_diff is not None and card.onnx_parity_max_abs_diff <= 1e-4
    assert isinstance(card.quality, GenerateQuality) and card.quality.generated_images == 24
    classifier = card.quality.classifier
    assert classifier is not None and set(classifier.generated) == {"a", "b", "c"}
    assert all(v == 1.0 for v in classifier.real.values())  # the bars are trivially readable
    assert all(0.0 <= v <= 1.0 for v in classifier.generated.values())
    assert (tmp_path / "grid.png").exists()


@INCEPTION
def test_an_ablation_trains_its_variants_in_parallel_then_measures_each(digits: Path, tmp_path: Path) -> None:
    import os

    config = tmp_path / "abl.toml"
    config.write_text("\n".join(['name = "abl"', *TINY, "steps = 2"]))
    out = tmp_path / "ablations"
    vary = ["--vary", 'loss="bce"|"hinge"', "--generated-images", "24", "--out", str(out)]
    train_cli(["--data-root", str(digits), "ablate", "--config", str(config), *vary, "--jobs", "2"])
    rows = json.loads((out / "abl-ablation-loss.json").read_text())
    assert [r["loss"] for r in rows] == ["bce", "hinge"] and all(r["steps"] == 2 for r in rows)
    assert all(np.isfinite(r["fid"]) and 0 <= r["worst_class_ratio"] <= 1 for r in rows)
    for i, loss in enumerate(["bce", "hinge"]):
        run = json.loads((out / f"abl-loss-{i}" / "config.json").read_text())
        assert run["loss"] == loss and run["threads"] == max(1, (os.cpu_count() or 1) // 2)
    assert '| "bce" | 2 |' in (out / "abl-ablation-loss.md").read_text()
    with Image.open(out / "abl-loss-0" / "samples.png") as one, Image.open(out / "abl-ablation-loss.png") as both:
        assert both.width > 2 * one.width  # both variants, side by side

    from training.ablation import _train_variant

    run = out / "abl-loss-1"
    trained = (run / "last.pt").stat().st_mtime_ns
    cfg = GanConfig.from_toml(config, ['loss="hinge"'])
    assert _train_variant(cfg, digits, run, "cpu", "again") == run / "best.pt"  # finished: not trained again
    assert (run / "last.pt").stat().st_mtime_ns == trained


def test_a_worker_names_each_variant_it_trains_in_its_log_lines(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from training.ablation import label_logs

    root = logging.getLogger()
    handler = logging.StreamHandler()
    root.addHandler(handler)
    formatters = [h.formatter for h in root.handlers]
    try:
        for run in ("v-0", "v-2"):
            label_logs(run)
            logging.getLogger("training").warning("step 250")
    finally:
        for h, f in zip(root.handlers, formatters, strict=True):
            h.setFormatter(f)
        root.removeHandler(handler)
    err = capsys.readouterr().err
    assert "[v-0] step 250" in err and "[v-2] step 250" in err


def test_ablation_workers_exit_when_the_ablation_is_killed(tmp_path: Path) -> None:
    """A killed ablate must not leave trainers behind writing into its run folders."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    script.write_text(
        "import multiprocessing, os, time\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "from training.ablation import exit_with_parent\n"
        "if __name__ == '__main__':\n"
        "    ctx = multiprocessing.get_context('spawn')\n"
        "    pool = ProcessPoolExecutor(1, mp_context=ctx, initializer=exit_with_parent, initargs=(os.getpid(), 0.1))\n"
        "    print(pool.submit(os.getpid).result(), flush=True)\n"
        "    time.sleep(60)\n"
    )
    with subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True) as parent:
        assert parent.stdout is not None
        worker = int(parent.stdout.readline())
        os.kill(parent.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{worker}").exists():
        time.sleep(0.1)
    alive = Path(f"/proc/{worker}").exists()
    if alive:
        os.kill(worker, signal.SIGKILL)
    assert not alive


class _BlindD(torch.nn.Module):
    """A discriminator that gives every image the same logit (seen on real runs when G outpaced D)."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor, labels: object = None, level: object = None, alpha: float = 1.0) -> torch.Tensor:
        return self.bias + 0 * x.flatten(1).sum(1)


def test_a_blind_discriminator_is_reported(
    digits: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from training import train_gan

    monkeypatch.setattr(train_gan, "build_discriminator", lambda cfg: _BlindD())
    with caplog.at_level("WARNING", logger="training"):
        run = _train(digits, tmp_path, "blind", ["steps = 2"])
    assert json.loads((run / "history.json").read_text())["history"][-1]["d_spread"] == 0.0
    assert "D has gone blind" in caplog.text
    caplog.clear()
    monkeypatch.undo()
    with caplog.at_level("WARNING", logger="training"):
        _train(digits, tmp_path, "seeing", ["steps = 2"])
    assert "D has gone blind" not in caplog.text


def test_identical_samples_have_no_diversity() -> None:
    x = torch.rand(1, 1, 8, 8).repeat(6, 1, 1, 1)
    assert diversity(x) == 0 and diversity(torch.rand(6, 1, 8, 8)) > 0


def test_truncation_pulls_images_towards_the_mean_image() -> None:
    from training.archs.gan import ExportedGenerator

    g = ExportedGenerator(Generator(16, 1, 8, width=16, min_width=8)).eval()
    z = torch.randn(32, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        spreads = [float(g(psi * z).std(dim=0).mean()) for psi in (1.0, 0.5, 0.05)]
        assert not torch.allclose(g(0.5 * z), g(z))
    assert spreads[0] > spreads[1] > spreads[2]


def test_diffaugment_is_applied_to_real_and_fake_in_both_steps(digits: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from training import train_gan
    from training.gan_data import load_real

    seen: list[tuple[int, bool]] = []

    def spy(x: torch.Tensor, kinds: list[str], gen: torch.Generator | None = None) -> torch.Tensor:
        seen.append((x.shape[0], x.requires_grad))
        return x

    monkeypatch.setattr(train_gan, "diff_augment", spy)
    cfg = GanConfig(
        name="x",
        data="mnist",
        holdout=20,
        classes=["a", "b", "c"],
        latent=8,
        g_width=16,
        d_width=16,
        min_width=8,
        batch_size=4,
        diffaugment=["color"],
    )
    real, _ = load_real(digits, "mnist", 20, 32, 1)
    train_gan.GanRun(cfg, real, torch.device("cpu")).step(3, 1.0)
    # D step: the real batch and a generated one (no gradient to G); G step: a generated one, with gradient
    assert seen == [(4, False), (4, False), (4, True)]


def test_a_conditional_generator_that_ignores_its_latent_has_no_diversity() -> None:
    """Seen on a real digits run: every class drawn the same whatever the latent. All pairs
    still differ (ten digits), so only pairs within a class can tell."""
    per_class = torch.rand(10, 1, 8, 8)
    labels = torch.arange(60) % 10
    samples = per_class[labels]
    assert diversity(samples) > 0.1 and diversity(samples, labels) == 0
    assert diversity(samples + 0.1 * torch.rand(60, 1, 8, 8), labels) > 0
