"""``imgenhance enhance``: files, folders and glob patterns through one task, in parallel.

    imgenhance enhance photo.jpg folder/ 'shots/*.png' -o out/ --outscale 3.5

Folders are walked recursively and their layout is kept under ``-o`` (a glob keeps the
layout below its first wildcard; a file lands at the top). An output that exists is
skipped unless ``--overwrite``, so a run that stopped can be run again. Each failure is
one line on stderr as it happens; a summary table ends the run, and the exit status is
1 if any file failed (2 for a usage error).
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path, PurePath

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from cli.backends import Backend, Enhance, EnhanceTask, Failed, LocalBackend, ServerBackend
from imgenhance.client import API_KEY_ENV
from imgenhance.params import (
    MAX_OUTSCALE,
    MAX_SIGMA,
    STYLE_MAX_SIDE,
    OutputFormat,
    denoise_level_conflict,
    quality_conflict,
    style_source_conflict,
)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
SUFFIX: dict[str, str] = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}


class UsageError(Exception):
    """Bad arguments found after parsing (missing inputs, colliding outputs): exit 2."""


@dataclass(frozen=True)
class Item:
    source: Path
    target: Path


@dataclass(frozen=True)
class Outcome:
    item: Item
    status: str  # done, skipped, failed
    seconds: float = 0.0
    reason: str = ""


def bounded(kind: Callable[[str], float], low: float, high: float, low_open: bool = False) -> Callable[[str], float]:
    """An argparse type: a number of ``kind`` within [low, high] (or (low, high])."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < low or value > high or (low_open and value == low):
            span = f"{'above ' if low_open else 'from '}{low:g} {'up ' if low_open else ''}to {high:g}"
            raise argparse.ArgumentTypeError(f"{text} is out of range: {span}")
        return value

    return parse


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "enhance",
        help="enhance files, folders and globs (locally, or on a service with --server)",
        description=(__doc__ or "").replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders (recursive) or glob patterns")
    p.add_argument("-o", "--output", required=True, type=Path, help="output folder (made if missing)")
    p.add_argument(
        "--task",
        choices=["super-resolve", "denoise", "style-transfer"],
        help="default: style-transfer with --style/--style-image, denoise with --sigma/--artifacts, else super-resolve",
    )
    p.add_argument("--model", help="a model id or variant from `imgenhance models` (default: the task's default)")
    sr = p.add_argument_group("super-resolve")
    sr.add_argument("--scale", type=int, choices=[2, 4], help="model scale (default: 4)")
    sr.add_argument(
        "--outscale",
        type=bounded(float, 1, MAX_OUTSCALE, low_open=True),
        help="any final factor above 1 up to 8, e.g. 3.5: the nearest model scale, then a Lanczos resample",
    )
    dn = p.add_argument_group("denoise")
    dn.add_argument(
        "--sigma", type=bounded(float, 0, MAX_SIGMA), help="how much noise to remove, 0-75 (default: blind)"
    )
    dn.add_argument("--artifacts", choices=["noise", "jpeg"], help="what to remove (default: noise)")
    dn.add_argument(
        "--jpeg-quality",
        type=bounded(int, 1, 100),
        help="--artifacts jpeg: the quality the images were saved at (default: read from each JPEG)",
    )
    p.add_argument("--strength", type=bounded(float, 0, 1), help="denoise and style: 0..1 of the effect (default: 1)")
    st = p.add_argument_group("style-transfer")
    st.add_argument("--style", help="a named style (`curl /v1/styles`), e.g. starry-night")
    st.add_argument("--style-image", type=Path, help="any picture whose style to copy")
    st.add_argument("--preserve-color", action="store_true", default=None, help="keep the images' own colours")
    st.add_argument(
        "--max-side", type=bounded(int, 64, STYLE_MAX_SIDE), help="side the image is stylised at (default: 1024)"
    )
    st.add_argument(
        "--no-keep-size",
        dest="keep_size",
        action="store_false",
        default=None,
        help="return the stylised size, not the input's size",
    )
    st.add_argument(
        "--style-side", type=bounded(int, 64, STYLE_MAX_SIDE), help="side the style image is read at (default: 512)"
    )
    out = p.add_argument_group("output")
    out.add_argument(
        "--format", dest="output_format", choices=["png", "jpeg", "webp"], default="png", help="default: png"
    )
    out.add_argument("--quality", type=bounded(int, 1, 100), help="jpeg/webp quality (default: jpeg 95, lossless webp)")
    out.add_argument("--overwrite", action="store_true", help="redo outputs that exist (default: skip them)")
    run = p.add_argument_group("where and how")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--server", metavar="URL", help=f"run on a service (key from ${API_KEY_ENV})")
    where.add_argument("--local", action="store_true", help="run in this process, no service needed (the default)")
    run.add_argument("-j", "--jobs", type=bounded(int, 1, 64), default=1, help="images at a time (default: 1)")
    run.add_argument("--timeout", type=float, default=600.0, help="--server: seconds to wait per image (default: 600)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar (it is off when not on a terminal)")
    p.set_defaults(func=cmd_enhance, default_log_level="warning")


def request_from(args: argparse.Namespace) -> Enhance:
    style_given = args.style is not None or args.style_image is not None
    task: EnhanceTask = args.task or (
        "style-transfer"
        if style_given
        else "denoise"
        if args.sigma is not None or args.artifacts is not None
        else "super-resolve"
    )
    only = {
        "super-resolve": ("scale", "outscale"),
        "denoise": ("sigma", "artifacts", "jpeg_quality"),
        "style-transfer": ("style", "style_image", "preserve_color", "max_side", "keep_size", "style_side"),
    }
    for other, names in only.items():
        for name in names:
            if other != task and getattr(args, name) is not None:
                raise UsageError(f"--{name.replace('_', '-')} is for --task {other}, not {task}")
    if args.strength is not None and task == "super-resolve":
        raise UsageError("--strength is for denoise and style-transfer")
    conflict = denoise_level_conflict(args.sigma, args.artifacts or "noise", args.jpeg_quality)
    if conflict:
        for api, flag in (("jpeg_quality", "--jpeg-quality"), ("sigma", "--sigma"), ("artifacts=", "--artifacts ")):
            conflict = conflict.replace(api, flag)
        raise UsageError(conflict)
    if args.scale is not None and args.outscale is not None:
        raise UsageError("give --scale or --outscale, not both")
    if task == "style-transfer":
        conflict = style_source_conflict(
            args.style is not None, args.style_image is not None, "--style NAME", "--style-image FILE"
        )
        if conflict:
            raise UsageError(conflict)
    conflict = quality_conflict(args.output_format, args.quality)
    if conflict:
        raise UsageError(f"--{conflict} (--format)")
    style_image = None
    if args.style_image is not None:
        try:
            style_image = args.style_image.read_bytes()
        except OSError as exc:
            raise UsageError(f"--style-image: {exc.strerror or exc}: {args.style_image}") from None
    return Enhance(
        task=task,
        model=args.model,
        scale=args.scale,
        outscale=args.outscale,
        sigma=args.sigma,
        strength=args.strength,
        artifacts=args.artifacts,
        jpeg_quality=args.jpeg_quality,
        style=args.style,
        style_image=style_image,
        preserve_color=args.preserve_color,
        max_side=args.max_side,
        keep_size=args.keep_size,
        style_side=args.style_side,
        output_format=args.output_format,
        quality=args.quality,
    )


def _magic(part: str) -> bool:
    return any(c in part for c in "*?[")


def expand(inputs: Iterable[str], skip: Path | None = None) -> Iterator[tuple[Path, PurePath]]:
    """(file, path to keep under the output folder) for every input: a folder's images
    recursively, a glob's matches, a file as itself. Files under ``skip`` (the output
    folder, when it lies inside an input folder) are left out."""
    skip = skip.resolve() if skip is not None else None

    def kept(path: Path) -> bool:
        return path.is_file() and (skip is None or not path.resolve().is_relative_to(skip))

    for arg in inputs:
        path = Path(arg)
        if path.is_dir():
            for found in sorted(path.rglob("*")):
                if found.suffix.lower() in IMAGE_SUFFIXES and kept(found):
                    yield found, found.relative_to(path)
        elif path.is_file():
            yield path, PurePath(path.name)
        elif _magic(arg):
            parts = PurePath(arg).parts
            base = Path(*[p for p in parts[: next(i for i, p in enumerate(parts) if _magic(p))]] or ["."])
            matches = sorted(m for m in base.glob(str(PurePath(*parts[len(base.parts) :]))) if kept(m))
            if not matches:
                raise UsageError(f"{arg}: no files match")
            for match in matches:
                yield match, match.relative_to(base)
        else:
            raise UsageError(f"{arg}: no such file or folder")


def plan(inputs: Iterable[str], output: Path, fmt: OutputFormat) -> list[Item]:
    items: dict[Path, Item] = {}
    for source, relative in expand(inputs, skip=output):
        target = output / relative.with_suffix(SUFFIX[fmt])
        if target in items:
            if items[target].source.resolve() == source.resolve():
                continue  # the same file named twice (a folder and a glob)
            raise UsageError(f"{items[target].source} and {source} would both be written to {target}")
        items[target] = Item(source, target)
    if not items:
        raise UsageError("no images found in " + " ".join(inputs))
    return list(items.values())


def process(backend: Backend, request: Enhance, item: Item, overwrite: bool) -> Outcome:
    if item.target.exists() and not overwrite:
        return Outcome(item, "skipped")
    start = time.perf_counter()
    try:
        data = item.source.read_bytes()
        out = backend.enhance(data, request)
        item.target.parent.mkdir(parents=True, exist_ok=True)
        partial = item.target.with_name(f".{item.target.name}.partial")
        partial.write_bytes(out.data)
        os.replace(partial, item.target)  # a file that is there is whole: a rerun may skip it
    except Failed as exc:
        return Outcome(item, "failed", time.perf_counter() - start, str(exc))
    except OSError as exc:
        return Outcome(item, "failed", time.perf_counter() - start, f"{exc.strerror or exc}: {exc.filename or ''}")
    return Outcome(item, "done", time.perf_counter() - start)


def make_backend(args: argparse.Namespace) -> Backend:
    if args.server:
        return ServerBackend(args.server, os.environ.get(API_KEY_ENV) or None, job_timeout=args.timeout)
    return LocalBackend()


def run(
    items: list[Item], backend: Backend, request: Enhance, jobs: int, overwrite: bool, show_progress: bool
) -> list[Outcome]:
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    outcomes: list[Outcome] = []
    columns = (
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with (
        Progress(*columns, console=err, disable=not show_progress, transient=False) as progress,
        ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="enhance") as pool,
    ):
        bar = progress.add_task(f"{request.task} ({backend.name})", total=len(items))
        futures = [pool.submit(process, backend, request, item, overwrite) for item in items]
        for future in as_completed(futures):
            outcome = future.result()
            outcomes.append(outcome)
            if outcome.status == "failed":
                err.print(f"failed: {outcome.item.source}: {outcome.reason}", markup=False)
            progress.advance(bar)
    return outcomes


def summary(outcomes: list[Outcome], output: Path) -> Table:
    counts = Counter(o.status for o in outcomes)
    table = Table(title=f"imgenhance enhance -> {output}", title_justify="left")
    table.add_column("result")
    table.add_column("files", justify="right")
    table.add_column("s/file", justify="right")
    for status in ("done", "skipped", "failed"):
        spent = [o.seconds for o in outcomes if o.status == status]
        per_file = f"{sum(spent) / len(spent):.2f}" if spent and status != "skipped" else ""
        table.add_row(status, str(counts[status]), per_file)
    return table


def cmd_enhance(args: argparse.Namespace) -> int:
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        request = request_from(args)
        items = plan(args.inputs, args.output, args.output_format)
    except UsageError as exc:
        err.print(f"imgenhance enhance: {exc}", markup=False)
        return 2
    start = time.perf_counter()
    backend = make_backend(args)
    try:
        show = not args.no_progress and err.is_terminal
        outcomes = run(items, backend, request, args.jobs, args.overwrite, show)
    finally:
        backend.close()
    out = Console(highlight=False, soft_wrap=True)
    out.print(summary(outcomes, args.output))
    out.print(f"{len(outcomes)} files in {time.perf_counter() - start:.1f} s, {args.jobs} at a time", markup=False)
    return 1 if any(o.status == "failed" for o in outcomes) else 0
