"""Generate speed on this CPU: a whole n-image job against the network alone and PyTorch.

    python bench/generate.py [--model gen-digits] [--n 64] [--repeats 5]

In one run, on the same weights (models/<model>.onnx):
- the worker's pipeline (latents from the seed, the model in chunks, the PNG grid), the
  job's compute: 2 threads and all threads;
- the ONNX Runtime session alone on the n latents, one call;
- PyTorch eager on the generator rebuilt from the ONNX weights (the baseline), 2 threads.
It also runs the same request twice and says whether the bytes are identical.
Goal (issue 9): n=64 digits (or n=16 faces) in at most 1 s of model time on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import describe, timings
from imgenhance.cards import read_card
from imgenhance.params import GenerateParams
from worker.codec import Encoded, encode
from worker.pipelines import TileSettings, run_encoded
from worker.pipelines.generate import latents
from worker.runtime import LoadedModel, load_model

MODELS = Path(__file__).resolve().parents[1] / "models"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="gen-digits", help="a generate model id (default: gen-digits)")
    p.add_argument("--n", type=int, default=64, help="images per job (default: 64)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs each (default: 5)")
    p.add_argument("--models-dir", type=Path, default=MODELS, help=f"(default: {MODELS})")
    args = p.parse_args()

    card_path = args.models_dir / f"{args.model}.json"
    card = read_card(card_path)
    if card.generator is None:
        raise SystemExit(f"{args.model} is a {card.task} model, not a generator")
    info = card.generator
    res = info.resolution
    print(f"{card.id}: {card.architecture.params:,} params, {args.n} images of {res}x{res}, latent {info.latent}")
    params = GenerateParams(model=card.id, output_format="png", n=args.n, seed=7)
    tiles = TileSettings(512, 24, 1)
    z = latents(7, args.n, info.latent)
    feeds: dict[str, np.ndarray] = {"latent": z}
    if info.classes:
        feeds["class"] = (np.arange(args.n) % len(info.classes)).astype(np.int64)

    results: dict[str, list[float]] = {}
    cores = os.cpu_count() or 1

    def job(model: LoadedModel) -> bytes:
        out = run_encoded(params, model, tiles)
        return out.data if isinstance(out, Encoded) else encode(out, params.output_format)[0]

    for threads in sorted({2, cores}):
        model = load_model(card, str(args.models_dir / card.file), ["CPUExecutionProvider"], threads)
        results[f"whole job (pipeline + PNG), {threads} threads"] = timings(lambda m=model: job(m), args.repeats)
        results[f"ORT session alone, {threads} threads"] = timings(lambda m=model: m.run(**feeds), args.repeats)
    same = job(model) == job(model)
    print(f"same request twice: {'bit-identical' if same else 'DIFFERENT'} output")

    baseline = None
    try:
        import torch

        from training.from_onnx import load_from_card

        torch.set_num_threads(2)
        from training.archs.gan import ExportedGenerator

        net = ExportedGenerator(load_from_card(card_path)).eval()  # what ships: output in [0, 1]
        y = torch.from_numpy(feeds["class"]) if "class" in feeds else None
        with torch.no_grad():
            baseline = "PyTorch eager, 2 threads"
            results[baseline] = timings(lambda: net(torch.from_numpy(z), y), args.repeats)
            diff = float(np.abs(net(torch.from_numpy(z), y).numpy() - model.run(**feeds)).max())
        print(f"PyTorch (rebuilt from the ONNX weights) vs ORT: max abs diff {diff:.2e}")
    except ImportError:
        print("PyTorch not installed: no eager baseline")

    base = statistics.median(results[baseline]) if baseline else None
    for name, values in results.items():
        ratio = f"   {statistics.median(values) / base:5.2f}x PyTorch" if base else ""
        print(f"{name:44s} {describe(values)}{ratio}")
    print("goal: 1000 ms for n=64 digits / n=16 faces, 2 threads")


if __name__ == "__main__":
    main()
