"""Tiled vs untiled inference on a 1024x1024 input: time, and PSNR between the two.

    python bench/tiling.py [--model sr-compact-x4] [--size 1024] [--tile 512] [--overlap 24] [--repeats 3]

Goals: tiled time <= 1.15x untiled; tiled vs untiled PSNR >= 50 dB.
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
from bench.common import describe, ort_providers, timings
from tests.support.images import BUTTERFLY
from worker.pipelines.common import TileSettings, count_tiles
from worker.tiling import run_tiled

MODELS = Path(__file__).resolve().parents[1] / "models"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="sr-compact-x4", help="model id (default: sr-compact-x4)")
    p.add_argument("--size", type=int, default=1024, help="input side (default: 1024)")
    p.add_argument("--tile", type=int, default=512, help="largest tile side (default: 512, the service default)")
    p.add_argument("--overlap", type=int, default=24, help="tile overlap (default: 24, the service default)")
    p.add_argument("--batch", type=int, default=1, help="tiles per run (default: 1)")
    p.add_argument("--threads", type=int, default=0, help="ORT threads (default: 0 = all cores)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs each (default: 3)")
    p.add_argument("--provider", default="cpu", help="cpu or cuda (default: cpu)")
    args = p.parse_args()

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    providers = ort_providers(args.provider)
    session = ort.InferenceSession(str(MODELS / f"{args.model}.onnx"), opts, providers=providers)
    scale = session.run(None, {"input": np.zeros((1, 3, 8, 8), np.float32)})[0].shape[2] // 8

    def infer(batch: np.ndarray) -> np.ndarray:
        out: np.ndarray = session.run(None, {"input": batch})[0]
        return out

    photo = Image.open(BUTTERFLY).convert("RGB").resize((args.size, args.size), Image.Resampling.BICUBIC)
    img = np.ascontiguousarray(np.asarray(photo).transpose(2, 0, 1)).astype(np.float32) / 255.0
    untiled = infer(img[None])[0]
    tiled = run_tiled(img, infer, scale, args.tile, args.overlap, args.batch)
    mse = float(np.mean((np.clip(tiled, 0, 1) - np.clip(untiled, 0, 1)) ** 2))
    t_full = timings(lambda: infer(img[None]), args.repeats)
    t_tiled = timings(lambda: run_tiled(img, infer, scale, args.tile, args.overlap, args.batch), args.repeats)
    tiles = count_tiles(args.size, args.size, TileSettings(args.tile, args.overlap, args.batch), 1)
    print(
        f"{args.model} on {args.size}x{args.size} -> {args.size * scale}x{args.size * scale}, "
        f"{session.get_providers()[0]}, {tiles} tiles of <= {args.tile} px, overlap {args.overlap}"
    )
    print(f"  untiled : {describe(t_full, 1, 's')}")
    print(f"  tiled   : {describe(t_tiled, 1, 's')}")
    print(
        f"  ratio tiled / untiled (medians): {statistics.median(t_tiled) / statistics.median(t_full):.3f}x"
        "  (goal <= 1.15x)"
    )
    print(
        f"  PSNR tiled vs untiled: {10 * np.log10(1 / mse) if mse else float('inf'):.1f} dB  (goal >= 50 dB); "
        f"max abs diff {np.abs(tiled - untiled).max():.2e}"
    )


if __name__ == "__main__":
    main()
