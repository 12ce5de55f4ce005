"""The set of models this deployment serves, read from the cards in ``models_dir``.

The gateway uses it to list models and to resolve a request's ``model``/``scale``
into one card; the worker uses the same resolution to load the ONNX files. The
queue a job goes to is named after its task, so a worker listens on the queues of
the tasks its models serve.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from imgenhance.cards import ModelCard, Task, read_card


class UnknownModel(ValueError):
    pass


class CatalogError(ValueError):
    """The cards in a models folder contradict each other."""


@dataclass(frozen=True)
class Catalog:
    cards: tuple[ModelCard, ...]
    root: Path

    @classmethod
    def load(cls, models_dir: Path) -> Catalog:
        cards = tuple(sorted((read_card(p) for p in Path(models_dir).glob("*.json")), key=lambda c: c.id))
        _unique("model ids", [c.id for c in cards], models_dir)
        _unique("style names", [c.style.name for c in cards if c.style], models_dir)
        defaults = [(c.task, c.scale, c.variant) for c in cards if c.default]
        _unique("defaults for (task, scale, variant)", defaults, models_dir)
        return cls(cards, Path(models_dir))

    def __iter__(self) -> Iterator[ModelCard]:
        return iter(self.cards)

    def __len__(self) -> int:
        return len(self.cards)

    def get(self, model_id: str) -> ModelCard | None:
        return next((c for c in self.cards if c.id == model_id), None)

    def path(self, card: ModelCard) -> Path:
        return self.root / card.file

    def tasks(self) -> list[Task]:
        return sorted({c.task for c in self.cards})

    def resolve(self, task: Task, model_id: str | None = None, scale: int | None = None) -> ModelCard:
        """The card that serves a request: the named model (checked against the task
        and scale), or the default of a named variant (``general``, ``real-world``) for
        the scale, else the default for (task, scale): the ``general`` one when there is
        one. Each variant has at most one default per scale."""
        variants = {c.variant for c in self.cards if c.task == task}
        if model_id in variants and self.get(model_id) is None:
            candidates = [
                c
                for c in self.cards
                if c.task == task and c.variant == model_id and (scale is None or c.scale == scale)
            ]
            if not candidates:
                raise UnknownModel(f"no {model_id} {task} model for scale {scale}")
            return _preferred(candidates)
        if model_id is not None:
            card = self.get(model_id)
            if card is None or card.task != task:
                known = ", ".join([c.id for c in self.cards if c.task == task] + sorted(variants)) or "none"
                raise UnknownModel(f"no {task} model named {model_id!r}; available: {known}")
            if scale is not None and card.scale != scale:
                raise UnknownModel(f"model {model_id!r} upscales x{card.scale}, but scale={scale} was asked for")
            return card
        candidates = [c for c in self.cards if c.task == task and (scale is None or c.scale == scale)]
        if not candidates:
            raise UnknownModel(f"no {task} model" + (f" for scale {scale}" if scale else "") + " is installed")
        return _preferred([c for c in candidates if c.variant == "general"] or candidates)

    def styles(self) -> list[ModelCard]:
        """Named-style models, by style name."""
        return sorted((c for c in self.cards if c.style is not None), key=lambda c: c.style.name if c.style else "")

    def style(self, name: str) -> ModelCard:
        for card in self.cards:
            if card.style is not None and card.style.name == name:
                return card
        known = ", ".join(c.style.name for c in self.styles() if c.style) or "none installed"
        raise UnknownModel(f"no style named {name!r}; available: {known}")

    def arbitrary_style(self) -> ModelCard:
        """The model that takes any style image."""
        candidates = [c for c in self.cards if c.task == "style-transfer" and c.style is None]
        if not candidates:
            raise UnknownModel("no model for uploaded style images is installed; use a named style")
        return _preferred(candidates)


def _unique(what: str, values: Sequence[object], where: Path) -> None:
    dupes = sorted({str(v) for v in values if values.count(v) > 1})
    if dupes:
        raise CatalogError(f"{what} must be unique in {where}: {dupes}")


def _preferred(candidates: list[ModelCard]) -> ModelCard:
    """The default model if one is flagged, else the first by id."""
    return sorted(candidates, key=lambda c: (not c.default, c.id))[0]
