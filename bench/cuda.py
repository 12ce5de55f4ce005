"""CUDA vs CPU through the worker's own code: parity and speed on a GPU host.

    python bench/cuda.py [--size 512] [--batch 4] [--repeats 5]

For every super-resolve model in models/: load it with the worker's runtime on the
CUDA and the CPU execution providers, upscale the same photo through the worker's
pipeline (tiling, blending) on each, and print the largest difference, the PSNR
between the two outputs and the time of each. Needs onnxruntime-gpu.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import describe, timings
from imgenhance.catalog import Catalog
from imgenhance.params import SuperResolveParams
from tests.support.images import BUTTERFLY
from worker.codec import Picture
from worker.pipelines import TileSettings, run_local
from worker.runtime import choose_providers, load_model

MODELS = Path(__file__).resolve().parents[1] / "models"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=512, help="input side (default: 512)")
    p.add_argument("--tile", type=int, default=512, help="tile size (default: 512)")
    p.add_argument("--batch", type=int, default=4, help="tiles per run on CUDA (default: 4)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs (default: 5)")
    args = p.parse_args()

    cuda = choose_providers(["cuda", "cpu"])
    print(f"onnxruntime {ort.__version__}, providers {ort.get_available_providers()}")
    photo = Image.open(BUTTERFLY).convert("RGB").resize((args.size, args.size), Image.Resampling.BICUBIC)
    picture = Picture(np.asarray(photo).astype(np.float32) / 255.0, None, 8)
    for card in Catalog.load(MODELS):
        if card.task != "super-resolve":
            continue
        path = str(MODELS / card.file)
        on_gpu = load_model(card, path, cuda, 0)
        on_cpu = load_model(card, path, ["CPUExecutionProvider"], 0)
        gpu_tiles = TileSettings(args.tile, 24, args.batch)
        cpu_tiles = TileSettings(args.tile, 24, 1)
        params = SuperResolveParams(model=card.id, scale=card.scale, output_format="png")  # type: ignore[arg-type]
        out_gpu = run_local(params, on_gpu, gpu_tiles, image=picture).pixels
        out_cpu = run_local(params, on_cpu, cpu_tiles, image=picture).pixels
        diff = np.abs(out_gpu - out_cpu)
        mse = float(np.mean(diff**2))
        t_gpu = timings(
            lambda m=on_gpu, t=gpu_tiles, p=params: run_local(p, m, t, image=picture), args.repeats, warmup=2
        )
        t_cpu = timings(
            lambda m=on_cpu, t=cpu_tiles, p=params: run_local(p, m, t, image=picture), max(1, args.repeats // 2)
        )
        print(
            f"{card.id}: {args.size}x{args.size} -> x{card.scale}, load {on_gpu.load_seconds:.2f}s on {on_gpu.provider}"
        )
        print(f"  parity CUDA vs CPU: max abs diff {diff.max():.2e}, PSNR {10 * np.log10(1 / max(mse, 1e-20)):.1f} dB")
        print(f"  CUDA pipeline: {describe(t_gpu)}")
        print(f"  CPU  pipeline: {describe(t_cpu)}")
        print(f"  speed-up: {statistics.median(t_cpu) / statistics.median(t_gpu):.1f}x")


if __name__ == "__main__":
    main()
