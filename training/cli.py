"""``python -m training`` (also ``imgenhance-train``): train, eval and export.

python -m training train  --config training/configs/sr_compact_x4.toml
python -m training export --checkpoint runs/sr-compact-x4/best.pt --id sr-compact-x4 --default
python -m training eval   --model models/sr-compact-x4.json --write-card
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


def cmd_train(args: argparse.Namespace) -> None:
    from training.config import TrainConfig
    from training.train import train

    cfg = TrainConfig.from_toml(args.config, args.set)
    out = args.out or Path("runs") / cfg.name
    command = "python -m training " + shlex.join(sys.argv[1:])
    best = train(cfg, args.data_root, out, _device(args.device), args.resume, command, progress=not args.quiet)
    print(f"best checkpoint: {best}")


def _evaluate_onnx(onnx_path: Path, cfg: dict[str, Any], data_root: Path, sets: list[str]) -> dict[str, Any]:
    from training.evaluate import bicubic, evaluate_sr, format_table, lanczos, load_sets
    from training.export import onnx_upscaler, session

    scale = cfg["scale"]
    methods = {"model": onnx_upscaler(session(onnx_path)), "bicubic": bicubic(scale), "lanczos": lanczos(scale)}
    report = evaluate_sr(methods, load_sets(data_root, sets, scale), scale)
    print(format_table(report))
    return report


def _quality(report: dict[str, Any], parity: float | None) -> dict[str, Any]:
    """The card's quality block: protocol, per-set means, gain over bicubic."""
    sets = {
        name: {method: {"psnr": m["psnr"], "ssim": m["ssim"]} for method, m in per.items()}
        for name, per in report["results"].items()
    }
    gain = {name: round(per["model"]["psnr"] - per["bicubic"]["psnr"], 3) for name, per in sets.items()}
    quality: dict[str, Any] = {"protocol": report["protocol"], "results": sets, "gain_over_bicubic_db": gain}
    if parity is not None:
        quality["onnx_parity_max_abs_diff"] = parity
    quality["measured_by"] = "python -m training " + shlex.join(sys.argv[1:])
    return quality


def cmd_export(args: argparse.Namespace) -> None:
    from training import archs, checkpoint
    from training.export import PARITY_TOLERANCE, build_card, export_onnx, parity, write

    ckpt = checkpoint.load(args.checkpoint)
    model = checkpoint.build_generator(ckpt)
    onnx_path = args.models_dir / f"{args.id}.onnx"
    passes = export_onnx(model, onnx_path)
    diff = parity(model, onnx_path, archs.size_multiple(ckpt["arch"]["name"], ckpt["arch"]["args"]))
    print(f"ONNX parity vs PyTorch (sizes other than the export size): max abs diff {diff:.2e}")
    assert diff <= PARITY_TOLERANCE, f"ONNX output differs from PyTorch by {diff:.2e} > {PARITY_TOLERANCE}"
    report = _evaluate_onnx(onnx_path, ckpt["config"], args.data_root, args.sets or ckpt["config"]["eval_sets"])
    card = build_card(ckpt, onnx_path, args.id, _quality(report, diff), args.variant, args.default, passes)
    print(f"wrote {onnx_path} and {write(card, args.models_dir)}")


def cmd_eval(args: argparse.Namespace) -> None:
    from imgenhance.cards import read_card, write_card
    from training import checkpoint
    from training.evaluate import bicubic, evaluate_sr, format_table, lanczos, load_sets
    from training.export import sha256
    from training.train import torch_upscaler

    if args.model:
        card = read_card(args.model)
        onnx_path = args.model.parent / card.file
        report = _evaluate_onnx(
            onnx_path, card.training.config, args.data_root, args.sets or card.training.config["eval_sets"]
        )
        if args.write_card:
            previous = card.quality.get("onnx_parity_max_abs_diff")
            updated = card.model_copy(update={"quality": _quality(report, previous), "sha256": sha256(onnx_path)})
            write_card(updated, args.model)
            print(f"updated {args.model}")
    else:
        import torch

        ckpt = checkpoint.load(args.checkpoint)
        scale = ckpt["config"]["scale"]
        model = checkpoint.build_generator(ckpt).to(_device(args.device))
        methods = {
            "model": torch_upscaler(model, torch.device(_device(args.device))),
            "bicubic": bicubic(scale),
            "lanczos": lanczos(scale),
        }
        report = evaluate_sr(methods, load_sets(args.data_root, args.sets or ckpt["config"]["eval_sets"], scale), scale)
        print(format_table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


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

    e = sub.add_parser("export", help="export a checkpoint to ONNX, check parity, evaluate, write its card")
    e.add_argument("--checkpoint", type=Path, required=True, help="best.pt from a training run")
    e.add_argument("--id", required=True, help="model id; the files are models/<id>.onnx and <id>.json")
    e.add_argument("--variant", default="general", help="general or real-world (default: general)")
    e.add_argument("--default", action="store_true", help="serve it when a request names no model (default: no)")
    e.add_argument("--models-dir", type=Path, default=DEFAULT_MODELS_DIR, help=f"(default: {DEFAULT_MODELS_DIR})")
    e.add_argument("--sets", nargs="*", help="evaluation sets (default: the config's eval_sets)")
    e.set_defaults(func=cmd_export)

    v = sub.add_parser("eval", help="PSNR/SSIM of a model beside bicubic and Lanczos, protocol stated")
    src = v.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", type=Path, help="a card in models/ (evaluates its ONNX file)")
    src.add_argument("--checkpoint", type=Path, help="a training checkpoint (evaluates in PyTorch)")
    v.add_argument("--sets", nargs="*", help="evaluation sets (default: the model's eval_sets)")
    v.add_argument("--write-card", action="store_true", help="store the figures in the card (default: print only)")
    v.add_argument("--json", type=Path, help="also write the full report, per image, here (default: no)")
    v.add_argument("--device", default="auto", help="for --checkpoint: cpu, cuda or auto (default: auto)")
    v.set_defaults(func=cmd_eval)
    return p


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
