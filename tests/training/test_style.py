"""Style transfer in training: the networks, the losses, Gatys, and a few steps of each
training program followed by export, parity and a card written by eval."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from imgenhance.cards import StyleQuality, read_card
from tests.support import images
from training.archs.style import AdaINNet, TransformerNet, adain, channel_stats
from training.checkpoint import Checkpoint
from training.cli import main as train_cli
from training.config import StyleConfig
from training.gatys import stylize_optimize
from training.style_data import to_batch
from training.style_losses import AdaINLoss, GramStyleLoss, gram
from training.train_style import initial_state
from training.vgg import VGG16Features


def test_gram_is_normalised_by_channels_and_pixels() -> None:
    feat = torch.ones(1, 2, 3, 4)
    np.testing.assert_allclose(gram(feat).numpy(), np.full((1, 2, 2), 12 / (2 * 12)))


def test_gram_stays_fp32_under_bf16_autocast() -> None:
    feat = torch.rand(2, 8, 16, 16) * 10
    with torch.autocast("cpu", dtype=torch.bfloat16):
        g = gram(feat.to(torch.bfloat16))
    assert g.dtype == torch.float32
    torch.testing.assert_close(g, gram(feat.to(torch.bfloat16).float()))


def test_adain_gives_content_features_the_style_statistics() -> None:
    gen = torch.Generator().manual_seed(0)
    content, style = torch.rand(2, 5, 8, 8, generator=gen), torch.rand(2, 5, 6, 10, generator=gen) * 3 + 1
    out_mean, out_std = channel_stats(adain(content, style))
    style_mean, style_std = channel_stats(style)
    torch.testing.assert_close(out_mean, style_mean, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_std, style_std, atol=1e-4, rtol=1e-4)


def test_adain_gram_term_is_zero_on_the_style_itself_and_adds_on_another_image(vgg_weights: Path) -> None:
    vgg = VGG16Features.pretrained("relu4_3")
    style = to_batch([images.photo(40, 40, seed=3), images.photo(40, 40, seed=4)])
    other = to_batch([images.photo(40, 40, seed=5), images.photo(40, 40, seed=6)])
    target = torch.zeros(2, 512, 5, 5)
    plain, with_gram = AdaINLoss(vgg), AdaINLoss(vgg, gram_weight=1e4)
    with torch.no_grad():
        assert float(with_gram.terms(style, target, style).style) == pytest.approx(0.0, abs=1e-9)
        added = float(with_gram.terms(other, target, style).style) - float(plain.terms(other, target, style).style)
        feats_o, feats_s = vgg(other, {"relu1_2"}), vgg(style, {"relu1_2"})
        first_layer = 1e4 * float(torch.nn.functional.mse_loss(gram(feats_o["relu1_2"]), gram(feats_s["relu1_2"])))
    assert added > first_layer > 0  # each sample against its own style sample, over all four layers


def test_transformer_net_keeps_size_for_multiples_of_four() -> None:
    net = TransformerNet(width=4, blocks=1)
    assert net(torch.rand(2, 3, 20, 28)).shape == (2, 3, 20, 28)
    assert TransformerNet.size_multiple == 4


def test_adain_alpha_zero_decodes_the_content_features_unchanged() -> None:
    net = AdaINNet().eval()
    content, style = torch.rand(1, 3, 16, 24), torch.rand(1, 3, 24, 16)
    with torch.no_grad():
        zero = net(content, style, torch.zeros(1))
        full = net(content, style, torch.ones(1))
        plain = net.decoder(net.encode(content))
    torch.testing.assert_close(zero, plain)
    assert zero.shape == (1, 3, 16, 24) and not torch.allclose(zero, full)


def test_gatys_lowers_the_weighted_loss_it_optimises(vgg_weights: Path) -> None:
    vgg = VGG16Features.pretrained("relu4_3")
    style = to_batch([images.photo(48, 48, seed=3)[:, ::-1].copy()])
    loss = GramStyleLoss(vgg, style)
    content = images.photo(32, 32)
    snaps = stylize_optimize(content, loss, 1e5, 1e10, iterations=8, snapshots=(1,))

    def total(s: object) -> float:
        return 1e5 * s.content + 1e10 * s.style  # type: ignore[attr-defined]

    assert [s.iterations for s in snaps] == [1, 8]
    assert total(snaps[-1]) < 0.7 * total(snaps[0])
    assert snaps[-1].image.shape == (32, 32, 3) and snaps[-1].image.dtype == np.uint8


@pytest.fixture
def style_data(tmp_path: Path) -> Path:
    """Tiny content sets, evaluation sets and four 'paintings'."""
    root = tmp_path / "data"
    for name, count, size in [("content", 8, 96), ("Set5", 2, 48)]:
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(images.photo(size, size, seed=i)).save(root / name / f"{i}.png")
    (root / "styles").mkdir()
    for i, stem in enumerate(["a", "b", "held1", "held2"]):
        stripes = np.zeros((64, 80, 3), np.uint8)
        stripes[:, (np.arange(80) // (3 + i)) % 2 == 0] = (200, 40 + 40 * i, 30)
        Image.fromarray(stripes).save(root / "styles" / f"{stem}.png")
    return root


def _train(root: Path, tmp_path: Path, lines: list[str], out: str, extra: list[str] | None = None) -> Path:
    config = tmp_path / f"{out}.toml"
    config.write_text("\n".join(lines))
    run = tmp_path / out
    args = ["--data-root", str(root), "train-style", "--config", str(config), "--out", str(run), "--quiet"]
    train_cli([*args, *(extra or [])])
    return run


COMMON = [
    'content_sets = ["content"]',
    'eval_sets = ["Set5"]',
    "crop = 32",
    "batch_size = 2",
    "val_every = 2",
    "eval_size = 64",
    "style_size = 64",
]


def test_named_styles_train_together_resume_export_one_model_each_and_are_measured(
    vgg_weights: Path, style_data: Path, tmp_path: Path
) -> None:
    lines = [
        'name = "style-named"',
        'method = "johnson"',
        "arch_args = { width = 4, blocks = 1 }",
        "steps = 2",
        *COMMON,
        "[[styles]]",
        'name = "stripes"',
        'image = "styles/a.png"',
        'title = "Stripes"',
        'artist = "A. Test"',
        'year = "2026"',
        "[[styles]]",
        'name = "bars"',
        'image = "styles/b.png"',
        'title = "Bars"',
        'artist = "B. Test"',
        'year = "2025"',
    ]
    run = _train(style_data, tmp_path, lines, "named")
    history = json.loads((run / "history.json").read_text())["history"]
    assert [h["step"] for h in history] == [2]
    assert {"content", "style", "val_content", "val_style_stripes", "val_style_bars", "val_total"} <= set(history[0])
    assert (run / "curves.png").exists() and (run / "samples.png").exists() and (run / "best.pt").exists()
    # resumed in bf16 autocast (where this CPU lacks bf16 it says so and stays fp32)
    _train(style_data, tmp_path, lines, "named", ["--resume", "auto", "--set", "steps=4", "--set", "amp=true"])
    history = json.loads((run / "history.json").read_text())["history"]
    assert [h["step"] for h in history] == [2, 4] and np.isfinite(history[1]["loss"])

    models = tmp_path / "models"
    grid = tmp_path / "grid.png"
    train_cli(
        [
            *["--data-root", str(style_data), "export", "--checkpoint", str(run / "best.pt")],
            *["--models-dir", str(models), "--gatys-iterations", "3", "--grid", str(grid)],
        ]
    )
    card = read_card(models / "style-stripes.json")
    assert card.task == "style-transfer" and card.style is not None and card.style.name == "stripes"
    assert card.style.artist == "A. Test" and card.style.style_side == 64
    assert card.architecture.args["styles"] == 1  # what ships is a plain Johnson network
    assert (models / card.style.preview).exists() and (models / card.style.example).exists()
    assert (tmp_path / "grid-stripes.png").exists() and (tmp_path / "grid-bars.png").exists()
    assert card.io.size_multiple == 4 and [t.role for t in card.io.inputs] == ["image"]
    assert card.onnx_parity_max_abs_diff is not None and card.onnx_parity_max_abs_diff <= 1e-4
    quality = card.quality
    assert isinstance(quality, StyleQuality)
    comparison = quality.versus_gatys["stripes"]
    assert comparison.gatys.images == 2 and comparison.feed_forward.images == 2
    assert comparison.speedup > 1 and comparison.style_loss_ratio is not None
    assert quality.protocol["gatys_sets"] == ["Set5"] and "3 iterations" in str(quality.protocol["gatys"])
    assert quality.measured_by.startswith("python -m training")
    bars = read_card(models / "style-bars.json")
    assert bars.style is not None and bars.style.title == "Bars" and bars.sha256 != card.sha256

    # a later run goes on from the shipped cards: the paintings are joined into one network again
    config = tmp_path / "named.toml"
    cfg = StyleConfig.from_toml(config, [f"init_from={models}/style-{{name}}.json"])
    net = TransformerNet(width=4, blocks=1, styles=2)
    state = initial_state(cfg, SimpleNamespace(model=net, arch=None))  # type: ignore[arg-type]
    trained = Checkpoint.load(run / "best.pt").params
    assert state.keys() == trained.keys()
    for key in trained:
        torch.testing.assert_close(state[key], trained[key], atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="pattern"):
        initial_state(
            StyleConfig.from_toml(config, [f"init_from={models}/style-bars.json"]), SimpleNamespace(model=net)
        )  # type: ignore[arg-type]


def test_one_painting_cut_from_a_multi_style_network_computes_what_the_network_does() -> None:
    from training.archs.style import single_style

    net = TransformerNet(width=4, blocks=1, styles=3).eval()
    for param in net.parameters():
        torch.nn.init.normal_(param, 0, 0.5)
    one = TransformerNet(width=4, blocks=1).eval()
    one.load_state_dict(single_style(net.state_dict(), 2))
    x = torch.rand(1, 3, 16, 20)
    with torch.no_grad():
        torch.testing.assert_close(one(x), net(x, 2), atol=1e-5, rtol=1e-5)
        assert not torch.allclose(one(x), net(x, 1), atol=1e-3)


def test_any_style_model_trains_and_is_measured_on_held_out_paintings(
    vgg_weights: Path, style_data: Path, tmp_path: Path
) -> None:
    lines = [
        'name = "style-any"',
        'method = "adain"',
        'style_sets = ["styles"]',
        'held_out_styles = ["held1", "held2"]',
        "steps = 2",
        "content_weight = 1.0",
        "style_weight = 10.0",
        *COMMON,
    ]
    run = _train(style_data, tmp_path, lines, "any")
    record = json.loads((run / "history.json").read_text())["history"][0]
    assert {"val_style_held1", "val_style_held2"} <= set(record)
    models = tmp_path / "models"
    train_cli(
        [
            *["--data-root", str(style_data), "export", "--checkpoint", str(run / "best.pt")],
            *["--id", "style-any", "--models-dir", str(models), "--gatys-iterations", "2"],
        ]
    )
    card = read_card(models / "style-any.json")
    assert card.variant == "arbitrary" and card.style is None and card.io.size_multiple == 8
    assert [(t.name, t.role) for t in card.io.inputs] == [
        ("content", "image"),
        ("style", "style"),
        ("alpha", "strength"),
    ]
    assert isinstance(card.quality, StyleQuality) and set(card.quality.versus_gatys) == {"held1", "held2"}

    # going on from the card measures it first: with no steps, best.pt is the card's model
    goes_on = [*lines, f'init_from = "{models / "style-any.json"}"']
    start = _train(style_data, tmp_path, goes_on, "goes-on", ["--set", "steps=0"])
    history = json.loads((start / "history.json").read_text())["history"]
    assert [h["step"] for h in history] == [0] and "loss" not in history[0]
    assert history[0]["val_total"] == pytest.approx(record["val_total"], rel=1e-4)
    started, trained = Checkpoint.load(start / "best.pt").params, Checkpoint.load(run / "best.pt").params
    for key in trained:
        torch.testing.assert_close(started[key], trained[key], atol=1e-6, rtol=0)
    more = _train(style_data, tmp_path, goes_on, "goes-on-2")
    assert [h["step"] for h in json.loads((more / "history.json").read_text())["history"]] == [0, 2]
    assert (more / "curves.png").exists()


def test_a_held_out_painting_that_does_not_exist_is_refused(
    vgg_weights: Path, style_data: Path, tmp_path: Path
) -> None:
    lines = ['name = "x"', 'method = "adain"', 'held_out_styles = ["nope"]', "steps = 1", *COMMON]
    with pytest.raises(ValueError, match="held_out_styles not found"):
        _train(style_data, tmp_path, lines, "bad")


def test_weights_the_exporter_merged_are_read_back_by_their_own_names(tmp_path: Path) -> None:
    from training.export import export_onnx
    from training.from_onnx import onnx_weights

    net = TransformerNet(width=4, blocks=1)  # untrained: every norm's scale is ones
    export_onnx(net, tmp_path / "net.onnx", size=16)
    graph = onnx.load(str(tmp_path / "net.onnx")).graph
    assert any(n.op_type == "Identity" for n in graph.node)  # the case: equal tensors were merged
    weights = onnx_weights(graph)
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(weights[key], value.numpy())
