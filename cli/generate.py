"""``imgenhance generate``: new images from a generator, written to one file.

    imgenhance generate --model gen-digits -n 16 --seed 7 -o digits.png

The file's extension picks what is written: ``.png``/``.jpg``/``.webp`` a grid of the
``n`` images, ``.zip`` one PNG per image; ``--to-seed`` makes an animated WebP walking
from ``--seed`` to it. The same seed, model and truncation give the same pixels,
locally or on a service.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Literal

from rich.console import Console

from cli.backends import Backend, Failed, Generate, LocalBackend, ServerBackend
from cli.enhance import bounded
from imgenhance.client import API_KEY_ENV
from imgenhance.params import MAX_IMAGES, MAX_SEED, OutputFormat

BY_SUFFIX: dict[str, OutputFormat] = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp"}


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "generate",
        help="new images from a generator (locally, or on a service with --server)",
        description=(__doc__ or "").replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-o", "--output", required=True, type=Path, help=".png/.jpg/.webp (a grid), .zip, or .webp")
    p.add_argument("--model", help="a generate model id (default: the default generator)")
    p.add_argument("-n", type=bounded(int, 1, MAX_IMAGES), default=16, help="images, 1-64 (default: 16)")
    p.add_argument("--seed", type=bounded(int, 0, MAX_SEED), default=0, help="default: 0")
    p.add_argument("--class", dest="label", help="a class name or index (default: image i gets class i mod C)")
    p.add_argument(
        "--truncation", type=bounded(float, 0, 1, low_open=True), default=1.0, help="psi in (0, 1] (default: 1)"
    )
    p.add_argument("--to-seed", type=bounded(int, 0, MAX_SEED), help="an animated WebP walking from --seed to this")
    p.add_argument("--steps", type=bounded(int, 2, 120), default=24, help="frames with --to-seed (default: 24)")
    p.add_argument("--quality", type=bounded(int, 1, 100), help="jpeg/webp quality (default: jpeg 95, lossless webp)")
    p.add_argument("--overwrite", action="store_true", help="replace the output if it exists")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--server", metavar="URL", help=f"run on a service (key from ${API_KEY_ENV})")
    where.add_argument("--local", action="store_true", help="run in this process (the default)")
    p.set_defaults(func=cmd_generate, default_log_level="warning")


def request_from(args: argparse.Namespace) -> Generate:
    suffix = args.output.suffix.lower()
    output: Literal["grid", "zip"] = "zip" if suffix == ".zip" else "grid"
    if output == "grid" and suffix not in BY_SUFFIX:
        raise ValueError(f"{args.output}: name the output .png, .jpg, .webp or .zip")
    fmt = BY_SUFFIX.get(suffix)
    if args.to_seed is not None and fmt != "webp":
        raise ValueError("--to-seed makes an animated WebP: name the output .webp")
    if args.quality is not None and fmt not in ("jpeg", "webp"):
        raise ValueError("--quality is for .jpg and .webp outputs")
    label = int(args.label) if args.label is not None and args.label.isdigit() else args.label
    return Generate(
        model=args.model,
        n=args.n,
        seed=args.seed,
        label=label,
        truncation=args.truncation,
        to_seed=args.to_seed,
        steps=args.steps,
        output=output,
        output_format=fmt,
        quality=args.quality,
    )


def cmd_generate(args: argparse.Namespace) -> int:
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        request = request_from(args)
    except ValueError as exc:
        err.print(f"imgenhance generate: {exc}", markup=False)
        return 2
    if args.output.exists() and not args.overwrite:
        err.print(f"imgenhance generate: {args.output} exists (--overwrite replaces it)", markup=False)
        return 2
    backend: Backend = (
        ServerBackend(args.server, os.environ.get(API_KEY_ENV) or None) if args.server else LocalBackend()
    )
    try:
        out = backend.generate(request)
    except Failed as exc:
        err.print(f"imgenhance generate: failed: {exc}", markup=False)
        return 1
    finally:
        backend.close()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(out.data)
    err.print(f"{args.output}: {request.n} images from {out.model}, seed {request.seed} ({len(out.data):,} bytes)")
    return 0
