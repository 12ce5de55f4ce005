"""Named-style speed on this CPU: our served model beside the same network in ncnn.

    python bench/style.py [--style starry-night] [--side 1024] [--repeats 3]

In one run, on the same ONNX weights (models/style-<name>.onnx):
- ONNX Runtime through the worker's pipeline (what a job runs), 2 threads and all threads;
- ncnn (pip ``ncnn``), the graph converted by pnnx (pip ``pnnx``), 2 threads and all threads;
- PyTorch eager (the training framework), 2 threads;
- the whole API: a ``--side``² PNG sent to a real ``imgenhance serve`` (embedded Redis and
  worker) with ``Prefer: wait``, client wall time.
Goal (issue 8): an API job at least as fast as ncnn running the network.
Needs the dev install plus ``pip install ncnn pnnx`` (the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import describe, timings
from imgenhance.cards import read_card
from imgenhance.params import StyleTransferParams
from worker.codec import Picture
from worker.pipelines import TileSettings, run_local
from worker.runtime import load_model
from worker.tiling import run_tiled

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
CACHE = ROOT / "runs" / "bench-ncnn"


def photo(side: int) -> np.ndarray:
    y, x = np.mgrid[:side, :side].astype(np.float32) / side
    img = np.stack([0.5 + 0.4 * np.sin(9 * x), 0.3 + 0.5 * y, 0.5 + 0.3 * np.cos(13 * (x + y))], axis=2)
    img += np.random.default_rng(0).normal(0, 0.03, img.shape).astype(np.float32)
    return np.clip(img, 0, 1).astype(np.float32)


def ncnn_model(onnx_path: Path, side: int) -> tuple[Path, Path]:
    """pnnx's ncnn conversion of the ONNX graph, cached by file name and size."""
    out = CACHE / f"{onnx_path.stem}-{side}"
    param, weights = out / "model.ncnn.param", out / "model.ncnn.bin"
    if not param.exists():
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(onnx_path, out / "model.onnx")
        pnnx = shutil.which("pnnx") or str(Path(sys.executable).parent / "pnnx")
        subprocess.run(
            [pnnx, "model.onnx", f"inputshape=[1,3,{side},{side}]"], cwd=out, check=True, capture_output=True
        )
    return param, weights


def ncnn_runner(param: Path, weights: Path, threads: int):  # type: ignore[no-untyped-def]
    import ncnn

    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = threads
    net.load_param(str(param))
    net.load_model(str(weights))

    def run(chw: np.ndarray) -> np.ndarray:
        ex = net.create_extractor()
        ex.input("in0", ncnn.Mat(np.ascontiguousarray(chw)))
        _, out = ex.extract("out0")
        return np.array(out)

    return run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def api_timings(style: str, side: int, repeats: int, threads: int) -> list[float]:
    """Client wall time of style jobs through a real embedded service."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMGENHANCE_") and k != "REDIS_URL"}
    env.update(IMGENHANCE_PORT=str(port), IMGENHANCE_METRICS_PORT="0", IMGENHANCE_ORT_THREADS=str(threads))
    buf = io.BytesIO()
    Image.fromarray(np.round(photo(side) * 255).astype(np.uint8)).save(buf, "PNG")
    body = buf.getvalue()
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "--log-level", "warning", "serve"],
            cwd=tmp,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the service did not start")
                time.sleep(0.5)
            out = []
            with httpx.Client(base_url=base, timeout=300) as client:
                for i in range(repeats + 1):
                    start = time.perf_counter()
                    r = client.post(
                        "/v1/jobs/style-transfer",
                        files={"image": ("photo.png", body)},
                        data={"style": style},
                        headers={"Prefer": "wait=300"},
                    )
                    elapsed = time.perf_counter() - start
                    if r.status_code != 200:
                        raise RuntimeError(r.text)
                    if i:  # the first job warms the service up
                        out.append(elapsed)
            return out
        finally:
            proc.terminate()
            proc.wait(30)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--style", default="starry-night", help="named style (default: starry-night)")
    p.add_argument("--side", type=int, default=1024, help="input side in pixels (default: 1024)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per engine (default: 3)")
    p.add_argument("--no-api", action="store_true", help="skip the API measurement (default: measure it)")
    p.add_argument("--models-dir", type=Path, default=MODELS, help=f"(default: {MODELS})")
    args = p.parse_args()

    models = args.models_dir
    card_path = models / f"style-{args.style}.json"
    card = read_card(card_path)
    cores = os.cpu_count() or 1
    img = photo(args.side)
    x = np.ascontiguousarray(img.transpose(2, 0, 1))
    print(f"{card.id}: {card.architecture.name}, {card.architecture.params:,} params, {args.side}x{args.side} input")
    results: dict[str, list[float]] = {}
    outputs: dict[str, np.ndarray] = {}
    params = StyleTransferParams(model=card.id, style=args.style, output_format="png", max_side=args.side)
    tiles, pic = TileSettings(512, 24, 1), Picture(img, None, 8)
    for threads in sorted({2, cores}):
        model = load_model(card, str(models / card.file), ["CPUExecutionProvider"], threads)
        results[f"ORT pipeline, {threads} threads"] = timings(
            lambda m=model: run_local(params, m, tiles, image=pic), args.repeats
        )
        outputs["ort"] = model.run(image=x[None])[0]
    # Why style transfer runs untiled: instance norm takes statistics of what it sees, so
    # tiles (even overlapping and feathered, as super-resolution does it) come out different.
    tiled = run_tiled(x, lambda b: model.run(image=b), 1, args.side // 2, 32, multiple=card.io.size_multiple)
    err = np.abs(np.clip(tiled, 0, 1) - np.clip(outputs["ort"], 0, 1))
    seam_psnr = 10 * np.log10(1.0 / max(float(np.mean(err**2)), 1e-12))
    print(
        f"if it were tiled ({args.side // 2}-px tiles, 32 overlap): {seam_psnr:.1f} dB vs untiled, "
        f"max diff {err.max():.3f}"
    )
    param, weights = ncnn_model(models / card.file, args.side)
    for threads in sorted({2, cores}):
        run = ncnn_runner(param, weights, threads)
        results[f"ncnn, {threads} threads"] = timings(lambda r=run: r(x), args.repeats)
        outputs["ncnn"] = run(x)
    try:
        import torch

        from training.from_onnx import load_from_card

        torch.set_num_threads(2)
        net = load_from_card(card_path)
        with torch.no_grad():
            results["PyTorch eager, 2 threads"] = timings(lambda: net(torch.from_numpy(x[None])), args.repeats)
    except ImportError:
        print("PyTorch not installed: no eager figure")
    if not args.no_api:
        results["API job (PNG in and out, 2 threads)"] = api_timings(args.style, args.side, args.repeats, 2)

    diff = float(np.abs(outputs["ort"] - outputs["ncnn"]).max())
    print(f"ORT vs ncnn output: max abs diff {diff:.2e}")
    base = statistics.median(results["ncnn, 2 threads"])
    for name, values in results.items():
        ratio = statistics.median(values) / base
        print(f"{name:38s} {describe(values)}   {ratio:5.2f}x ncnn (2 threads)")


if __name__ == "__main__":
    main()
