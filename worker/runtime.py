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
        """A batch of image tiles through a single-input model (what the tiler calls)."""
        return self.run(image=batch)

    def run(self, **by_role: np.ndarray) -> np.ndarray:
        """Feed each input by its card role (image, style, strength); returns the first output."""
        out = self._infer(by_role)
        metrics.TILES.labels(model=self.card.id).inc(out.shape[0])
        metrics.BATCHES.labels(model=self.card.id).inc()
        return out

    def _infer(self, by_role: dict[str, np.ndarray]) -> np.ndarray:
        missing = [t.role for t in self.card.io.inputs if t.role not in by_role]
        if missing:
            raise ValueError(f"{self.card.id} needs inputs {missing}")
        feeds = {t.name: by_role[t.role] for t in self.card.io.inputs}
        out: np.ndarray = self.session.run([self.card.io.outputs[0].name], feeds)[0]
        return out

    def warm_up(self) -> None:
        """One small run, so the first job does not pay for kernel selection."""
        side = 16 * self.card.io.size_multiple
        zeros = {
            t.role: np.zeros(
                [1 if i == 0 else (side if d == -1 else d) for i, d in enumerate(t.shape)],
                np.int64 if t.dtype == "int64" else np.float32,
            )
            for t in self.card.io.inputs
        }
        self._infer(zeros)  # not counted: the metrics count work done for jobs


def open_session(
    model: str | Path | bytes,
    providers: list[str] | None = None,
    threads: int = 0,
    deterministic: bool = False,
) -> ort.InferenceSession:
    """The one way this project opens an ONNX graph (a file, or its bytes): all graph
    optimisations, ``threads`` intra-op threads (0 = one per core), the CPU provider
    unless others are named. ``deterministic``: the same input gives the same bits on
    GPUs too (deterministic kernels, no per-process cuDNN algorithm search)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.use_deterministic_compute = deterministic
    chosen = providers or ["CPUExecutionProvider"]
    options = [
        {"cudnn_conv_algo_search": "DEFAULT"} if deterministic and p == "CUDAExecutionProvider" else {} for p in chosen
    ]
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, opts, providers=chosen, provider_options=options)


def load_model(card: ModelCard, path: str, providers: list[str], threads: int) -> LoadedModel:
    if not Path(path).exists():
        built = card.training.built_by
        hint = f": it is built at set-up by `{built}` (make serve runs it)" if built else ""
        raise ModelFileMismatch(f"{path} is missing{hint}")
    if file_sha256(Path(path)) != card.sha256:
        raise ModelFileMismatch(f"{path} does not match the checksum in its card {card.id}.json")
    start = time.perf_counter()
    # Generators promise the same pixels for the same request: deterministic kernels for them.
    session = open_session(path, providers, threads, deterministic=card.task == "generate")
    names_in = [i.name for i in session.get_inputs()]
    names_out = [o.name for o in session.get_outputs()]
    expected_in, expected_out = [t.name for t in card.io.inputs], [t.name for t in card.io.outputs]
    if names_in != expected_in or names_out != expected_out:
        raise ModelFileMismatch(
            f"{card.id}: graph I/O {names_in}->{names_out} differs from its card {expected_in}->{expected_out}"
        )
    model = LoadedModel(card, session, 0.0)
    model.warm_up()
    model.load_seconds = time.perf_counter() - start
    metrics.MODEL_LOAD_SECONDS.labels(model=card.id).set(model.load_seconds)
    log.info("loaded %s on %s in %.2fs", card.summary(), model.provider, model.load_seconds)
    return model


class Runtime:
    def __init__(self, catalog: Catalog, settings: Settings) -> None:
        self.providers = choose_providers(settings.ort_providers)
        self.models = {}
        for card in catalog:
            path = catalog.path(card)
            if card.training.built_by and not path.exists():
                # A file rebuilt at set-up (not in git) that is not there yet: serve the rest.
                log.warning("%s is not built: run `%s`; serving without it", path.name, card.training.built_by)
                continue
            self.models[card.id] = load_model(card, str(path), self.providers, settings.ort_threads)

    def get(self, model_id: str) -> LoadedModel:
        if model_id not in self.models:
            raise JobError(
                f"model {model_id!r} is not installed on this worker (it has {sorted(self.models)}); "
                "models built at set-up need `python -m training.ncnn install` on the worker host"
            )
        return self.models[model_id]
