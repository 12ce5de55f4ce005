"""Training in short GPU windows on a machine reached through a small pipe.

A lent or rented GPU often comes with limits that a local run never meets: an upload
of a few tens of MB, files back of at most ~16 MB each, and a machine that goes away
when the window ends. Three commands make such runs add up:

- ``pack-data``: the training sets re-encoded as JPEG 4:4:4 (photographs downscaled to
  ``--side``), adding photographs, spread evenly over the set, until ``--max-mb`` is
  reached; validation sets are copied as they are, and ``--copy-sets`` folders whole
  (paintings, faces, digits with their label files).
- ``snapshot``: a run's best weights (EMA, as float16: half the bytes) in parts of at
  most ``--part-mb``, with its history, curves, samples and log, into an output folder.
- ``join-parts``: the parts back into a checkpoint that ``export``, ``eval`` and
  ``init_from`` take. Its weights are the float16 ones, stored as float32.

``scripts/gpu_window.sh`` runs a config there as a background process that outlives
each call, waits until a deadline, and snapshots, so consecutive calls add up to one
run while the machine stays up, and a new machine starts from the last snapshot
(docs/training.md, "Short GPU windows").
"""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from PIL import Image

from training.checkpoint import Checkpoint
from training.data import list_images

PART_SUFFIX = ".part"
RUN_FILES = ("history.json", "curves.png", "samples.png", "train.log")


@dataclass(frozen=True)
class Packed:
    folder: str
    images: int
    megabytes: float


def _jpeg(im: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, "JPEG", quality=quality, subsampling=0)
    return buf.getvalue()


def pack_data(
    data_root: Path,
    train_sets: list[str],
    val_sets: list[str],
    photo_sets: list[str],
    out: Path,
    max_mb: float,
    side: int = 512,
    quality: int = 95,
    copy_sets: tuple[str, ...] | list[str] = (),
) -> list[Packed]:
    """Write the packed sets under ``out`` (one folder per set, as under a data root)."""
    out.mkdir(parents=True, exist_ok=True)
    packed, used = [], 0
    for name in copy_sets:
        shutil.copytree(data_root / name, out / name, dirs_exist_ok=True)
        files = [f for f in (out / name).rglob("*") if f.is_file()]
        size = sum(f.stat().st_size for f in files)
        used += size
        packed.append(Packed(name, len(files), size / 1e6))
    for name in val_sets:
        files = list_images([data_root / name])
        (out / name).mkdir(exist_ok=True)
        for f in files:
            shutil.copy(f, out / name / f.name)
        size = sum(f.stat().st_size for f in files)
        used += size
        packed.append(Packed(name, len(files), size / 1e6))
    for name in train_sets:
        (out / name).mkdir(exist_ok=True)
        size = 0
        files = list_images([data_root / name])
        for f in files:
            with Image.open(f) as im:
                data = _jpeg(im, quality)
            (out / name / f"{f.stem}.jpg").write_bytes(data)
            size += len(data)
        used += size
        packed.append(Packed(name, len(files), size / 1e6))
    if used > max_mb * 1e6:
        raise ValueError(f"the sets alone take {used / 1e6:.1f} MB, over --max-mb {max_mb}: lower --quality")
    for name in photo_sets:
        (out / name).mkdir(exist_ok=True)
        files = list_images([data_root / name])
        order = _spread(len(files))
        count = size = 0
        for i in order:
            with Image.open(files[i]) as im:
                im = im.convert("RGB")
                if max(im.size) > side:
                    im.thumbnail((side, side), Image.Resampling.LANCZOS)
                data = _jpeg(im, quality)
            if used + len(data) > max_mb * 1e6:
                break
            (out / name / f"{files[i].stem}.jpg").write_bytes(data)
            used += len(data)
            size += len(data)
            count += 1
        packed.append(Packed(name, count, size / 1e6))
    return packed


def _spread(n: int) -> list[int]:
    """0..n-1 in an order whose every prefix is spread over the whole range (bit reversal),
    so a budget that stops early still samples the set evenly rather than its first files."""
    bits = max(1, (n - 1).bit_length())
    order = [int(format(i, f"0{bits}b")[::-1], 2) for i in range(1 << bits)]
    return [i for i in order if i < n]


def snapshot(run: Path, out: Path, part_mb: float = 15.0) -> list[Path]:
    """``run``'s best.pt as float16 weights in parts, and its history, curves and log."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    best = run / "best.pt"
    if best.exists():
        ckpt = Checkpoint.load(best)
        weights = ckpt.params_ema if ckpt.params_ema is not None else ckpt.params
        half = {k: v.half() if v.is_floating_point() else v for k, v in weights.items()}
        slim = replace(ckpt, params=half, params_ema=None, optimizer=None, discriminator=None, optimizer_d=None)
        buf = io.BytesIO()
        torch.save(slim.to_dict(), buf)
        data, size = buf.getvalue(), int(part_mb * 1024 * 1024)
        for k, start in enumerate(range(0, len(data), size)):
            path = out / f"best16{PART_SUFFIX}{k}"
            path.write_bytes(data[start : start + size])
            written.append(path)
    for name in RUN_FILES:
        if (run / name).exists():
            shutil.copy(run / name, out / name)
            written.append(out / name)
    return written


def join_parts(folder: Path, out: Path) -> Checkpoint:
    """The checkpoint that ``snapshot`` cut into ``folder``'s parts, saved (float32) at ``out``."""
    parts = sorted(folder.glob(f"best16{PART_SUFFIX}*"), key=lambda p: int(p.name.rsplit(PART_SUFFIX, 1)[1]))
    if not parts:
        raise FileNotFoundError(f"no best16{PART_SUFFIX}N files in {folder}")
    state = torch.load(io.BytesIO(b"".join(p.read_bytes() for p in parts)), map_location="cpu", weights_only=True)
    ckpt = Checkpoint.from_dict(state, str(folder))
    full = {k: v.float() if v.is_floating_point() else v for k, v in ckpt.params.items()}
    ckpt = replace(ckpt, params=full)
    ckpt.save(out)
    return ckpt


@dataclass(frozen=True)
class PlannedRun:
    """One line of a window plan (``scripts/gpu_plan.sh``): a run's name, its training
    command (train, train-style or train-gan), its config and the options after it."""

    name: str
    program: str
    config: Path
    options: tuple[str, ...]


def read_plan(path: Path) -> list[PlannedRun]:
    """The plan's runs, each checked the way its command will read it: the options
    parsed by that command's own parser and the config loaded with its ``--set``s, so a
    typo fails here and not minutes into a lent GPU's window."""
    import shlex

    from training.cli import parser
    from training.config import CONFIG_OF_COMMAND

    runs: list[PlannedRun] = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if len(words) < 3 or words[1] not in CONFIG_OF_COMMAND:
            raise ValueError(f"{path}:{number}: expected `name train|train-style|train-gan config [options]`")
        name, program, config = words[0], words[1], Path(words[2])
        if any(run.name == name for run in runs):
            raise ValueError(f"{path}:{number}: a second run named {name}")
        try:
            args = parser().parse_args([program, "--config", str(config), *words[3:]])
        except SystemExit as exc:
            raise ValueError(f"{path}:{number}: options that `{program}` does not take") from exc
        CONFIG_OF_COMMAND[program].from_toml(config, args.set)
        runs.append(PlannedRun(name, program, config, tuple(words[3:])))
    return runs
