from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from imgenhance.catalog import Catalog
from imgenhance.jobs import WorkerNotEquipped, describe_failure
from imgenhance.settings import Settings
from worker.runtime import ModelFileMismatch, Runtime, choose_providers

MODELS = Path(__file__).resolve().parents[2] / "models"


def test_default_providers_are_the_best_available() -> None:
    assert choose_providers([])[-1] == "CPUExecutionProvider"


def test_unavailable_provider_is_refused_with_the_available_list() -> None:
    with pytest.raises(RuntimeError, match=r"not available.*CPUExecutionProvider"):
        choose_providers(["tensorrt"])


def test_runtime_loads_every_card_and_runs() -> None:
    runtime = Runtime(Catalog.load(MODELS), Settings(models_dir=MODELS, ort_providers=["cpu"]))
    model = runtime.get("sr-compact-x4")
    assert model.provider == "CPUExecutionProvider" and model.load_seconds > 0
    assert model(np.zeros((2, 3, 8, 10), np.float32)).shape == (2, 3, 32, 40)
    with pytest.raises(WorkerNotEquipped, match="not installed") as missing:
        runtime.get("nope")
    # The operator's fault, not the client's: an internal error, with the message kept.
    assert describe_failure(WorkerNotEquipped, missing.value, None) == (str(missing.value), "internal")  # type: ignore[arg-type]


def test_a_model_file_that_does_not_match_its_card_is_refused(tmp_path: Path) -> None:
    shutil.copy(MODELS / "sr-compact-x2.json", tmp_path)
    shutil.copy(MODELS / "sr-compact-x4.onnx", tmp_path / "sr-compact-x2.onnx")  # the wrong weights
    with pytest.raises(ModelFileMismatch, match="checksum"):
        Runtime(Catalog.load(tmp_path), Settings(models_dir=tmp_path))
