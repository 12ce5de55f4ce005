"""The style-transfer pipeline with stand-in models whose output is known, so every
option can be checked exactly: scale, size, strength, colour, gray, alpha, 16 bits."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from imgenhance.params import StyleTransferParams
from worker.codec import Picture
from worker.pipelines import TileSettings, run_local
from worker.pipelines.style_transfer import keep_colours

TILES = TileSettings(512, 24, 1)


class Painter:
    """Stands in for a style model: paints everything one colour (named) or the style's mean
    colour blended by strength (any style); records what it was given."""

    def __init__(self, multiple: int = 4, colour: tuple[float, float, float] = (0.9, 0.5, 0.1)) -> None:
        self.card = SimpleNamespace(id="painter", task="style-transfer", io=SimpleNamespace(size_multiple=multiple))
        self.colour = np.array(colour, np.float32)[None, :, None, None]
        self.calls: list[dict[str, Any]] = []

    def run(self, **by_role: np.ndarray) -> np.ndarray:
        self.calls.append({k: v.shape for k, v in by_role.items()} | {"strength": by_role.get("strength")})
        x = by_role["image"]
        if "style" in by_role:
            mean = by_role["style"].mean(axis=(2, 3), keepdims=True)
            a = float(by_role["strength"][0])
            return a * np.broadcast_to(mean, x.shape) + (1 - a) * x
        return np.broadcast_to(self.colour, x.shape).copy()


def named(**options: Any) -> StyleTransferParams:
    return StyleTransferParams(model="painter", style="orange", output_format="png", **options)


def photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


def run(params: StyleTransferParams, model: Painter, **pictures: Picture) -> Picture:
    return run_local(params, model, TILES, **pictures)  # type: ignore[arg-type]


def test_the_image_is_stylised_at_max_side_and_returned_at_its_own_size() -> None:
    model = Painter()
    out = run(named(max_side=100), model, image=Picture(photo(150, 300), None, 8))
    assert model.calls[0]["image"] == (1, 3, 52, 100)  # 50x100, padded to a multiple of 4
    assert out.pixels.shape == (150, 300, 3)
    np.testing.assert_allclose(out.pixels, np.broadcast_to([0.9, 0.5, 0.1], (150, 300, 3)), atol=1e-5)


def test_keep_size_false_returns_the_stylised_size() -> None:
    out = run(named(max_side=100, keep_size=False), Painter(), image=Picture(photo(150, 300), None, 8))
    assert out.pixels.shape == (50, 100, 3)


def test_small_images_are_not_upscaled_to_max_side() -> None:
    model = Painter()
    run(named(max_side=1024), model, image=Picture(photo(30, 41), None, 8))
    assert model.calls[0]["image"] == (1, 3, 32, 44)


def test_strength_blends_output_and_input_for_named_styles() -> None:
    img = photo(40, 40)
    zero = run(named(strength=0.0), Painter(), image=Picture(img, None, 8))
    np.testing.assert_allclose(zero.pixels, img, atol=1e-6)
    half = run(named(strength=0.5), Painter(), image=Picture(img, None, 8))
    np.testing.assert_allclose(half.pixels, 0.5 * img + 0.5 * np.array([0.9, 0.5, 0.1]), atol=1e-5)


def test_any_style_reads_the_style_image_at_style_side_and_passes_strength() -> None:
    model = Painter(multiple=8)
    params = StyleTransferParams(model="painter", output_format="png", strength=0.25, style_side=64)
    style = Picture(np.full((200, 100, 3), 0.2, np.float32), None, 8)
    run(params, model, image=Picture(photo(40, 40), None, 8), style_image=style)
    assert model.calls[0]["style"] == (1, 3, 64, 32) and model.calls[0]["strength"].tolist() == [0.25]


def test_preserve_color_keeps_the_input_chroma() -> None:
    img = photo(32, 32)
    out = run(named(preserve_color=True), Painter(), image=Picture(img, None, 8)).pixels
    to_ycc = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
    chroma_in, chroma_out = (img @ to_ycc.T)[..., 1:], (out @ to_ycc.T)[..., 1:]
    inside = (out > 0.001).all(axis=2) & (out < 0.999).all(axis=2)  # away from clipping
    assert inside.mean() > 0.5
    np.testing.assert_allclose(chroma_out[inside], chroma_in[inside], atol=1e-4)
    luma = np.float32(0.299 * 0.9 + 0.587 * 0.5 + 0.114 * 0.1)
    np.testing.assert_allclose((out @ to_ycc.T)[..., 0][inside], luma, atol=1e-4)


def test_keep_colours_is_exact_on_luma_and_chroma() -> None:
    stylised, content = photo(8, 8, 1) * 0.5 + 0.25, photo(8, 8, 2) * 0.5 + 0.25
    out = keep_colours(stylised, content)
    to_ycc = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
    np.testing.assert_allclose((out @ to_ycc.T)[..., 0], (stylised @ to_ycc.T)[..., 0], atol=1e-5)
    np.testing.assert_allclose((out @ to_ycc.T)[..., 1:], (content @ to_ycc.T)[..., 1:], atol=1e-5)


def test_a_gray_image_stylised_in_colour_drops_its_gray_colour_profile() -> None:
    gray = Picture(photo(16, 16)[..., :1], None, 8, b"gray-icc")
    assert run(named(), Painter(), image=gray).icc_profile is None
    assert run(named(preserve_color=True), Painter(), image=gray).icc_profile == b"gray-icc"


@pytest.mark.parametrize(("preserve", "channels"), [(False, 3), (True, 1)])
def test_gray_input_takes_the_paintings_colour_unless_colours_are_kept(preserve: bool, channels: int) -> None:
    gray = Picture(photo(24, 24)[..., :1], None, 8)
    out = run(named(preserve_color=preserve), Painter(), image=gray)
    assert out.pixels.shape == (24, 24, channels)


def test_alpha_is_kept_and_colour_under_it_filled_before_the_model() -> None:
    img = np.zeros((20, 20, 3), np.float32)
    alpha = np.zeros((20, 20), np.float32)
    alpha[5:15, 5:15] = 1.0
    img[5:15, 5:15] = (1.0, 0.0, 0.0)
    seen: list[np.ndarray] = []
    model = Painter()
    original = model.run

    def spy(**by_role: np.ndarray) -> np.ndarray:
        seen.append(by_role["image"].copy())
        return original(**by_role)

    model.run = spy  # type: ignore[method-assign]
    out = run(named(), model, image=Picture(img, alpha, 8))
    np.testing.assert_array_equal(out.alpha, alpha)
    assert seen[0][0, 0, 0, 0] > 0.9  # transparent pixels took the visible red, not black


def test_16_bit_pictures_stay_16_bit_with_their_profile() -> None:
    out = run(named(), Painter(), image=Picture(photo(16, 16), None, 16, b"icc"))
    assert out.bits == 16 and out.icc_profile == b"icc"


def test_progress_is_reported_before_and_after_the_single_model_run() -> None:
    calls: list[tuple[int, int]] = []
    run_local(named(), Painter(), TILES, lambda d, t: calls.append((d, t)), image=Picture(photo(600, 600), None, 8))  # type: ignore[arg-type]
    assert calls == [(0, 1), (1, 1)]
