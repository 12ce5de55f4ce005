"""Ablations: the same GAN trained with one setting changed, each measured the same way.

    python -m training ablate --config training/configs/gan/digits.toml \
        --vary 'loss="bce"|"lsgan"|"wgan-gp"|"hinge"'
    python -m training ablate --config training/configs/gan/faces.toml \
        --vary 'diffaugment=[]|["color","translation","cutout"]'

Every variant keeps the seed, the data, the steps and every other setting; its run
goes to ``<out>/<name>-<key>-<n>`` (resumable), is measured with ``training.gan_eval``
from its EMA generator in PyTorch, and the table (Markdown) and figures (JSON) are
written to ``<out>/<name>-ablation-<key>.md`` / ``.json`` and printed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from training.checkpoint import Checkpoint
from training.config import GanConfig, parse_value
from training.gan_eval import evaluate_generator, torch_sampler
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
) -> list[dict[str, object]]:
    key, values = parse_vary(vary)
    rows: list[dict[str, object]] = []
    for i, value in enumerate(values):
        cfg = GanConfig.from_toml(config, [*overrides, f"{key}={json.dumps(value)}"])
        run = out / f"{cfg.name}-{key}-{i}"
        resume = run / "last.pt" if (run / "last.pt").exists() else None
        log.info("ablation %s: %s = %s", cfg.name, key, value)
        best = train_gan(cfg, data_root, run, device, resume, f"python -m training ablate --vary {vary}", progress=True)
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
    return rows


def _markdown(rows: list[dict[str, object]]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += [
        "| " + " | ".join(json.dumps(r[k]) if isinstance(r[k], list | str) else str(r[k]) for k in keys) + " |"
        for r in rows
    ]
    return "\n".join(lines)
