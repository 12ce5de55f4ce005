"""The generate pipeline with a stand-in generator whose image is a known function of its
latent and class, so seeds, classes, truncation, grids, zips and animations are checked
exactly."""

from __future__ import annotations

import io
import zipfile
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image

from imgenhance.cards import GeneratorInfo
from imgenhance.jobs import JobError
from imgenhance.params import GenerateParams, Interpolation
from worker.codec import Encoded, Picture
from worker.pipelines import TileSettings, run_encoded
from worker.pipelines.generate import GAP, latents, slerp

TILES = TileSettings(512, 24, 1)
SIDE = 8


class Painter:
    """Image = sigmoid of the first latent entries, plus the class / 10 in channel 0."""

    def __init__(self, classes: list[str] | None = None, channels: int = 3, latent: int = 16) -> None:
        info = GeneratorInfo(resolution=SIDE, channels=channels, latent=latent, classes=classes or [])
        self.card = SimpleNamespace(id="painter", task="generate", generator=info)
        self.calls: list[dict[str, Any]] = []

    def run(self, **by_role: np.ndarray) -> np.ndarray:
        self.calls.append(by_role)
        z = by_role["latent"]
        base = 1 / (1 + np.exp(-z[:, : self.card.generator.channels]))
        out = np.broadcast_to(base[:, :, None, None], (len(z), self.card.generator.channels, SIDE, SIDE)).copy()
        if "class" in by_role:
            out[:, 0] = by_role["class"][:, None, None] / 10
        return out.astype(np.float32)


def params(**options: Any) -> GenerateParams:
    return GenerateParams(model="painter", output_format="png", **options)


def tiles_of(picture: Picture, n: int) -> list[np.ndarray]:
    cols = int(np.ceil(np.sqrt(n)))
    out = []
    for i in range(n):
        r, k = divmod(i, cols)
        out.append(
            picture.pixels[r * (SIDE + GAP) : r * (SIDE + GAP) + SIDE, k * (SIDE + GAP) : k * (SIDE + GAP) + SIDE]
        )
    return out


def run(p: GenerateParams, model: Painter) -> Picture | Encoded:
    return run_encoded(p, model, TILES)  # type: ignore[arg-type]


def test_the_same_seed_gives_the_same_pixels_and_image_i_does_not_depend_on_n() -> None:
    a = run(params(n=9, seed=5), Painter())
    b = run(params(n=9, seed=5), Painter())
    four = run(params(n=4, seed=5), Painter())
    assert isinstance(a, Picture) and isinstance(b, Picture) and isinstance(four, Picture)
    np.testing.assert_array_equal(a.pixels, b.pixels)
    assert a.pixels.shape == (3 * SIDE + 2 * GAP, 3 * SIDE + 2 * GAP, 3)
    np.testing.assert_array_equal(tiles_of(a, 9)[:4], tiles_of(four, 4))
    other = run(params(n=9, seed=6), Painter())
    assert isinstance(other, Picture) and not np.array_equal(a.pixels, other.pixels)


def test_latents_are_seeded_normal_draws_scaled_by_truncation() -> None:
    model = Painter()
    run(params(n=3, seed=11, truncation=0.5), model)
    np.testing.assert_allclose(model.calls[0]["latent"], 0.5 * latents(11, 3, 16), rtol=1e-6)


def test_classes_cycle_unless_one_is_asked_for() -> None:
    model = Painter(classes=[str(k) for k in range(10)])
    run(params(n=12), model)
    assert model.calls[0]["class"].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    run(params(n=3, label=7), model)
    assert model.calls[1]["class"].tolist() == [7, 7, 7] and model.calls[1]["class"].dtype == np.int64


def test_an_unconditional_model_refuses_a_class() -> None:
    with pytest.raises(JobError, match="unconditional"):
        run(params(label=1), Painter())


def test_zip_holds_one_png_per_image_and_is_bit_identical() -> None:
    a, b = run(params(n=5, seed=3, output="zip"), Painter()), run(params(n=5, seed=3, output="zip"), Painter())
    assert isinstance(a, Encoded) and isinstance(b, Encoded)
    assert a.content_type == "application/zip" and a.data == b.data
    with zipfile.ZipFile(io.BytesIO(a.data)) as archive:
        names = archive.namelist()
        first = np.asarray(Image.open(io.BytesIO(archive.read(names[0]))))
    assert names == [f"seed3-{i:02d}.png" for i in range(5)]
    expected = np.round(255 / (1 + np.exp(-latents(3, 1, 16)[0, :3]))).astype(np.uint8)
    np.testing.assert_array_equal(first[0, 0], expected)


def test_interpolation_is_an_animated_webp_from_seed_to_to_seed() -> None:
    model = Painter()
    out = run(params(n=4, seed=1, interpolate=Interpolation(to_seed=2, steps=5)), model)
    assert isinstance(out, Encoded) and out.content_type == "image/webp"
    with Image.open(io.BytesIO(out.data)) as im:
        assert im.n_frames == 5 and im.is_animated
    np.testing.assert_allclose(model.calls[0]["latent"], latents(1, 4, 16), rtol=1e-6)
    np.testing.assert_allclose(model.calls[-1]["latent"], latents(2, 4, 16), rtol=1e-5, atol=1e-6)


def test_slerp_keeps_the_latent_norm_between_orthogonal_ends() -> None:
    a, b = np.array([[3.0, 0.0]], np.float32), np.array([[0.0, 3.0]], np.float32)
    middle = slerp(a, b, 0.5)
    assert abs(float(np.linalg.norm(middle)) - 3.0) < 1e-5  # a straight line would give 2.12


def test_gray_generators_give_gray_grids() -> None:
    out = run(params(n=4), Painter(channels=1))
    assert isinstance(out, Picture) and out.pixels.shape[2] == 1 and out.gray


def test_progress_counts_images_across_model_runs() -> None:
    calls: list[tuple[int, int]] = []
    run_encoded(params(n=40), Painter(), TILES, lambda d, t: calls.append((d, t)))  # type: ignore[arg-type]
    assert calls == [(16, 40), (32, 40), (40, 40)]
