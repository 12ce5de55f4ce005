"""Ablations: the same GAN trained with one setting changed, each measured the same way.

    python -m training ablate --config training/configs/gan/digits.toml \
        --vary 'loss="bce"|"lsgan"|"wgan-gp"|"hinge"'
    python -m training ablate --config training/configs/gan/faces.toml \
        --vary 'diffaugment=[]|["color","translation","cutout"]'

Every variant keeps the seed, the data, the steps and every other setting; its run
goes to ``<out>/<name>-<key>-<n>`` (resumable), is measured with ``training.gan_eval``
from its EMA generator in PyTorch, and the table (Markdown) and figures (JSON) are
written to ``<out>/<name>-ablation-<key>.md`` / ``.json`` and printed; the variants' last
sample grids, side by side, to ``<out>/<name>-ablation-<key>.png``.

``jobs`` > 1 trains that many variants at once in their own processes, the CPU's cores
shared between them (a config's own ``threads`` wins): small networks use two cores
poorly, so two one-thread runs finish sooner than two two-thread runs in turn.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from training.checkpoint import Checkpoint
from training.config import GanConfig, parse_value
from training.gan_eval import evaluate_generator, torch_sampler
from training.plots import save_grid
from training.train_gan import train_gan

log = logging.getLogger("training")


def parse_vary(vary: str) -> tuple[str, list[object]]:
    key, sep, values = vary.partition("=")
    if not sep or not values:
        raise ValueError(f"--vary must look like key=value1|value2, got {vary!r}")
    return key.strip(), [parse_value(v) for v in values.split("|")]


def ablate(
    config: Path,
    vary: str,
    overrides: list[str],
    data_root: Path,
    device: str,
    generated: int | None,
    out: Path,
    jobs: int = 1,
) -> list[dict[str, object]]:
    key, values = parse_vary(vary)
    variants = [GanConfig.from_toml(config, [*overrides, f"{key}={json.dumps(v)}"]) for v in values]
    runs = [out / f"{cfg.name}-{key}-{i}" for i, cfg in enumerate(variants)]
    command = f"python -m training ablate --vary {vary}"
    if jobs > 1:
        threads = max(1, (os.cpu_count() or 1) // jobs)
        variants = [dataclasses.replace(cfg, threads=cfg.threads or threads) for cfg in variants]
        log.info("ablation: %d variants, %d at a time, %d threads each", len(values), jobs, threads)
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(jobs, mp_context=spawn, initializer=exit_with_parent, initargs=(os.getpid(),)) as pool:
            done = [
                pool.submit(_train_variant, cfg, data_root, run, device, command)
                for cfg, run in zip(variants, runs, strict=True)
            ]
            bests = [future.result() for future in done]
    else:
        bests = [
            _train_variant(cfg, data_root, run, device, command, progress=True)
            for cfg, run in zip(variants, runs, strict=True)
        ]
    rows: list[dict[str, object]] = []
    for value, best in zip(values, bests, strict=True):
        log.info("ablation: measuring %s = %s", key, value)
        ckpt = Checkpoint.load(best)
        quality = evaluate_generator(torch_sampler(ckpt.generator()), ckpt.config, data_root, generated)
        row: dict[str, object] = {
            key: value,
            "steps": ckpt.step,
            "fid": quality.fid,
            "kid": quality.kid,
            "fid_floor": quality.fid_floor,
            "minutes": round(ckpt.elapsed / 60, 1),
        }
        if quality.classifier is not None:
            row["worst_class_ratio"] = quality.classifier.worst_ratio
        rows.append(row)
    table = _markdown(rows)
    print(table)
    name = GanConfig.from_toml(config, overrides).name
    (out / f"{name}-ablation-{key}.md").write_text(table + "\n")
    (out / f"{name}-ablation-{key}.json").write_text(json.dumps(rows, indent=1))
    titles = [f"{key} = {json.dumps(v)}, step {r['steps']}" for v, r in zip(values, rows, strict=True)]
    save_samples_side_by_side(runs, titles, out / f"{name}-ablation-{key}.png")
    return rows


def save_samples_side_by_side(runs: list[Path], titles: list[str], path: Path) -> None:
    """Each run's last sample grid (the same fixed latents in every run), titled, in one row."""
    pictures = []
    for run in runs:
        with Image.open(run / "samples.png") as im:
            pictures.append(np.asarray(im.convert("RGB")))
    save_grid([pictures], titles, path)


def exit_with_parent(parent: int, every: float = 1.0) -> None:
    """In a worker process: exit when ``parent`` is gone. A killed ``ablate`` would otherwise
    leave its trainers running, still writing into the run folders a new run is using."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def label_logs(name: str) -> None:
    """Prefix every log line with ``name``, replacing an earlier prefix: a worker trains
    several variants in turn, and each line must name the run it is from."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO)
    for handler in root.handlers:
        handler.setFormatter(logging.Formatter(f"%(asctime)s [{name}] %(message)s"))


def _train_variant(
    cfg: GanConfig, data_root: Path, run: Path, device: str, command: str, progress: bool = False
) -> Path:
    """Train one variant, or resume it; a finished run returns its checkpoint at once."""
    if multiprocessing.parent_process() is not None:  # a worker: say which run each line is from
        label_logs(run.name)
    resume = run / "last.pt" if (run / "last.pt").exists() else None
    return train_gan(cfg, data_root, run, device, resume, command, progress=progress)


def _markdown(rows: list[dict[str, object]]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += [
        "| " + " | ".join(json.dumps(r[k]) if isinstance(r[k], list | str) else str(r[k]) for k in keys) + " |"
        for r in rows
    ]
    return "\n".join(lines)
