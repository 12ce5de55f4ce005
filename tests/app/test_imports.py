"""The serving packages never import torch; the gateway never imports onnxruntime."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = "import sys, {module}; bad = [m for m in {banned} if m in sys.modules]; print(bad); sys.exit(bool(bad))"


@pytest.mark.parametrize(
    ("module", "banned"),
    [
        ("app.main", ["torch", "onnxruntime", "worker", "training", "numpy"]),
        ("cli.main", ["torch", "onnxruntime", "worker", "training"]),
        ("imgenhance.cards", ["torch", "onnxruntime", "app", "worker", "training", "cli"]),
        ("imgenhance.params", ["torch", "onnxruntime", "app", "worker", "training", "cli"]),
        ("worker.main", ["torch", "training"]),
        ("training.ncnn", ["torch", "onnxruntime"]),  # runs in the serving install, at set-up
    ],
)
def test_import_boundaries(module: str, banned: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHECK.format(module=module, banned=banned)], capture_output=True, text=True
    )
    assert result.returncode == 0, f"{module} imported {result.stdout.strip()} {result.stderr[-500:]}"
