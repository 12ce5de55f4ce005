"""Real-world super-resolution measured by LPIPS beside PSNR: ``python -m training
eval-realworld``.

PSNR rewards the blurry mean, so a model that draws plausible texture (Real-ESRGAN's
x4plus) can lose to bicubic on it. LPIPS (``training.lpips``) follows what people see.
Inputs are made four ways from each HR image of the sets (cropped to a multiple of the
scale):

- ``realesrgan-moderate``: Real-ESRGAN's second-order pipeline (``training.degradations``)
  with ``MODERATE``, web photos (the ranges of ``sr-realworld-x4``'s GAN recipe); image i of a set from
  seed 1000 + i (``training.evaluate.degrade_sets``);
- ``realesrgan-strong``: the same pipeline and seeds with Real-ESRGAN's published ranges
  (the inputs of x4plus's ``real_world_degradation`` figures; ``sr-realworld-x4``'s are on
  the moderate ones);
- ``jpeg-q50``, ``jpeg-q30``: the clean protocol's LR (MATLAB bicubic) saved once as a
  JPEG of that quality (Pillow, 4:2:0 chroma).

Every model runs through the worker's pipeline, as the API serves it, and MATLAB bicubic
is the baseline. Outputs are rounded to uint8 and scored against the HR after cropping
``scale`` pixels from each border: LPIPS (VGG, v0.1) on RGB, PSNR on Y (BT.601). The card
of each model gets the means per setting and set (``RealWorldScores``); one grid per
setting shows a centre crop of one image: the input (nearest) | bicubic | each model |
the ground truth.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from imgenhance.cards import PerceptualScore, RealWorldScores
from training import evaluate as ev
from training.data import SRPair
from training.degradations import RealESRGANConfig, jpeg
from training.lpips import LPIPS
from training.metrics import crop_border, psnr, y_channel
from training.plots import centre_crop, save_grid
from training.sources import REALWORLD_SEED
from training.style_data import to_batch, to_image

Sets = dict[str, list[SRPair]]

# training/configs/sr_realworld_x4_{psnr,gan}.toml: web photos (blur, sensor noise, JPEG), not worst cases
MODERATE: dict[str, Any] = {
    "blur_sigma": [[0.2, 1.5], [0.2, 1.0]],
    "sinc_prob": [0.05, 0.05],
    "second_blur_prob": 0.5,
    "resize_range": [[0.5, 1.5], [0.5, 1.2]],
    "noise_range": [[1.0, 15.0], [1.0, 10.0]],
    "poisson_range": [[0.05, 1.0], [0.05, 0.8]],
    "jpeg_range": [50.0, 95.0],
    "final_sinc_prob": 0.5,
}


@dataclass(frozen=True)
class Setting:
    name: str
    description: str
    degrade: Callable[[Sets, int], Sets]  # the clean pairs -> the same HR with this setting's LR


def _realesrgan(name: str, args: dict[str, Any], what: str) -> Setting:
    ranges = json.dumps(asdict(RealESRGANConfig(**args)), separators=(",", ":"))
    description = (
        f"Real-ESRGAN second-order pipeline, {what}: {ranges}; image i of a set from seed {REALWORLD_SEED} + i"
    )
    return Setting(name, description, lambda sets, scale: ev.degrade_sets(sets, scale, args))


def jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    """HxWx3 uint8 saved once as a JPEG of ``quality`` and decoded."""
    return to_image(jpeg(to_batch([img]), np.array([quality])))


def _jpeg(quality: int) -> Setting:
    def degrade(sets: Sets, scale: int) -> Sets:
        return {name: [replace(p, lr=jpeg_roundtrip(p.lr, quality)) for p in pairs] for name, pairs in sets.items()}

    description = f"MATLAB bicubic x1/scale, then one JPEG round trip at quality {quality} (Pillow, 4:2:0)"
    return Setting(f"jpeg-q{quality}", description, degrade)


SETTINGS = [
    _realesrgan("realesrgan-moderate", MODERATE, "moderate ranges (web photos: mild blur, noise, JPEG 50-95)"),
    _realesrgan("realesrgan-strong", {}, "Real-ESRGAN's published ranges"),
    _jpeg(50),
    _jpeg(30),
]


def protocol(scale: int, sets: list[str]) -> dict[str, str | int | list[str]]:
    return {
        "metric": "LPIPS (VGG, v0.1) and PSNR (dB), means per set",
        "lpips": "RGB in [0, 1], whole image after the border crop (training.lpips)",
        "psnr_channel": "Y (ITU-R BT.601, 16-235)",
        "crop_border": scale,
        "sets": sets,
        "hr": "cropped to a multiple of the scale",
        "baseline": "MATLAB bicubic upscaling of the same input",
        "output_rounding": "uint8",
    }


@dataclass
class Report:
    """Per-image scores and the grid crops of one run."""

    scale: int
    settings: list[Setting]
    scores: dict[tuple[str, str, str], list[tuple[float, float]]]  # (setting, set, method) -> [(lpips, psnr)]
    grids: dict[str, tuple[list[str], list[np.ndarray]]]  # setting -> (titles, tiles)

    def mean(self, setting: str, set_name: str, method: str) -> PerceptualScore:
        values = np.array(self.scores[setting, set_name, method])
        return PerceptualScore(lpips=round(float(values[:, 0].mean()), 4), psnr=round(float(values[:, 1].mean()), 3))

    def set_names(self) -> list[str]:
        return list(dict.fromkeys(s for _, s, _ in self.scores))

    def methods(self) -> list[str]:
        return list(dict.fromkeys(m for _, _, m in self.scores))

    def block(self, model: str, onnx_sha256: str, measured_by: str) -> RealWorldScores:
        """The card's figures for one model: it and bicubic, per setting and set."""
        results = {
            s.name: {
                set_name: {
                    "model": self.mean(s.name, set_name, model),
                    "bicubic": self.mean(s.name, set_name, "bicubic"),
                }
                for set_name in self.set_names()
            }
            for s in self.settings
        }
        return RealWorldScores(
            protocol=protocol(self.scale, self.set_names()),
            settings={s.name: s.description for s in self.settings},
            results=results,
            onnx_sha256=onnx_sha256,
            measured_by=measured_by,
        )

    def table(self) -> str:
        lines = [f"{'setting':20s} {'set':6s} {'method':22s} {'LPIPS':>7s} {'PSNR':>7s}"]
        for s in self.settings:
            for set_name in self.set_names():
                for method in self.methods():
                    m = self.mean(s.name, set_name, method)
                    lines.append(f"{s.name:20s} {set_name:6s} {method:22s} {m.lpips:7.4f} {m.psnr:7.3f}")
        return "\n".join(lines)

    def save_grids(self, path: Path) -> list[Path]:
        """One picture per setting: ``path``'s name with ``-<setting>`` added."""
        written = []
        for setting, (titles, tiles) in self.grids.items():
            out = path.with_name(f"{path.stem}-{setting}{path.suffix}")
            save_grid([tiles], titles, out)
            written.append(out)
        return written


def evaluate_realworld(
    models: dict[str, ev.Upscaler],
    sets: Sets,
    scale: int,
    metric: LPIPS,
    settings: list[Setting] = SETTINGS,
    grid_image: str | None = None,
    grid_size: int = 192,
    progress: bool = True,
) -> Report:
    """Score bicubic and each model on every setting's inputs. Image by image, so the
    HR's LPIPS features are computed once; ``grid_image`` (default: the first image)
    gives the grid crops."""
    inputs = {s.name: s.degrade(sets, scale) for s in settings}
    methods = {"bicubic": ev.bicubic(scale), **models}
    names = [p.name for pairs in sets.values() for p in pairs]
    grid_image = grid_image or names[0]
    if grid_image not in names:
        raise ValueError(f"grid image {grid_image!r} is not one of the images {names}")
    report = Report(scale, settings, {}, {})
    total = sum(len(pairs) for pairs in sets.values()) * len(settings) * len(methods)
    with torch.no_grad(), tqdm(total=total, desc="eval-realworld", disable=not progress) as bar:
        for set_name, pairs in sets.items():
            for i, pair in enumerate(pairs):
                hr = crop_border(pair.hr, scale)
                reference = metric.features(to_batch([hr]))
                for s in settings:
                    lr = inputs[s.name][set_name][i].lr
                    outputs = []
                    for method, upscale in methods.items():
                        bar.set_postfix_str(f"{set_name}/{pair.name} {s.name} {method}")
                        sr = upscale(lr)
                        assert sr.shape == pair.hr.shape, f"{method}: output {sr.shape} but HR is {pair.hr.shape}"
                        cropped = crop_border(sr, scale)
                        lpips = float(metric.compare(metric.features(to_batch([cropped])), reference)[0])
                        y_psnr = psnr(y_channel(cropped), y_channel(hr))
                        report.scores.setdefault((s.name, set_name, method), []).append((lpips, y_psnr))
                        outputs.append(sr)
                        bar.update()
                    if pair.name == grid_image:
                        nearest = lr.repeat(scale, axis=0).repeat(scale, axis=1)
                        tiles = [centre_crop(img, grid_size) for img in [nearest, *outputs, pair.hr]]
                        report.grids[s.name] = (["input (nearest)", *methods, "ground truth"], tiles)
    return report


def measure_realworld(
    card_paths: list[Path],
    data_root: Path,
    set_names: list[str],
    measured_by: str,
    write_cards: bool = False,
    grid: Path | None = None,
    grid_image: str | None = None,
    grid_size: int = 192,
) -> Report:
    """Load the models of ``models/`` as the worker does, run every setting, print the
    table, write the grids and (``write_cards``) each card's ``real_world_lpips`` block."""
    from imgenhance.cards import SRQuality, read_card, write_card

    cards = {path: read_card(path) for path in card_paths}
    for path, card in cards.items():
        if not isinstance(card.quality, SRQuality):
            raise ValueError(f"{path}: eval-realworld measures super-resolve models, not {card.task}")
    scales = {card.scale for card in cards.values()}
    if len(scales) != 1:
        raise ValueError(f"the models of one run share a scale; these have {sorted(scales)}")
    scale = scales.pop()
    sets = ev.load_sets(data_root, set_names, scale)
    models = {card.id: ev.pipeline_upscaler(path) for path, card in cards.items()}
    report = evaluate_realworld(models, sets, scale, LPIPS.pretrained(), grid_image=grid_image, grid_size=grid_size)
    print(report.table())
    for written in report.save_grids(grid) if grid is not None else []:
        print(f"wrote {written}")
    if write_cards:
        for path, card in cards.items():
            assert isinstance(card.quality, SRQuality)
            block = report.block(card.id, card.sha256, measured_by)  # the worker loaded the file only if it matched
            write_card(
                card.model_copy(update={"quality": card.quality.model_copy(update={"real_world_lpips": block})}), path
            )
            print(f"updated {path}")
    return report
