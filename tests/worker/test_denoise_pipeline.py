from __future__ import annotations

import numpy as np
import pytest

from imgenhance.cards import NoiseLevel
from imgenhance.params import DenoiseParams
from worker.codec import Picture
from worker.pipelines.denoise import told_level

SPEC = NoiseLevel(
    channel=3, sigma_per_unit=50.0, blind_value=-1.0, trained_max_sigma=50.0, jpeg_levels={"10": 12.0, "50": 5.0}
)


def picture(jpeg_quality: int | None = None) -> Picture:
    return Picture(np.zeros((4, 4, 3), np.float32), None, 8, jpeg_quality=jpeg_quality)


def params(**fields: object) -> DenoiseParams:
    return DenoiseParams(model="dn", output_format="png", **fields)  # type: ignore[arg-type]


def test_sigma_sets_the_level_whatever_the_artifacts() -> None:
    assert told_level(params(sigma=25.0), SPEC, picture()) == 0.5
    assert told_level(params(sigma=0.0, artifacts="jpeg"), SPEC, picture(10)) == 0.0


def test_jpeg_quality_given_or_read_from_the_upload_sets_the_level() -> None:
    assert told_level(params(artifacts="jpeg", jpeg_quality=10), SPEC, picture()) == pytest.approx(12.0 / 50)
    assert told_level(params(artifacts="jpeg"), SPEC, picture(30)) == pytest.approx(8.5 / 50)  # interpolated
    assert told_level(params(artifacts="jpeg", jpeg_quality=50), SPEC, picture(10)) == pytest.approx(0.1)


def test_blind_otherwise() -> None:
    assert told_level(params(), SPEC, picture(10)) == -1.0  # a JPEG upload, but artifacts=noise
    assert told_level(params(artifacts="jpeg"), SPEC, picture()) == -1.0  # no quality known
    no_table = SPEC.model_copy(update={"jpeg_levels": None})
    assert told_level(params(artifacts="jpeg", jpeg_quality=10), no_table, picture()) == -1.0


def test_jpeg_levels_interpolate_and_hold_at_the_ends() -> None:
    assert SPEC.jpeg_level(10) == 12.0 and SPEC.jpeg_level(50) == 5.0
    assert SPEC.jpeg_level(1) == 12.0 and SPEC.jpeg_level(95) == 5.0
    assert SPEC.jpeg_level(20) == pytest.approx(12.0 - 7.0 / 4)
    with pytest.raises(ValueError, match="no JPEG levels"):
        SPEC.model_copy(update={"jpeg_levels": None}).jpeg_level(10)
