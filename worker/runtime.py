"""ONNX Runtime sessions for every model in the catalog, loaded once per process.

The provider is the best available (CUDA, then CPU) unless settings name others.
Each session is checked against its card (file checksum, input and output names)
and warmed up with one small run, so the first job does not pay for kernel
selection and memory arena growth.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from imgenhance.cards import ModelCard, file_sha256
from imgenhance.catalog import Catalog
from imgenhance.jobs import JobError
from imgenhance.settings import Settings
from worker import metrics

log = logging.getLogger("imgenhance.worker")

PROVIDER_ALIASES = {
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "directml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
PREFERRED = ("CUDAExecutionProvider", "CPUExecutionProvider")


class ModelFileMismatch(RuntimeError):
    pass


def choose_providers(requested: list[str]) -> list[str]:
    available = ort.get_available_providers()
    if not requested:
        best = [p for p in PREFERRED if p in available]
        _preload_cuda(best)
        return best
    chosen = [PROVIDER_ALIASES.get(name.lower(), name) for name in requested]
    missing = [p for p in chosen if p not in available]
    if missing:
        raise RuntimeError(
            f"ONNX Runtime provider(s) {missing} requested by IMGENHANCE_ORT_PROVIDERS are not available "
            f"in this installation (available: {available}); install onnxruntime-gpu for CUDA"
        )
    _preload_cuda(chosen)
    return chosen


def _preload_cuda(providers: list[str]) -> None:
    """Load CUDA/cuDNN from pip's nvidia-* packages when those are how CUDA is installed."""
    if "CUDAExecutionProvider" in providers and hasattr(ort, "preload_dlls"):
        ort.preload_dlls()


@dataclass
class LoadedModel:
    card: ModelCard
    session: ort.InferenceSession
    load_seconds: float

    @property
    def provider(self) -> str:
        return str(self.session.get_providers()[0])

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        out: np.ndarray = self.session.run([self.card.io.outputs[0].name], {self.card.io.inputs[0].name: batch})[0]
        metrics.TILES.labels(model=self.card.id).inc(batch.shape[0])
        metrics.BATCHES.labels(model=self.card.id).inc()
        return out


def load_model(card: ModelCard, path: str, providers: list[str], threads: int) -> LoadedModel:
    if file_sha256(Path(path)) != card.sha256:
        raise ModelFileMismatch(f"{path} does not match the checksum in its card {card.id}.json")
    start = time.perf_counter()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(path, opts, providers=providers)
    names_in = [i.name for i in session.get_inputs()]
    names_out = [o.name for o in session.get_outputs()]
    expected_in, expected_out = [t.name for t in card.io.inputs], [t.name for t in card.io.outputs]
    if names_in != expected_in or names_out != expected_out:
        raise ModelFileMismatch(
            f"{card.id}: graph I/O {names_in}->{names_out} differs from its card {expected_in}->{expected_out}"
        )
    side = 16 * card.io.size_multiple
    session.run(None, {expected_in[0]: np.zeros((1, card.io.inputs[0].shape[1], side, side), np.float32)})  # warm-up
    model = LoadedModel(card, session, time.perf_counter() - start)
    metrics.MODEL_LOAD_SECONDS.labels(model=card.id).set(model.load_seconds)
    log.info("loaded %s on %s in %.2fs", card.summary(), model.provider, model.load_seconds)
    return model


class Runtime:
    def __init__(self, catalog: Catalog, settings: Settings) -> None:
        self.providers = choose_providers(settings.ort_providers)
        self.models = {
            card.id: load_model(card, str(catalog.path(card)), self.providers, settings.ort_threads) for card in catalog
        }

    def get(self, model_id: str) -> LoadedModel:
        if model_id not in self.models:
            raise JobError(f"model {model_id!r} is not installed on this worker (it has {sorted(self.models)})")
        return self.models[model_id]
