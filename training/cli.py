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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from training.measure import EvalOptions

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_ROOT = Path(os.environ.get("IMGENHANCE_DATA_ROOT", REPO.parent / "shared" / "datasets"))
DEFAULT_MODELS_DIR = REPO / "models"


def _device(name: str) -> str:
    import torch

    if name != "auto":
        return name
    return "cuda" if torch.cuda.is_available() else "cpu"


def _command(args: argparse.Namespace) -> str:
    """The command line that ran, as the card and checkpoint record it."""
    return "python -m training " + shlex.join(args.argv)


def _resume_from(resume: str | None, out: Path) -> Path | None:
    """``--resume auto``: the run folder's last.pt when there is one (so a command can be
    re-run after an interruption, e.g. a GPU window that ended), else a fresh start."""
    if resume == "auto":
        return out / "last.pt" if (out / "last.pt").exists() else None
    return Path(resume) if resume else None


def _run_training(args: argparse.Namespace, program: str) -> None:
    """Load the program's config, then train into ``--out`` (default runs/<name>)."""
    from training.config import CONFIG_OF_COMMAND
    from training.train import train
    from training.train_gan import train_gan
    from training.train_style import train_style

    loop = {"train": train, "train-style": train_style, "train-gan": train_gan}[program]
    cfg = CONFIG_OF_COMMAND[program].from_toml(args.config, args.set)
    out = args.out or Path("runs") / cfg.name
    resume = _resume_from(args.resume, out)
    best = loop(cfg, args.data_root, out, _device(args.device), resume, _command(args), not args.quiet)
    print(f"best checkpoint: {best}")


def cmd_ablate(args: argparse.Namespace) -> None:
    from training.ablation import ablate

    device = _device(args.device)
    ablate(args.config, args.vary, args.set, args.data_root, device, args.generated_images, args.out, args.jobs)


def _eval_options(args: argparse.Namespace) -> EvalOptions:
    from training.measure import EvalOptions

    return EvalOptions(
        args.data_root,
        args.sets,
        args.sigmas,
        args.grid,
        _command(args),
        args.gatys_iterations,
        args.gatys_sets,
        args.gatys_images,
        args.generated_images,
    )


def cmd_export(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from training.checkpoint import Checkpoint
    from training.publish import named_styles, publish

    ckpt = Checkpoint.load(args.checkpoint)
    options = _eval_options(args)
    if ckpt.config.get("method") == "johnson":  # one model per painting, named style-<name>
        for one, painting in named_styles(ckpt, args.style):
            grid = args.grid.with_name(f"{args.grid.stem}-{painting.name}{args.grid.suffix}") if args.grid else None
            model_id = f"style-{painting.name}"
            publish(
                one,
                model_id,
                args.models_dir,
                args.variant or "named",
                False,
                replace(options, grid=grid),
                painting,
                fp16_weights=args.fp16_weights,
            )
        return
    if not args.id:
        raise SystemExit("export needs --id (the model id) for this checkpoint")
    variant = args.variant or ("arbitrary" if ckpt.config.get("method") == "adain" else "general")
    publish(ckpt, args.id, args.models_dir, variant, args.default, options, fp16_weights=args.fp16_weights)


def cmd_speed(args: argparse.Namespace) -> None:
    from training.speed import measure_speed

    measure_speed(args.model, args.side, args.repeats, args.torch, args.write_card, _command(args))


def cmd_eval(args: argparse.Namespace) -> None:
    from imgenhance.cards import file_sha256, read_card, write_card
    from training.measure import keep_real_world_lpips, measure

    if not args.model:
        _eval_checkpoint(args)
        return
    quality = measure(args.model, _eval_options(args))
    if args.write_card:
        card = read_card(args.model)
        sha256 = file_sha256(args.model.parent / card.file)
        update = {"quality": keep_real_world_lpips(quality, card, sha256), "sha256": sha256}
        write_card(card.model_copy(update=update), args.model)
        print(f"updated {args.model}")
    if args.json:
        args.json.write_text(quality.model_dump_json(indent=1))


def cmd_eval_realworld(args: argparse.Namespace) -> None:
    import time

    from training.realworld import measure_realworld

    start = time.perf_counter()
    cards = [Path(m) if m.endswith(".json") else args.models_dir / f"{m}.json" for m in args.models]
    report = measure_realworld(
        cards, args.data_root, args.sets, _command(args), args.write_card, args.grid, args.grid_image, args.grid_size
    )
    if args.json:
        figures = {
            f"{setting}/{set_name}/{method}": report.mean(setting, set_name, method).model_dump()
            for setting, set_name, method in report.scores
        }
        args.json.write_text(json.dumps(figures, indent=1))
    print(f"eval-realworld took {time.perf_counter() - start:.0f} s")


def _eval_checkpoint(args: argparse.Namespace) -> None:
    import torch

    from training.checkpoint import Checkpoint
    from training.evaluate import bicubic, evaluate_sr, format_table, lanczos, load_sets
    from training.train import torch_upscaler

    ckpt = Checkpoint.load(args.checkpoint)
    if ckpt.task != "super-resolve":
        raise SystemExit("--checkpoint evaluates super-resolution runs; export other models and use --model")
    scale = int(ckpt.config["scale"])
    device = torch.device(_device(args.device))
    model = ckpt.generator().to(device)
    methods = {
        "model": torch_upscaler(model, device, ckpt.arch.size_multiple),
        "bicubic": bicubic(scale),
        "lanczos": lanczos(scale),
    }
    report = evaluate_sr(methods, load_sets(args.data_root, args.sets or ckpt.config["eval_sets"], scale), scale)
    print(format_table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


def cmd_import(args: argparse.Namespace) -> None:
    from training import importer
    from training.publish import publish

    ckpt = importer.to_checkpoint(args.weights, args.task, _command(args))
    print(f"{args.weights.name}: {ckpt.arch.name} {ckpt.arch.args}")
    options = _eval_options(args) if args.data_root.exists() else None
    publish(ckpt, args.id, args.models_dir, args.variant, args.default, options)


def cmd_stylize_optimize(args: argparse.Namespace) -> None:
    import numpy as np
    from PIL import Image

    from training.data import load_rgb
    from training.gatys import stylize_optimize
    from training.style_data import fit_longer_side, to_batch
    from training.style_losses import GramStyleLoss
    from training.vgg import VGG16Features

    content = fit_longer_side(load_rgb(args.content), args.size)
    style = to_batch([fit_longer_side(load_rgb(args.style), args.style_size)])
    loss = GramStyleLoss(VGG16Features.pretrained("relu4_3"), style)
    snaps = stylize_optimize(
        content, loss, args.content_weight, args.style_weight, args.tv_weight, args.iterations, tuple(args.snapshots)
    )
    for snap in snaps:
        print(
            f"iteration {snap.iterations:5d}  {snap.seconds:8.1f} s  content {snap.content:.4f}  style {snap.style:.4e}"
        )
    Image.fromarray(np.asarray(snaps[-1].image)).save(args.out)
    print(f"wrote {args.out}")


def cmd_import_ncnn(args: argparse.Namespace) -> None:
    import tempfile

    from imgenhance.cards import read_card, write_card
    from training.measure import measure
    from training.ncnn import SHIPPED
    from training.ncnn_import import import_ncnn

    args.models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="imgenhance-ncnn-") as tmp:
        card = import_ncnn(SHIPPED[args.model], args.models_dir, args.variant, args.default, _command(args), Path(tmp))
    card_path = args.models_dir / f"{card.id}.json"
    if args.data_root.exists():
        write_card(
            read_card(card_path).model_copy(update={"quality": measure(card_path, _eval_options(args))}), card_path
        )
    print(f"wrote {args.models_dir / card.file} and {card_path}")


def cmd_pack_data(args: argparse.Namespace) -> None:
    from training.window import pack_data

    for packed in pack_data(
        args.data_root,
        args.sets,
        args.val_sets,
        args.photo_sets,
        args.out,
        args.max_mb,
        args.side,
        args.quality,
        copy_sets=args.copy_sets,
    ):
        print(f"{packed.folder:12s} {packed.images:5d} images {packed.megabytes:7.1f} MB")


def cmd_snapshot(args: argparse.Namespace) -> None:
    from training.window import snapshot

    for path in snapshot(args.run, args.out, args.part_mb):
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


def cmd_check_plan(args: argparse.Namespace) -> None:
    from training.window import read_plan

    for run in read_plan(args.plan):
        print(f"{run.name:16s} {run.program:12s} {run.config}")


def cmd_join_parts(args: argparse.Namespace) -> None:
    from training.window import join_parts

    ckpt = join_parts(args.parts, args.out)
    print(f"wrote {args.out}: {ckpt.config.get('name')} at step {ckpt.step}, best {ckpt.best}")


def cmd_weights(args: argparse.Namespace) -> None:
    from training.pretrained import INCEPTION_FID, VGG16_LPIPS, fetch_inception, fetch_vgg16

    if args.action == "pack":
        from training.pretrained import pack_vgg16

        if args.out is None:
            raise SystemExit("weights pack: --out DIR is required")
        packed = pack_vgg16(args.out)
        print(f"wrote {packed} ({packed.stat().st_size / 1e6:.1f} MB, float16); use IMGENHANCE_CACHE={args.out} there")
        return
    print(f"{VGG16_LPIPS.requirement}: {fetch_vgg16(force=args.force)}")
    print(f"{INCEPTION_FID.requirement}: {fetch_inception(force=args.force)}")


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

    def add_train_options(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", type=Path, required=True, help="TOML file (see training/configs/)")
        sp.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a config key, TOML syntax for the value (repeatable; default: none)",
        )
        sp.add_argument("--out", type=Path, help="run folder (default: runs/<config name>)")
        sp.add_argument("--device", default="auto", help="cpu, cuda or auto (default: auto)")
        sp.add_argument(
            "--resume", help="last.pt to resume from, or auto: the run folder's last.pt if any (default: start fresh)"
        )
        sp.add_argument("--quiet", action="store_true", help="no progress bar (default: show it)")

    t = sub.add_parser("train", help="train a super-resolution or denoising model from a TOML config")
    add_train_options(t)
    t.set_defaults(func=lambda a: _run_training(a, "train"))

    ts = sub.add_parser("train-style", help="train a style-transfer network (one painting, or any style)")
    add_train_options(ts)
    ts.set_defaults(func=lambda a: _run_training(a, "train-style"))

    tg = sub.add_parser("train-gan", help="train an image generator (GAN) from a TOML config")
    add_train_options(tg)
    tg.set_defaults(func=lambda a: _run_training(a, "train-gan"))

    ab = sub.add_parser("ablate", help="train and measure GAN variants that differ in one setting; print a table")
    ab.add_argument("--config", type=Path, required=True, help="the base TOML (training/configs/gan/)")
    ab.add_argument(
        "--vary",
        required=True,
        metavar="KEY=V1|V2|...",
        help='one setting and its values, TOML syntax each: loss="bce"|"lsgan" or diffaugment=[]|["color"]',
    )
    ab.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every variant")
    ab.add_argument("--device", default="auto", help="cpu, cuda or auto (default: auto)")
    ab.add_argument("--generated-images", type=int, help="images for FID/KID (default: the config's eval_images)")
    ab.add_argument("--out", type=Path, default=Path("runs"), help="where the runs and the table go (default: runs)")
    ab.add_argument(
        "--jobs", type=int, default=1, help="variants trained at once, each in its own process (default: 1)"
    )
    ab.set_defaults(func=cmd_ablate)

    def add_eval_options(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--sets", nargs="*", help="set names under --data-root, or folders (default: the config's eval_sets)"
        )
        sp.add_argument(
            "--sigmas", nargs="*", type=float, default=[25.0], help="denoise: noise levels, 0-255 scale (default: 25)"
        )
        sp.add_argument(
            "--grid",
            type=Path,
            help="real-world SR, style: a comparison grid; denoise: the strength curve; written here (default: none)",
        )
        sp.add_argument(
            "--gatys-iterations", type=int, default=100, help="style: L-BFGS iterations of the reference (default: 100)"
        )
        sp.add_argument(
            "--gatys-sets", nargs="*", default=["Set5"], help="style: sets the reference runs on (default: Set5)"
        )
        sp.add_argument(
            "--gatys-images", type=int, default=0, help="style: only the first N images of those sets (default: all)"
        )
        sp.add_argument(
            "--generated-images", type=int, help="generate: images for FID/KID (default: the config's eval_images)"
        )

    e = sub.add_parser("export", help="export a checkpoint to ONNX, check parity, evaluate, write its card")
    e.add_argument("--checkpoint", type=Path, required=True, help="best.pt from a training run")
    e.add_argument(
        "--id", help="model id; the files are models/<id>.onnx and <id>.json (named styles: style-<painting>)"
    )
    e.add_argument(
        "--style", nargs="*", help="named styles: the paintings to export (default: every painting of the checkpoint)"
    )
    e.add_argument(
        "--variant",
        help="general, quality, real-world, anime, arbitrary or named (default: named for a named-style run, "
        "arbitrary for AdaIN, else general)",
    )
    e.add_argument("--default", action="store_true", help="serve it when a request names no model (default: no)")
    e.add_argument(
        "--fp16-weights",
        action="store_true",
        help="store the large weights as float16, computed in float32: half the file (default: float32)",
    )
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

    sp = sub.add_parser("speed", help="ms per output megapixel of a model on this machine's engines (its card)")
    sp.add_argument("--model", type=Path, required=True, help="a card in models/")
    sp.add_argument("--side", type=int, default=256, help="input side, one square image per run (default: 256)")
    sp.add_argument("--repeats", type=int, default=5, help="timed runs; the median is kept (default: 5)")
    sp.add_argument("--torch", action="store_true", help="also PyTorch eager on a CUDA GPU (default: no)")
    sp.add_argument("--write-card", action="store_true", help="store the figures in the card (default: print only)")
    sp.set_defaults(func=cmd_speed)

    r = sub.add_parser(
        "eval-realworld",
        help="LPIPS and PSNR of SR models on four kinds of real-world input, beside bicubic (cards, grids)",
    )
    r.add_argument("--models", nargs="+", required=True, help="model ids in --models-dir, or card paths (.json)")
    r.add_argument("--sets", nargs="*", default=["Set5", "Set14"], help="set names or folders (default: Set5 Set14)")
    r.add_argument("--write-card", action="store_true", help="store the figures in each card (default: print only)")
    r.add_argument(
        "--grid", type=Path, help="write one comparison picture per setting, <stem>-<setting><suffix> (default: none)"
    )
    r.add_argument("--grid-image", help="the image the grids crop (default: the first image of the sets)")
    r.add_argument("--grid-size", type=int, default=192, help="side of the grid crops, HR pixels (default: 192)")
    r.add_argument("--json", type=Path, help="also write the figures of every method here (default: no)")
    r.add_argument("--models-dir", type=Path, default=DEFAULT_MODELS_DIR, help=f"(default: {DEFAULT_MODELS_DIR})")
    r.set_defaults(func=cmd_eval_realworld)

    i = sub.add_parser("import", help="turn a community checkpoint (.pth, .safetensors) into an ONNX model and card")
    i.add_argument("--weights", type=Path, required=True, help="ESRGAN / Real-ESRGAN RRDBNet or Compact weights")
    i.add_argument("--id", required=True, help="model id for models/<id>.onnx and <id>.json")
    i.add_argument("--task", default="super-resolve", help="super-resolve (default: super-resolve)")
    i.add_argument("--variant", default="real-world", help="general or real-world (default: real-world)")
    i.add_argument("--default", action="store_true", help="serve it when a request names no model (default: no)")
    i.add_argument("--models-dir", type=Path, default=DEFAULT_MODELS_DIR, help=f"(default: {DEFAULT_MODELS_DIR})")
    add_eval_options(i)
    i.set_defaults(func=cmd_import)
    n = sub.add_parser(
        "import-ncnn", help="Real-ESRGAN's ncnn models (from their pip wheel) to ONNX, proven against ncnn and our arch"
    )
    n.add_argument("--model", required=True, help="sr-realesrgan-x4plus or sr-realesr-animevideov3-x4")
    n.add_argument("--variant", default="real-world", help="(default: real-world)")
    n.add_argument("--default", action="store_true", help="the default model of its variant (default: no)")
    n.add_argument("--models-dir", type=Path, default=DEFAULT_MODELS_DIR, help=f"(default: {DEFAULT_MODELS_DIR})")
    add_eval_options(n)
    n.set_defaults(func=cmd_import_ncnn)

    g = sub.add_parser(
        "stylize-optimize", help="Gatys et al.: stylise one image by optimising its pixels (the slow reference)"
    )
    g.add_argument("--content", type=Path, required=True, help="the photograph")
    g.add_argument("--style", type=Path, required=True, help="the painting")
    g.add_argument("--out", type=Path, required=True, help="where to write the result (PNG)")
    g.add_argument("--size", type=int, default=512, help="the photograph's longer side (default: 512)")
    g.add_argument("--style-size", type=int, default=512, help="the painting's longer side (default: 512)")
    g.add_argument("--iterations", type=int, default=300, help="L-BFGS iterations (default: 300)")
    g.add_argument("--snapshots", type=int, nargs="*", default=[], help="also print losses at these (default: none)")
    from training.style_losses import GRAM_CONTENT_WEIGHT, GRAM_STYLE_WEIGHT

    g.add_argument(
        "--content-weight",
        type=float,
        default=GRAM_CONTENT_WEIGHT,
        help=f"(default: {GRAM_CONTENT_WEIGHT:g}, the named styles' weight)",
    )
    g.add_argument("--style-weight", type=float, default=GRAM_STYLE_WEIGHT, help=f"(default: {GRAM_STYLE_WEIGHT:g})")
    g.add_argument("--tv-weight", type=float, default=0.0, help="(default: 0)")
    g.set_defaults(func=cmd_stylize_optimize)

    pk = sub.add_parser("pack-data", help="short GPU windows: the sets as JPEG within an upload budget")
    pk.add_argument("--sets", nargs="*", default=["T91", "BSD200"], help="re-encoded whole (default: T91 BSD200)")
    pk.add_argument("--photo-sets", nargs="*", default=["photos"], help="downscaled, as many as fit (default: photos)")
    pk.add_argument("--val-sets", nargs="*", default=["Set5"], help="copied as they are (default: Set5)")
    pk.add_argument(
        "--copy-sets",
        nargs="*",
        default=[],
        help="folders copied whole, every file (labels, licences): e.g. styles faces_london mnist (default: none)",
    )
    pk.add_argument("--max-mb", type=float, required=True, help="the packed folder's size limit, MB")
    pk.add_argument("--side", type=int, default=512, help="photographs' longer side at most (default: 512)")
    pk.add_argument("--quality", type=int, default=95, help="JPEG quality, 4:4:4 (default: 95)")
    pk.add_argument("--out", type=Path, required=True, help="a folder to use as --data-root there")
    pk.set_defaults(func=cmd_pack_data)

    sn = sub.add_parser("snapshot", help="short GPU windows: a run's best weights (fp16) in parts, and its curves")
    sn.add_argument("--run", type=Path, required=True, help="the run folder")
    sn.add_argument("--out", type=Path, required=True, help="where the parts go")
    sn.add_argument("--part-mb", type=float, default=15.0, help="largest part, MiB (default: 15)")
    sn.set_defaults(func=cmd_snapshot)

    jp = sub.add_parser("join-parts", help="short GPU windows: a snapshot's parts back into a checkpoint")
    jp.add_argument("--parts", type=Path, required=True, help="the folder holding best16.partN")
    jp.add_argument("--out", type=Path, required=True, help="the checkpoint to write (e.g. runs/<name>/best.pt)")
    jp.set_defaults(func=cmd_join_parts)

    cp = sub.add_parser("check-plan", help="short GPU windows: parse a plan's runs and load their configs")
    cp.add_argument("plan", type=Path, help="e.g. training/configs/window_plan.txt")
    cp.set_defaults(func=cmd_check_plan)

    w = sub.add_parser("weights", help="pretrained weights that pip can fetch (VGG16 + LPIPS heads, FID Inception)")
    w.add_argument(
        "action",
        choices=["fetch", "pack"],
        help="fetch: download with pip, check the hash, convert, verify, cache; "
        "pack: the VGG16 file as float16 into --out, for a GPU window's upload",
    )
    w.add_argument("--force", action="store_true", help="fetch again even if a cached copy exists (default: no)")
    w.add_argument("--out", type=Path, help="pack: the folder to write into (default: none)")
    w.set_defaults(func=cmd_weights)
    return p


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    args.argv = argv
    args.func(args)


if __name__ == "__main__":
    main()
