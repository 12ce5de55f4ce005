"""``python -m training`` (also ``imgenhance-train``): train, eval, export and import.

python -m training train  --config training/configs/sr_compact_x4.toml
python -m training export --checkpoint runs/sr-compact-x4/best.pt --id sr-compact-x4 --default
python -m training eval   --model models/sr-compact-x4.json --write-card
python -m training import --weights RealESRGAN_x4plus.pth --id esrgan-x4 --variant real-world
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_ROOT = Path(os.environ.get("IMGENHANCE_DATA_ROOT", REPO.parent / "shared" / "datasets"))
DEFAULT_MODELS_DIR = REPO / "models"


def _device(name: str) -> str:
    import torch

    if name != "auto":
        return name
    return "cuda" if torch.cuda.is_available() else "cpu"


def _command() -> str:
    return "python -m training " + shlex.join(sys.argv[1:])


def cmd_train(args: argparse.Namespace) -> None:
    from training.config import TrainConfig
    from training.train import train

    cfg = TrainConfig.from_toml(args.config, args.set)
    out = args.out or Path("runs") / cfg.name
    best = train(cfg, args.data_root, out, _device(args.device), args.resume, _command(), progress=not args.quiet)
    print(f"best checkpoint: {best}")


# -- evaluation of a card (through the worker pipeline) ----------------------------


def evaluate_card(
    card_path: Path, data_root: Path, sets: list[str] | None, sigmas: list[float], grid: Path | None = None
) -> dict[str, Any]:
    """Measure a model in models/ beside its baselines; returns the card's quality block."""
    from imgenhance.cards import read_card
    from training import evaluate as ev

    card = read_card(card_path)
    sets = sets or card.training.config.get("eval_sets", ["Set5", "Set14"])
    if card.task == "denoise":
        at = ev.pipeline_denoiser(card_path)

        def methods(sigma: float) -> dict[str, ev.Denoiser]:
            return {"model": at(sigma), "model_blind": at(None), "nlm": ev.nlm(sigma), "bm3d": ev.bm3d_rgb(sigma)}

        report = ev.evaluate_denoise(methods, ev.load_clean_sets(data_root, sets), sigmas)
        print(ev.format_denoise_table(report))
        return _denoise_quality(report)

    scale = card.scale
    methods_sr = {"model": ev.pipeline_upscaler(card_path), "bicubic": ev.bicubic(scale), "lanczos": ev.lanczos(scale)}
    pairs = ev.load_sets(data_root, sets, scale)
    report = ev.evaluate_sr(methods_sr, pairs, scale)
    print(ev.format_table(report))
    quality = _sr_quality(report)
    if card.variant == "real-world":
        degraded = ev.degrade_sets(pairs, scale, card.training.config.get("degradation_args"))
        real = ev.evaluate_sr(methods_sr, degraded, scale)
        print("on Real-ESRGAN-degraded inputs (blur, noise, JPEG; fixed seeds):")
        print(ev.format_table(real))
        quality["real_world_degradation"] = _sr_quality(real)
        if grid is not None:
            ev.save_comparison(methods_sr, degraded, scale, grid)
            print(f"wrote {grid}")
    return quality


def _sr_quality(report: dict[str, Any]) -> dict[str, Any]:
    sets = {
        name: {m: {"psnr": v["psnr"], "ssim": v["ssim"]} for m, v in per.items()}
        for name, per in report["results"].items()
    }
    gain = {name: round(per["model"]["psnr"] - per["bicubic"]["psnr"], 3) for name, per in sets.items()}
    return {"protocol": report["protocol"], "results": sets, "gain_over_bicubic_db": gain, "measured_by": _command()}


def _denoise_quality(report: dict[str, Any]) -> dict[str, Any]:
    results = {
        name: {sigma: {m: {"psnr": v["psnr"], "ssim": v["ssim"]} for m, v in per.items()} for sigma, per in by.items()}
        for name, by in report["results"].items()
    }
    gains = {
        name: {
            sigma: {
                "vs_bm3d_db": round(per["model"]["psnr"] - per["bm3d"]["psnr"], 3),
                "vs_nlm_db": round(per["model"]["psnr"] - per["nlm"]["psnr"], 3),
            }
            for sigma, per in by.items()
        }
        for name, by in results.items()
    }
    return {"protocol": report["protocol"], "results": results, "gains": gains, "measured_by": _command()}


def cmd_export(args: argparse.Namespace) -> None:
    from imgenhance.cards import write_card
    from training import archs, checkpoint
    from training.export import PARITY_TOLERANCE, build_card, export_onnx, parity

    ckpt = checkpoint.load(args.checkpoint)
    model = checkpoint.build_generator(ckpt)
    name, arch_args = ckpt["arch"]["name"], ckpt["arch"]["args"]
    in_ch = archs.input_channels(name, arch_args)
    onnx_path = args.models_dir / f"{args.id}.onnx"
    passes = export_onnx(model, onnx_path, in_ch)
    diff = parity(model, onnx_path, archs.size_multiple(name, arch_args), in_ch)
    print(f"ONNX parity vs PyTorch (sizes other than the export size): max abs diff {diff:.2e}")
    assert diff <= PARITY_TOLERANCE, f"ONNX output differs from PyTorch by {diff:.2e} > {PARITY_TOLERANCE}"
    card = build_card(ckpt, onnx_path, args.id, {}, args.variant, args.default, passes)
    card_path = args.models_dir / f"{args.id}.json"
    write_card(card, card_path)
    quality = evaluate_card(card_path, args.data_root, args.sets, args.sigmas, args.grid)
    write_card(card.model_copy(update={"quality": {**quality, "onnx_parity_max_abs_diff": diff}}), card_path)
    print(f"wrote {onnx_path} and {card_path}")


def cmd_eval(args: argparse.Namespace) -> None:
    from imgenhance.cards import file_sha256, read_card, write_card

    if args.model:
        quality = evaluate_card(args.model, args.data_root, args.sets, args.sigmas, args.grid)
        if args.write_card:
            card = read_card(args.model)
            parity = card.quality.get("onnx_parity_max_abs_diff")
            extra = {"onnx_parity_max_abs_diff": parity} if parity is not None else {}
            write_card(
                card.model_copy(
                    update={"quality": {**quality, **extra}, "sha256": file_sha256(args.model.parent / card.file)}
                ),
                args.model,
            )
            print(f"updated {args.model}")
    else:
        _eval_checkpoint(args)
    if args.json and args.model:
        args.json.write_text(json.dumps(read_card(args.model).quality if args.write_card else quality, indent=1))


def _eval_checkpoint(args: argparse.Namespace) -> None:
    import torch

    from training import archs, checkpoint
    from training.evaluate import bicubic, evaluate_sr, format_table, lanczos, load_sets
    from training.train import torch_upscaler

    ckpt = checkpoint.load(args.checkpoint)
    assert ckpt["config"]["task"] == "super-resolve", "evaluate denoisers after export: eval --model models/<id>.json"
    scale = ckpt["config"]["scale"]
    device = torch.device(_device(args.device))
    model = checkpoint.build_generator(ckpt).to(device)
    multiple = archs.size_multiple(ckpt["arch"]["name"], ckpt["arch"]["args"])
    methods = {"model": torch_upscaler(model, device, multiple), "bicubic": bicubic(scale), "lanczos": lanczos(scale)}
    report = evaluate_sr(methods, load_sets(args.data_root, args.sets or ckpt["config"]["eval_sets"], scale), scale)
    print(format_table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


def cmd_import(args: argparse.Namespace) -> None:
    from imgenhance.cards import write_card
    from training import importer
    from training.export import PARITY_TOLERANCE, build_card, export_onnx, parity

    ckpt = importer.to_checkpoint(args.weights, args.task, _command())
    model = importer.build(ckpt)
    onnx_path = args.models_dir / f"{args.id}.onnx"
    passes = export_onnx(model, onnx_path)
    diff = parity(model, onnx_path, ckpt["size_multiple"])
    assert diff <= PARITY_TOLERANCE, f"ONNX output differs from PyTorch by {diff:.2e} > {PARITY_TOLERANCE}"
    print(f"{args.weights.name}: {ckpt['arch']['name']} {ckpt['arch']['args']}, ONNX parity {diff:.2e}")
    card = build_card(ckpt, onnx_path, args.id, {}, args.variant, args.default, passes)
    card_path = args.models_dir / f"{args.id}.json"
    write_card(card, card_path)
    quality: dict[str, Any] = {"measured_by": "not measured: no evaluation data at --data-root"}
    if args.data_root.exists():
        quality = evaluate_card(card_path, args.data_root, args.sets, args.sigmas)
    write_card(card.model_copy(update={"quality": {**quality, "onnx_parity_max_abs_diff": diff}}), card_path)
    print(f"wrote {onnx_path} and {card_path}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--data-root",
        type=Path,
        default=DEFAULT_DATA_ROOT,
        help=f"folder holding the image sets (default: $IMGENHANCE_DATA_ROOT or {DEFAULT_DATA_ROOT})",
    )
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model from a TOML config")
    t.add_argument("--config", type=Path, required=True, help="TOML file (see training/configs/)")
    t.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, TOML syntax for the value (repeatable; default: none)",
    )
    t.add_argument("--out", type=Path, help="run folder (default: runs/<config name>)")
    t.add_argument("--device", default="auto", help="cpu, cuda or auto (default: auto)")
    t.add_argument("--resume", type=Path, help="last.pt to resume from (default: start fresh)")
    t.add_argument("--quiet", action="store_true", help="no progress bar (default: show it)")
    t.set_defaults(func=cmd_train)

    def add_eval_options(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--sets", nargs="*", help="set names under --data-root, or folders (default: the config's eval_sets)"
        )
        sp.add_argument(
            "--sigmas", nargs="*", type=float, default=[25.0], help="denoise: noise levels, 0-255 scale (default: 25)"
        )
        sp.add_argument("--grid", type=Path, help="real-world SR: write a comparison grid PNG here (default: none)")

    e = sub.add_parser("export", help="export a checkpoint to ONNX, check parity, evaluate, write its card")
    e.add_argument("--checkpoint", type=Path, required=True, help="best.pt from a training run")
    e.add_argument("--id", required=True, help="model id; the files are models/<id>.onnx and <id>.json")
    e.add_argument("--variant", default="general", help="general or real-world (default: general)")
    e.add_argument("--default", action="store_true", help="serve it when a request names no model (default: no)")
    e.add_argument("--models-dir", type=Path, default=DEFAULT_MODELS_DIR, help=f"(default: {DEFAULT_MODELS_DIR})")
    add_eval_options(e)
    e.set_defaults(func=cmd_export)

    v = sub.add_parser("eval", help="PSNR/SSIM of a model beside its baselines, protocol stated")
    src = v.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", type=Path, help="a card in models/ (runs its ONNX file through the worker pipeline)")
    src.add_argument("--checkpoint", type=Path, help="a super-resolve training checkpoint (runs in PyTorch)")
    v.add_argument("--write-card", action="store_true", help="store the figures in the card (default: print only)")
    v.add_argument("--json", type=Path, help="also write the figures here (default: no)")
    v.add_argument("--device", default="auto", help="for --checkpoint: cpu, cuda or auto (default: auto)")
    add_eval_options(v)
    v.set_defaults(func=cmd_eval)

    i = sub.add_parser("import", help="turn a community checkpoint (.pth, .safetensors) into an ONNX model and card")
    i.add_argument("--weights", type=Path, required=True, help="ESRGAN / Real-ESRGAN RRDBNet or Compact weights")
    i.add_argument("--id", required=True, help="model id for models/<id>.onnx and <id>.json")
    i.add_argument("--task", default="super-resolve", help="super-resolve (default: super-resolve)")
    i.add_argument("--variant", default="real-world", help="general or real-world (default: real-world)")
    i.add_argument("--default", action="store_true", help="serve it when a request names no model (default: no)")
    i.add_argument("--models-dir", type=Path, default=DEFAULT_MODELS_DIR, help=f"(default: {DEFAULT_MODELS_DIR})")
    add_eval_options(i)
    i.set_defaults(func=cmd_import)
    return p


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
