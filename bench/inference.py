"""Worker inference: ONNX Runtime vs PyTorch eager, same weights, input and threads.

    python bench/inference.py [--model sr-compact-x4] [--size 128] [--threads 2] [--repeats 10]

The PyTorch model is rebuilt from the shipped ONNX file (training.from_onnx), so
both run exactly the served weights. Goal on the 2-core CI machine: ORT >= 2x.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import describe, ort_providers, timings
from imgenhance.cards import read_card
from training.from_onnx import load_from_card

MODELS = Path(__file__).resolve().parents[1] / "models"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="sr-compact-x4", help="model id in models/ (default: sr-compact-x4)")
    p.add_argument("--size", type=int, default=128, help="input side in pixels (default: 128)")
    p.add_argument("--batch", type=int, default=1, help="batch size (default: 1)")
    p.add_argument("--threads", type=int, default=2, help="threads for both runtimes (default: 2)")
    p.add_argument("--repeats", type=int, default=10, help="timed runs each (default: 10)")
    p.add_argument("--provider", default="cpu", help="ORT provider: cpu or cuda (default: cpu)")
    args = p.parse_args()

    card_path = MODELS / f"{args.model}.json"
    card = read_card(card_path)
    x = np.random.default_rng(0).random((args.batch, 3, args.size, args.size), dtype=np.float32)

    torch.set_num_threads(args.threads)
    device = "cuda" if args.provider == "cuda" else "cpu"
    model = load_from_card(card_path).to(device)
    xt = torch.from_numpy(x).to(device)

    def run_torch() -> np.ndarray:
        with torch.inference_mode():
            y = model(xt)
        if device == "cuda":
            torch.cuda.synchronize()
        out: np.ndarray = y.cpu().numpy()
        return out

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    providers = ort_providers(args.provider)
    session = ort.InferenceSession(str(MODELS / card.file), opts, providers=providers)

    def run_ort() -> np.ndarray:
        out: np.ndarray = session.run(None, {"input": x})[0]
        return out

    diff = float(np.abs(run_torch() - run_ort()).max())
    t_torch = timings(run_torch, args.repeats, warmup=2)
    t_ort = timings(run_ort, args.repeats, warmup=2)
    print(
        f"{args.model} ({card.architecture.params:,} params), input {args.batch}x3x{args.size}x{args.size}, "
        f"{args.threads} threads, {session.get_providers()[0]} / torch {torch.__version__} on {device}"
    )
    print(f"  PyTorch eager : {describe(t_torch)}")
    print(f"  ONNX Runtime  : {describe(t_ort)}")
    print(f"  ratio (PyTorch / ORT, medians): {statistics.median(t_torch) / statistics.median(t_ort):.2f}x")
    print(f"  max abs output difference: {diff:.2e}")


if __name__ == "__main__":
    main()
