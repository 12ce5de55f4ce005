"""Inference sessions for every model in the catalog, loaded once per process.

The provider is the best available (CUDA, then CPU) unless settings name others.
Each session is checked against its card (file checksum, input and output names)
and warmed up with one small run, so the first job does not pay for kernel
selection and memory arena growth.

On the CPU the engine is a setting (``IMGENHANCE_CPU_ENGINE``), measured by
``bench/peers.py`` against ncnn and PyTorch on the same SRVGGNetCompact weights
(docs/operations.md, Sizing):

- ``onnxruntime`` (default): all graph optimisations (the blocked NCHWc layout), and
  every PRelu rewritten into ops that stay in that layout (``prelu_as_batchnorm``,
  exact to 1e-6): ORT has no blocked PRelu, and its plain PRelu cost a fifth of the run.
- ``openvino`` (``pip install openvino``): the same ONNX file compiled by OpenVINO's
  CPU plugin, PRelu fused into the convolutions; outputs within 1e-5 of ORT's.
  With ``IMGENHANCE_CPU_PRECISION=bf16`` it computes in bfloat16 on CPUs that have it
  (AVX512_BF16, AMX): outputs move by up to ~0.03 (about 54 dB PSNR against fp32), so
  it is opt-in, outside the cards' parity bound.
- ``ncnn`` (``pip install 'imgenhance[worker,ncnn]'``): the ONNX graph converted at load by
  ``worker/ncnn_engine.py`` (numpy and onnx, no torch) and run on ncnn's Winograd
  convolutions, fp32; checked against ORT at load, and any graph with an op the converter
  does not handle (or outside the parity bound) runs on ORT instead, with a warning.

Generators promise the same pixels for the same request, so they always run on ONNX
Runtime with deterministic kernels, whatever the engine setting.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnx
import onnxruntime as ort

from imgenhance.cards import ModelCard, file_sha256
from imgenhance.catalog import Catalog
from imgenhance.jobs import WorkerNotEquipped
from imgenhance.onnx_passes import prelu_as_batchnorm
from imgenhance.settings import Settings
from imgenhance.timing import median_seconds
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


CPU_ENGINES = ("onnxruntime", "openvino", "ncnn")
AUTO = "auto"  # IMGENHANCE_CPU_ENGINE=auto: each model on the engine that ran it fastest at load
AUTO_SIDE = 64  # input side of the timed runs (or 16 size multiples, if larger)
AUTO_RUNS = 3
CPU_PRECISIONS = ("fp32", "bf16")


class ModelFileMismatch(RuntimeError):
    pass


class EngineUnavailable(RuntimeError):
    """A CPU engine or precision that settings ask for and this host cannot give."""


class Session(Protocol):
    """The part of ONNX Runtime's ``InferenceSession`` the worker uses; OpenVinoSession has it too."""

    def run(self, output_names: list[str] | None, input_feed: dict[str, np.ndarray]) -> list[np.ndarray]: ...

    def get_inputs(self) -> list[Any]: ...

    def get_outputs(self) -> list[Any]: ...

    def get_providers(self) -> list[str]: ...


@dataclass(frozen=True)
class _Port:
    name: str


class OpenVinoSession:
    """An ONNX graph compiled by OpenVINO for the CPU. Infer requests are not thread-safe:
    each calling thread gets its own, on the one compiled model."""

    def __init__(self, model: str | Path, threads: int = 0, precision: str = "fp32") -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise EngineUnavailable(
                "IMGENHANCE_CPU_ENGINE=openvino needs the openvino package: pip install openvino"
            ) from exc
        if precision not in CPU_PRECISIONS:
            raise ValueError(f"precision {precision!r} is not one of {CPU_PRECISIONS}")
        core = ov.Core()
        if precision == "bf16" and "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            raise EngineUnavailable(
                "IMGENHANCE_CPU_PRECISION=bf16 needs a CPU with AVX512_BF16 or AMX; this one has neither: use fp32"
            )
        config = {
            # OpenVINO's own default is bf16 wherever the CPU has it: always say which.
            "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
            "INFERENCE_NUM_THREADS": threads,  # 0 = one per core
            "PERFORMANCE_HINT": "LATENCY",  # one request at a time, all threads on it
        }
        self._compiled = core.compile_model(core.read_model(str(model)), "CPU", config)
        self._inputs = [_Port(p.get_any_name()) for p in self._compiled.inputs]
        self._outputs = [_Port(p.get_any_name()) for p in self._compiled.outputs]
        self._local = threading.local()
        self.precision = precision

    def run(self, output_names: list[str] | None, input_feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        request.infer(input_feed)
        # the request reuses its output buffers on the next run: hand out copies
        return [np.array(request.get_tensor(name).data) for name in output_names or [o.name for o in self._outputs]]

    def get_inputs(self) -> list[Any]:
        return list(self._inputs)

    def get_outputs(self) -> list[Any]:
        return list(self._outputs)

    def get_providers(self) -> list[str]:
        return [f"OpenVINO CPU ({self.precision})"]


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
    session: Session
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
        self._infer(_zeros(self.card, 16 * self.card.io.size_multiple))  # not counted: metrics count jobs' work


def open_session(
    model: str | Path | bytes,
    providers: list[str] | None = None,
    threads: int = 0,
    deterministic: bool = False,
    cpu_layout: bool = True,
) -> ort.InferenceSession:
    """The one way this project opens an ONNX graph in ONNX Runtime (a file, or its bytes):
    all graph optimisations, ``threads`` intra-op threads (0 = one per core), the CPU
    provider unless others are named. ``deterministic``: the same input gives the same
    bits on GPUs too (deterministic kernels, no per-process cuDNN algorithm search).
    ``cpu_layout``: on the CPU, PRelus rewritten to stay in ORT's blocked layout (exact to
    float rounding; 10-20% faster on SRVGGNetCompact, bench/peers.py).

    Measured and left at ORT's defaults (bench/peers.py --ort-options): ENABLE_ALL beats
    EXTENDED and BASIC by 15-20% (only ALL has the NCHWc layout); ORT_PARALLEL with two
    inter-op threads is 2x slower (a chain of convolutions has nothing to run beside);
    turning spinning or the memory arena off changes nothing beyond noise."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.use_deterministic_compute = deterministic
    chosen = providers or ["CPUExecutionProvider"]
    options = [
        {"cudnn_conv_algo_search": "DEFAULT"} if deterministic and p == "CUDAExecutionProvider" else {} for p in chosen
    ]
    source: str | bytes = model if isinstance(model, bytes) else str(model)
    if cpu_layout and chosen[0] == "CPUExecutionProvider":
        source = _blocked_prelu(source)
    return ort.InferenceSession(source, opts, providers=chosen, provider_options=options)


def _blocked_prelu(source: str | bytes) -> str | bytes:
    """The graph with its constant-slope PRelus rewritten (``prelu_as_batchnorm``), or the
    source unchanged when it has none."""
    graph = onnx.load_from_string(source) if isinstance(source, bytes) else onnx.load(source)
    if not any(node.op_type == "PRelu" for node in graph.graph.node):
        return source
    return graph.SerializeToString() if prelu_as_batchnorm(graph) else source


def open_cpu_session(
    model: str | Path, engine: str = "onnxruntime", precision: str = "fp32", threads: int = 0
) -> Session:
    """A CPU session on the named engine (``IMGENHANCE_CPU_ENGINE`` / ``_PRECISION``). On ncnn,
    a graph it cannot run within the parity bound comes back on ONNX Runtime (get_providers says)."""
    if engine == "openvino":
        return OpenVinoSession(model, threads, precision)
    if engine not in CPU_ENGINES:
        raise ValueError(f"CPU engine {engine!r} is not one of {CPU_ENGINES}")
    if precision != "fp32":
        raise EngineUnavailable(f"precision {precision} needs IMGENHANCE_CPU_ENGINE=openvino; {engine} runs fp32")
    if engine == "ncnn":
        from worker.ncnn_engine import open_ncnn_session  # ncnn is an optional package

        return open_ncnn_session(model, threads)
    session: Session = open_session(model, ["CPUExecutionProvider"], threads)
    return session


def fastest_cpu_session(card: ModelCard, path: str, threads: int) -> Session:
    """``IMGENHANCE_CPU_ENGINE=auto``: the model opened on every installed CPU engine (fp32,
    all within the parity bound), each timed on the same input after a warm-up run, and
    the fastest kept. Measured, not assumed: ncnn wins on SRVGGNetCompact and loses on
    x4plus's RRDBNet (docs/operations.md, Sizing). A busy host can pick the wrong one."""
    timings: dict[str, float] = {}
    best: tuple[float, Session] | None = None
    for engine in CPU_ENGINES:
        try:
            session = open_cpu_session(path, engine, "fp32", threads)
        except EngineUnavailable:
            continue
        provider = str(session.get_providers()[0])
        if provider in timings:  # ncnn handed this graph back to ONNX Runtime
            continue
        timings[provider] = seconds = _time_runs(LoadedModel(card, session, 0.0))
        if best is None or seconds < best[0]:
            best = (seconds, session)
    if best is None:
        raise EngineUnavailable("no CPU engine could open the model")
    log.info(
        "%s timed on each CPU engine, the fastest kept: %s",
        card.id,
        ", ".join(f"{p} {s * 1000:.0f} ms" for p, s in sorted(timings.items(), key=lambda item: item[1])),
    )
    return best[1]


def _time_runs(model: LoadedModel) -> float:
    """Median seconds of a few runs on one AUTO_SIDE-pixel input, after one untimed run."""
    side = max(AUTO_SIDE, 16 * model.card.io.size_multiple)
    feeds = _zeros(model.card, side)
    return median_seconds(lambda: model._infer(feeds), AUTO_RUNS, warmup=1)


def _zeros(card: ModelCard, side: int) -> dict[str, np.ndarray]:
    """One all-zero input per graph input, ``side`` pixels where the card leaves a size open."""
    return {
        t.role: np.zeros(
            [1 if i == 0 else (side if d == -1 else d) for i, d in enumerate(t.shape)],
            np.int64 if t.dtype == "int64" else np.float32,
        )
        for t in card.io.inputs
    }


def load_model(
    card: ModelCard,
    path: str,
    providers: list[str],
    threads: int,
    cpu_engine: str = "onnxruntime",
    cpu_precision: str = "fp32",
) -> LoadedModel:
    if not Path(path).exists():
        built = card.training.built_by
        hint = f": it is built at set-up by `{built}` (make serve runs it)" if built else ""
        raise ModelFileMismatch(f"{path} is missing{hint}")
    if file_sha256(Path(path)) != card.sha256:
        raise ModelFileMismatch(f"{path} does not match the checksum in its card {card.id}.json")
    start = time.perf_counter()
    # Generators promise the same pixels for the same request: deterministic kernels for them.
    deterministic = card.task == "generate"
    session: Session
    if providers[0] == "CPUExecutionProvider" and not deterministic and cpu_engine == AUTO:
        session = fastest_cpu_session(card, path, threads)
    elif providers[0] == "CPUExecutionProvider" and not deterministic:
        session = open_cpu_session(path, cpu_engine, cpu_precision, threads)
    else:
        session = open_session(path, providers, threads, deterministic=deterministic)
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
            self.models[card.id] = load_model(
                card, str(path), self.providers, settings.ort_threads, settings.cpu_engine, settings.cpu_precision
            )

    def get(self, model_id: str) -> LoadedModel:
        if model_id not in self.models:
            raise WorkerNotEquipped(
                f"model {model_id!r} is not installed on this worker (it has {sorted(self.models)}); "
                "models built at set-up need `python -m training.ncnn install` on the worker host"
            )
        return self.models[model_id]
