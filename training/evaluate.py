"""Super-resolution evaluation: our model and the classical baselines in one run.

Protocol (stated in every report and card): HR cropped to a multiple of the scale,
LR made with MATLAB bicubic (``training.imresize``), outputs rounded to uint8, PSNR
and SSIM on the Y channel (BT.601) after cropping ``scale`` pixels from each border.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from training.data import SRPair, list_images, make_sr_pairs
from training.imresize import imresize
from training.metrics import crop_border, psnr, ssim, y_channel

Upscaler = Callable[[np.ndarray], np.ndarray]  # HxWx3 uint8 LR -> HxWx3 uint8 SR


def bicubic(scale: int) -> Upscaler:
    return lambda lr: imresize(lr, scale)


def lanczos(scale: int) -> Upscaler:
    def run(lr: np.ndarray) -> np.ndarray:
        h, w = lr.shape[:2]
        return np.asarray(Image.fromarray(lr).resize((w * scale, h * scale), Image.Resampling.LANCZOS))

    return run


def sr_protocol(scale: int) -> dict[str, Any]:
    return {
        "metric": "PSNR (dB) and SSIM",
        "channel": "Y (ITU-R BT.601, 16-235)",
        "crop_border": scale,
        "degradation": "MATLAB-style bicubic downsampling with antialiasing",
        "output_rounding": "uint8",
    }


def score_pair(sr: np.ndarray, pair: SRPair, scale: int) -> tuple[float, float]:
    assert sr.shape == pair.hr.shape, f"{pair.name}: output {sr.shape} but HR is {pair.hr.shape}"
    a = crop_border(y_channel(sr), scale)
    b = crop_border(y_channel(pair.hr), scale)
    return psnr(a, b), ssim(a, b)


def evaluate_sr(
    methods: dict[str, Upscaler],
    sets: dict[str, list[SRPair]],
    scale: int,
    progress: bool = True,
) -> dict[str, Any]:
    """Mean PSNR/SSIM per set and method, plus the per-image figures."""
    results: dict[str, Any] = {}
    for set_name, pairs in sets.items():
        per_method: dict[str, Any] = {}
        for method, fn in methods.items():
            scores = [
                score_pair(fn(p.lr), p, scale)
                for p in tqdm(pairs, desc=f"{set_name}/{method}", disable=not progress, leave=False)
            ]
            per_method[method] = {
                "psnr": round(float(np.mean([s[0] for s in scores])), 3),
                "ssim": round(float(np.mean([s[1] for s in scores])), 4),
                "per_image": {p.name: round(s[0], 3) for p, s in zip(pairs, scores, strict=True)},
            }
        results[set_name] = per_method
    return {"protocol": sr_protocol(scale), "scale": scale, "results": results}


def load_sets(data_root: Path, names: list[str], scale: int) -> dict[str, list[SRPair]]:
    return {name: make_sr_pairs(list_images([data_root / name]), scale) for name in names}


def format_table(report: dict[str, Any]) -> str:
    lines = [f"protocol: {report['protocol']}"]
    for set_name, per_method in report["results"].items():
        base = per_method.get("bicubic", {}).get("psnr")
        for method, m in per_method.items():
            gain = f"  ({m['psnr'] - base:+.2f} dB vs bicubic)" if base is not None and method != "bicubic" else ""
            lines.append(f"{set_name:8s} {method:10s} PSNR {m['psnr']:7.3f}  SSIM {m['ssim']:.4f}{gain}")
    return "\n".join(lines)
