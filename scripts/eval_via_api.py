"""Measure a running service on a folder of photographs, beside the classical baselines.

    python scripts/eval_via_api.py --folder photos/ --task super-resolve --scale 4 [--model real-world]
    python scripts/eval_via_api.py --folder photos/ --task denoise --sigma 25 [--blind]

Same protocol as ``python -m training eval`` (training/evaluate.py): SR inputs are
MATLAB-bicubic downscales scored on Y with the border cropped; denoise inputs get
AWGN of ``--sigma`` from seed + index, are sent as 8-bit PNGs and are scored on RGB.
Baselines (bicubic and Lanczos, or NLM and CBM3D) are computed in the same run. Needs
the ``train`` extra (bm3d) and a service at ``--url``.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from training import evaluate as ev
from training.data import list_images, load_rgb
from training.metrics import psnr, ssim


def call(client: httpx.Client, task: str, image: np.ndarray, fields: dict[str, str]) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG")
    r = client.post(
        f"/v1/jobs/{task}", files={"image": ("in.png", buf.getvalue())}, data=fields, headers={"Prefer": "wait=300"}
    )
    r.raise_for_status()
    assert r.headers["content-type"].startswith("image/"), r.text
    return np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--folder", type=Path, required=True, help="clean photographs")
    p.add_argument("--task", choices=["super-resolve", "denoise"], required=True)
    p.add_argument("--url", default="http://127.0.0.1:8000", help="service (default: http://127.0.0.1:8000)")
    p.add_argument("--api-key", help="API key, if the service needs one (default: none)")
    p.add_argument("--scale", type=int, default=4, help="super-resolve: 2 or 4 (default: 4)")
    p.add_argument("--model", help="model id or variant (default: the service's default)")
    p.add_argument("--sigma", type=float, default=25.0, help="denoise: AWGN sigma, 0-255 scale (default: 25)")
    p.add_argument("--blind", action="store_true", help="denoise: do not tell the service the sigma (default: tell)")
    p.add_argument("--seed", type=int, default=0, help="denoise: noise seed base (default: 0)")
    args = p.parse_args()

    headers = {"X-API-Key": args.api_key} if args.api_key else {}
    fields = {"model": args.model} if args.model else {}
    paths = list_images([args.folder])
    scores: dict[str, list[tuple[float, float]]] = {}
    with httpx.Client(base_url=args.url, timeout=600, headers=headers) as client:
        if args.task == "super-resolve":
            fields["scale"] = str(args.scale)
            pairs = ev.load_sets(args.folder.parent, [str(args.folder)], args.scale)[str(args.folder)]
            methods = {"bicubic": ev.bicubic(args.scale), "lanczos": ev.lanczos(args.scale)}
            for pair in pairs:
                outputs = {"service": call(client, args.task, pair.lr, fields)} | {
                    m: f(pair.lr) for m, f in methods.items()
                }
                for name, out in outputs.items():
                    scores.setdefault(name, []).append(ev.score_pair(out, pair, args.scale))
            protocol = ev.sr_protocol(args.scale)
        else:
            if not args.blind:
                fields["sigma"] = str(args.sigma)
            baselines = {"nlm": ev.nlm(args.sigma), "bm3d": ev.bm3d_rgb(args.sigma)}
            for i, path in enumerate(paths):
                clean = load_rgb(path)
                noisy = ev.add_noise(clean, args.sigma, args.seed + i)
                noisy8 = np.round(np.clip(noisy, 0, 1) * 255).astype(np.uint8)
                outputs = {"service": call(client, args.task, noisy8, fields), "noisy": noisy8}
                outputs |= {m: f(noisy) for m, f in baselines.items()}
                for name, out in outputs.items():
                    scores.setdefault(name, []).append((psnr(out, clean), ssim(out, clean)))
            protocol = ev.denoise_protocol([args.sigma], args.seed) | {"service_input": "8-bit PNG"}
    print(f"{len(paths)} images from {args.folder}, {args.task} via {args.url}; protocol: {protocol}")
    for name, values in scores.items():
        print(f"  {name:10s} PSNR {np.mean([v[0] for v in values]):7.3f}  SSIM {np.mean([v[1] for v in values]):.4f}")


if __name__ == "__main__":
    main()
