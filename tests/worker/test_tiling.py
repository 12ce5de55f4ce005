from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from tests.support import images
from worker.tiling import axis_weights, normalised_weights, plan_axis, run_tiled

MODELS = Path(__file__).resolve().parents[2] / "models"


def onnx_infer(name: str):  # type: ignore[no-untyped-def]
    session = ort.InferenceSession(str(MODELS / f"{name}.onnx"), providers=["CPUExecutionProvider"])
    return lambda batch: session.run(None, {"input": batch})[0]


def butterfly(h: int = 150, w: int = 130) -> np.ndarray:
    arr = np.asarray(Image.open(images.BUTTERFLY).convert("RGB"))[:h, :w]
    return np.ascontiguousarray(arr.transpose(2, 0, 1)).astype(np.float32) / 255.0


@pytest.mark.parametrize(
    ("length", "max_tile", "overlap", "multiple"),
    [(1000, 256, 24, 1), (257, 256, 24, 1), (300, 64, 16, 2), (50, 256, 24, 1), (1024, 256, 32, 4)],
)
def test_plan_covers_the_axis_with_equal_tiles_and_enough_overlap(
    length: int, max_tile: int, overlap: int, multiple: int
) -> None:
    plan = plan_axis(length, max_tile, overlap, multiple)
    assert plan.starts[0] == 0 and plan.starts[-1] + plan.tile == length
    assert plan.tile <= max(max_tile, length) and plan.tile % multiple == 0
    assert all(s % multiple == 0 for s in plan.starts)
    for i in range(len(plan.starts) - 1):
        assert plan.overlap_after(i) >= overlap


def plans(multiple: int) -> list[tuple[int, int, int]]:
    """(length, max_tile, overlap) over sides from one tile to many, odd overlaps included."""
    return [
        (length, max_tile, overlap)
        for max_tile in (32, 56, 100, 256)
        for overlap in (0, 1, 3, 8, 13, 24)
        if 2 * overlap < max_tile
        for length in range(multiple, 900, 5 * multiple)
    ]


@pytest.mark.parametrize("multiple", [1, 2, 4])
def test_every_overlap_is_at_least_the_one_asked_for(multiple: int) -> None:
    for length, max_tile, overlap in plans(multiple):
        plan = plan_axis(length, max_tile, overlap, multiple)
        overlaps = [plan.overlap_after(i) for i in range(len(plan.starts) - 1)]
        assert min(overlaps, default=overlap) >= overlap, (length, max_tile, overlap, multiple, overlaps)


@pytest.mark.parametrize("multiple", [1, 2, 4])
def test_plans_use_the_fewest_tiles_that_fit(multiple: int) -> None:
    for length, max_tile, overlap in plans(multiple):
        n = len(plan_axis(length, max_tile, overlap, multiple).starts)
        aligned = -(-overlap // multiple) * multiple  # overlaps are multiples of `multiple` too
        # one tile fewer, each as long as allowed, could not cover the axis
        assert n == 1 or (n - 1) * max_tile - (n - 2) * aligned < length, (length, max_tile, overlap, multiple, n)


@pytest.mark.parametrize("multiple", [1, 2, 4])
def test_tiles_are_spread_evenly(multiple: int) -> None:
    for length, max_tile, overlap in plans(multiple):
        plan = plan_axis(length, max_tile, overlap, multiple)
        overlaps = [plan.overlap_after(i) for i in range(len(plan.starts) - 1)]
        assert max(overlaps, default=0) - min(overlaps, default=0) <= multiple, (length, max_tile, overlap, overlaps)


def test_tiling_adds_little_work_for_a_1024_image() -> None:
    plan = plan_axis(1024, 256, 24)
    assert len(plan.starts) * plan.tile / 1024 < 1.1  # evenly spread tiles, not a ragged last one


def test_weights_of_neighbouring_tiles_sum_to_one() -> None:
    plan = plan_axis(700, 256, 24)
    scale = 4
    total = np.zeros(700 * scale)
    for i, start in enumerate(plan.starts):
        total[start * scale : (start + plan.tile) * scale] += axis_weights(plan, i, scale)
    np.testing.assert_allclose(total, 1.0, atol=1e-5)


def test_tiled_equals_untiled_for_a_local_operator() -> None:
    """A model that only looks at each pixel (nearest upsampling) must tile exactly."""
    img = np.random.default_rng(0).random((3, 90, 70), dtype=np.float32)

    def nearest(batch: np.ndarray) -> np.ndarray:
        return batch.repeat(2, axis=2).repeat(2, axis=3)

    np.testing.assert_allclose(run_tiled(img, nearest, 2, max_tile=32, overlap=8), nearest(img[None])[0], atol=1e-6)


@pytest.mark.parametrize(("model", "scale"), [("sr-compact-x4", 4), ("sr-compact-x2", 2)])
def test_tiled_matches_untiled_model_output_within_one_level(model: str, scale: int) -> None:
    infer = onnx_infer(model)
    img = butterfly()
    untiled = infer(img[None])[0]
    tiled = run_tiled(img, infer, scale, max_tile=64, overlap=24)
    assert tiled.shape == untiled.shape == (3, 150 * scale, 130 * scale)
    border = 8 * scale
    inner = np.abs(tiled - untiled)[:, border:-border, border:-border]
    assert inner.max() <= 1 / 255, inner.max()
    mse = float(np.mean((np.clip(tiled, 0, 1) - np.clip(untiled, 0, 1)) ** 2))
    assert 10 * np.log10(1 / mse) > 50


def test_batched_tiles_give_the_same_output() -> None:
    infer = onnx_infer("sr-compact-x2")
    img = butterfly(100, 100)
    one = run_tiled(img, infer, 2, max_tile=48, overlap=16, batch=1)
    four = run_tiled(img, infer, 2, max_tile=48, overlap=16, batch=4)
    np.testing.assert_allclose(one, four, atol=1e-5)


def test_size_multiple_pads_and_crops() -> None:
    seen = []

    def nearest_even_only(batch: np.ndarray) -> np.ndarray:
        assert batch.shape[2] % 4 == 0 and batch.shape[3] % 4 == 0
        seen.append(batch.shape)
        return batch.repeat(2, axis=2).repeat(2, axis=3)

    img = np.random.default_rng(1).random((3, 37, 53), dtype=np.float32)
    out = run_tiled(img, nearest_even_only, 2, max_tile=32, overlap=8, multiple=4)
    assert out.shape == (3, 74, 106) and seen
    np.testing.assert_allclose(out, img.repeat(2, axis=1).repeat(2, axis=2), atol=1e-6)


def test_progress_reports_every_batch() -> None:
    calls: list[tuple[int, int]] = []
    img = np.zeros((3, 100, 100), np.float32)
    run_tiled(
        img,
        lambda b: b.repeat(2, 2).repeat(2, 3),
        2,
        max_tile=40,
        overlap=8,
        batch=3,
        progress=lambda done, total: calls.append((done, total)),
    )
    total = calls[0][1]
    assert total == 9 and [d for d, _ in calls] == [3, 6, 9]


def test_a_wrong_output_shape_is_reported() -> None:
    with pytest.raises(RuntimeError, match="model returned"):
        run_tiled(np.zeros((3, 20, 20), np.float32), lambda b: b, 2, max_tile=16, overlap=4)


def test_normalised_weights_sum_to_one_with_uneven_overlaps() -> None:
    plan = plan_axis(1000, 300, 24, 4)
    total = np.zeros(1000 * 2)
    for start, w in zip(plan.starts, normalised_weights(plan, 2), strict=True):
        total[start * 2 : start * 2 + w.size] += w
    np.testing.assert_allclose(total, 1.0, rtol=1e-6)
