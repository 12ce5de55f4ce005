from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from imgenhance.cards import DenoiseQuality, GenerateQuality, NotMeasured, SRQuality, StyleQuality
from imgenhance.catalog import Catalog, CatalogError, UnknownModel
from imgenhance.settings import Settings

MODELS = Path(__file__).resolve().parents[2] / "models"


def test_env_names_and_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://h:1/2")
    monkeypatch.setenv("IMGENHANCE_API_KEYS", " a, b ,")
    monkeypatch.setenv("IMGENHANCE_ORT_PROVIDERS", "cuda,cpu")
    s = Settings()
    assert (s.redis_url, s.api_keys, s.ort_providers, s.embedded) == (
        "redis://h:1/2",
        ["a", "b"],
        ["cuda", "cpu"],
        False,
    )


def test_public_bind_without_keys_is_refused() -> None:
    with pytest.raises(ValidationError, match="without API keys"):
        Settings(host="0.0.0.0")
    assert Settings(host="0.0.0.0", api_keys=["k"]).api_keys == ["k"]
    assert Settings(host="0.0.0.0", allow_anonymous=True).allow_anonymous
    assert Settings(host="::1").host == "::1"


def test_ports_out_of_range_are_refused() -> None:
    for bad in ({"port": 0}, {"port": 65536}, {"metrics_port": -5}, {"metrics_port": 70000}):
        with pytest.raises(ValidationError, match="port"):
            Settings(**bad)
    assert Settings(metrics_port=0).metrics_port == 0


def test_tile_overlap_must_leave_room() -> None:
    with pytest.raises(ValidationError, match="TILE_OVERLAP"):
        Settings(tile_size=64, tile_overlap=32)


def test_catalog_resolves_defaults_names_variants_and_scales() -> None:
    catalog = Catalog.load(MODELS)
    assert catalog.tasks() == ["denoise", "generate", "style-transfer", "super-resolve"]
    assert catalog.resolve("super-resolve", scale=4).id == "sr-compact-x4"
    assert catalog.resolve("super-resolve", scale=2).id == "sr-compact-x2"
    assert catalog.resolve("super-resolve", "sr-compact-x2").scale == 2
    assert catalog.resolve("super-resolve", "real-world", 4).id == "sr-realesrgan-x4plus"  # its variant's default
    assert catalog.resolve("super-resolve", "sr-realworld-x4").variant == "real-world"
    assert catalog.resolve("super-resolve", "general", 4).id == "sr-compact-x4"
    assert catalog.resolve("denoise").id == "denoise-unet"
    with pytest.raises(UnknownModel, match="no super-resolve model named 'x'"):
        catalog.resolve("super-resolve", "x")
    with pytest.raises(UnknownModel, match="upscales x2, but scale=4"):
        catalog.resolve("super-resolve", "sr-compact-x2", 4)
    with pytest.raises(UnknownModel, match="no real-world super-resolve model for scale 2"):
        catalog.resolve("super-resolve", "real-world", 2)
    assert catalog.resolve("generate").id == "gen-digits"
    assert catalog.resolve("style-transfer", "arbitrary").id == "style-any"
    assert catalog.resolve("style-transfer", "style-starry-night").style is not None
    with pytest.raises(UnknownModel, match="no generate model named 'sr-compact-x4'"):
        catalog.resolve("generate", "sr-compact-x4")


def test_the_default_card_wins_over_one_that_sorts_first(tmp_path: Path) -> None:
    shutil.copy(MODELS / "sr-compact-x4.json", tmp_path)
    card = json.loads((MODELS / "sr-compact-x4.json").read_text())
    (tmp_path / "a-first.json").write_text(json.dumps({**card, "id": "a-first", "default": False}))
    assert Catalog.load(tmp_path).resolve("super-resolve", scale=4).id == "sr-compact-x4"


def test_two_defaults_for_one_task_and_scale_are_refused(tmp_path: Path) -> None:
    shutil.copy(MODELS / "sr-compact-x4.json", tmp_path / "a.json")
    card = json.loads((MODELS / "sr-compact-x4.json").read_text())
    card["id"] = "other"
    (tmp_path / "b.json").write_text(json.dumps(card))
    with pytest.raises(CatalogError, match=r"defaults for \(task, scale, variant\) must be unique"):
        Catalog.load(tmp_path)


def test_shipped_cards_state_their_contract_and_how_quality_was_measured() -> None:
    """The figures themselves are measured by the tests (tests/app/test_quality_e2e.py), not read from here."""
    for card in Catalog.load(MODELS):
        assert (MODELS / card.file).exists() and card.io.value_range == (0.0, 1.0), card.id
        assert card.training.command.startswith("python -m training "), card.id
        quality = card.quality
        assert not isinstance(quality, NotMeasured), f"{card.id}: {quality}"
        assert quality.measured_by.startswith("python -m training"), card.id
        if isinstance(quality, SRQuality):
            assert card.task == "super-resolve" and card.io.inputs[0].shape == [-1, 3, -1, -1]
            assert quality.protocol["crop_border"] == card.scale, card.id
            assert str(quality.protocol["channel"]).startswith("Y"), card.id
            assert {"model", "bicubic"} <= set(quality.results["Set5"]), card.id
        elif isinstance(quality, DenoiseQuality):
            assert card.io.inputs[0].shape == [-1, 4, -1, -1] and card.io.noise_level is not None
            assert quality.protocol["crop_border"] == 0 and quality.protocol["channel"] == "RGB", card.id
            assert {"model", "nlm", "bm3d"} <= set(quality.results["Set5"]["sigma25"]), card.id
        elif isinstance(quality, StyleQuality):
            assert card.task == "style-transfer" and quality.versus_gatys, card.id
            assert "VGG16" in str(quality.protocol["loss_network"]) and "L-BFGS" in str(quality.protocol["gatys"])
            assert (card.style is None) == (card.variant == "arbitrary"), card.id
        else:
            assert isinstance(quality, GenerateQuality) and card.generator is not None, card.id
            assert quality.real_images > 0 and quality.generated_images > 0, card.id
