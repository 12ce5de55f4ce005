"""Gatys's L-BFGS restarts after a step that finds no decrease. On The Starry Night the
first L-BFGS of a run took one step and then stalled for good (each later step left the
image where it was); a fresh L-BFGS, with no curvature history, moves again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch

from tests.support import images
from training.gatys import Snapshot, stylize_optimize
from training.style_data import to_batch
from training.style_losses import GramStyleLoss
from training.vgg import VGG16Features

CONTENT_WEIGHT, STYLE_WEIGHT = 1e5, 1e10


class CountedLBFGS(torch.optim.LBFGS):
    """torch's L-BFGS, counting instances; with ``stall_first``, the first instance of a
    run takes one real step and then stalls as the Starry Night one did."""

    made: ClassVar[list[CountedLBFGS]] = []
    stall_first: ClassVar[bool] = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.steps = 0
        CountedLBFGS.made.append(self)

    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        self.steps += 1
        if CountedLBFGS.stall_first and self is CountedLBFGS.made[0] and self.steps > 1:
            with torch.enable_grad():
                return closure()  # the loss where it stands, and no move
        out: torch.Tensor = super().step(closure)
        return out


@pytest.fixture
def run(vgg_weights: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[bool], list[Snapshot]]:
    monkeypatch.setattr(torch.optim, "LBFGS", CountedLBFGS)
    loss = GramStyleLoss(VGG16Features.pretrained("relu4_3"), to_batch([images.photo(32, 32, seed=3)[:, ::-1].copy()]))

    def optimise(stall_first: bool) -> list[Snapshot]:
        CountedLBFGS.made, CountedLBFGS.stall_first = [], stall_first
        return stylize_optimize(images.photo(24, 24), loss, CONTENT_WEIGHT, STYLE_WEIGHT, iterations=10, snapshots=(2,))

    return optimise


def total(snap: Snapshot) -> float:
    return CONTENT_WEIGHT * snap.content + STYLE_WEIGHT * snap.style


def test_a_stalled_lbfgs_is_replaced_and_the_loss_falls_again(run: Callable[[bool], list[Snapshot]]) -> None:
    stalled_at, end = run(True)
    first, *fresh = CountedLBFGS.made
    # step 1 moves, step 2 stands still, step 3 sees no decrease and restarts
    assert first.steps == 3 and fresh and sum(o.steps for o in fresh) == 7, [o.steps for o in CountedLBFGS.made]
    assert total(end) < 0.8 * total(stalled_at), (total(stalled_at), total(end))


def test_no_restart_while_the_loss_falls(run: Callable[[bool], list[Snapshot]]) -> None:
    """Restarting every step would turn L-BFGS into gradient descent."""
    run(False)
    assert len(CountedLBFGS.made) == 1 and CountedLBFGS.made[0].steps == 10
