"""How a generate card reads a request's class: the one rule the API and the command line share."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgenhance.cards import UnknownClass, read_card

MODELS = Path(__file__).resolve().parents[2] / "models"


def test_a_class_is_a_name_or_an_index() -> None:
    digits = read_card(MODELS / "gen-digits.json")
    assert digits.generator is not None and digits.generator.classes[3] == "3"
    assert digits.class_index("3") == digits.class_index(3) == 3


@pytest.mark.parametrize("label", [10, -1, "eleven", "10", "", "²", "٣"])  # Unicode digits: int() of "²" raised
def test_a_class_the_model_lacks_is_refused_with_its_classes(label: str | int) -> None:
    with pytest.raises(UnknownClass, match=r"no class .* in gen-digits; its classes are \['0'"):
        read_card(MODELS / "gen-digits.json").class_index(label)


def test_an_unconditional_model_takes_no_class() -> None:
    with pytest.raises(UnknownClass, match="gen-faces is unconditional"):
        read_card(MODELS / "gen-faces.json").class_index(0)
