"""Running one session from several threads at once."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np


def outputs_from_threads(session: Any, inputs: list[np.ndarray], name: str = "input") -> list[np.ndarray]:
    """Each input run by its own thread, all started together; outputs in input order."""
    got: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        got[i] = session.run(None, {name: inputs[i]})[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [got[i] for i in range(len(inputs))]
