"""The request rules the API, the command line and the library backend share, each
written once in ``imgenhance.params``."""

from __future__ import annotations

import pytest

from imgenhance.params import quality_conflict, style_source_conflict, stylised_scale


def test_quality_goes_with_lossy_formats_only() -> None:
    assert quality_conflict("png", 80) == "quality applies to jpeg and webp output; png is lossless"
    assert quality_conflict("jpeg", 80) is None and quality_conflict("png", None) is None
    assert quality_conflict(None, 80) is None  # the format is chosen later, then asked again


@pytest.mark.parametrize(
    ("style", "image", "message"),
    [
        (True, True, "send either --style NAME (a named style) or --style-image FILE (any picture), not both"),
        (False, False, "name a style with --style NAME or send a picture with --style-image FILE"),
        (True, False, None),
        (False, True, None),
    ],
)
def test_exactly_one_style_source_named_in_the_callers_terms(style: bool, image: bool, message: str | None) -> None:
    assert style_source_conflict(style, image, "--style NAME", "--style-image FILE") == message


def test_the_stylised_output_keeps_the_size_or_fits_max_side_never_larger() -> None:
    assert stylised_scale(2000, 1000, 1024, keep_size=True) == 1.0
    assert stylised_scale(2000, 1000, 1024, keep_size=False) == 1024 / 2000
    assert stylised_scale(500, 300, 1024, keep_size=False) == 1.0
