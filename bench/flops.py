"""Cost of the image models: parameters and convolution FLOPs per input pixel, counted
on each ONNX graph, with the ratio to the first model named.

    python bench/flops.py [--side 64] sr-realesrgan-x4plus sr-realworld-x4 sr-compact-x4

FLOPs are 2 per multiply-add of every Conv and ConvTranspose (the other ops are a few
percent of these models), for a side x side input, divided by side^2. Issue 10 asks the
real-world model for at most 1/4 of x4plus's FLOPs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import onnx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from imgenhance.cards import read_card
from imgenhance.onnx_cost import conv_flops_per_pixel

MODELS = Path(__file__).resolve().parents[1] / "models"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="model ids under models/ (the first is the reference)")
    p.add_argument("--side", type=int, default=64, help="input side the graph is counted at (default: 64)")
    args = p.parse_args()
    rows = []
    for model_id in args.models:
        card = read_card(MODELS / f"{model_id}.json")
        path = MODELS / card.file
        if not path.exists():
            raise SystemExit(f"{path} is missing: run `make ncnn-models` for the imported models")
        rows.append((model_id, card.architecture.params, conv_flops_per_pixel(onnx.load(str(path)), args.side)))
    reference = rows[0][2]
    print(f"{'model':30s} {'params':>12s} {'MFLOP / input px':>17s} {'vs ' + rows[0][0]:>28s}")
    for model_id, params, flops in rows:
        print(f"{model_id:30s} {params:12,d} {flops / 1e6:17.2f} {flops / reference:27.3f}x")


if __name__ == "__main__":
    main()
