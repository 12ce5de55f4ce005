"""Evaluation of style-transfer models against the Gatys optimisation.

Protocol (stored in every style card):
- content images: the evaluation sets (Set5, Set14), longer side ``eval_size`` (256);
- the painting at ``style_size`` (its longer side; the size the model was trained with);
- losses on the shared VGG16 loss network (``training.style_losses``): content = relu2_2
  MSE, style = sum of Gram MSEs over relu1_2, relu2_2, relu3_3, relu4_3, unweighted;
- feed-forward: the ONNX model through the worker's pipeline (what the API serves),
  timed per image on this machine's CPU;
- reference: Gatys et al. with L-BFGS (strong Wolfe line search) on the pixels, started
  from the content image, minimising 1e5 x content + 1e10 x style (Johnson's weights),
  ``gatys_iterations`` (100) iterations, on the ``gatys_sets`` images (Set5: the
  reference costs minutes per image on a CPU). Runs are cached by painting, image and protocol, so the
  named and the any-style models share them.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from imgenhance.cards import StyleComparison, StyleQuality, StyleScores, read_card
from training.data import list_images, load_rgb
from training.gatys import stylize_optimize
from training.measure import EvalOptions
from training.plots import save_grid, square_thumb
from training.style_data import fit_longer_side, to_batch
from training.style_losses import GRAM_CONTENT_WEIGHT, GRAM_STYLE_WEIGHT, GramStyleLoss
from training.vgg import VGG16Features

CACHE = Path("runs") / "gatys-cache"
GATYS_RECIPE = 2  # in the cache key: bump when training/gatys.py changes (2: L-BFGS restarts on a stall)

Stylizer = Callable[[np.ndarray], np.ndarray]  # HxWx3 uint8 content -> HxWx3 uint8


@dataclass(frozen=True)
class Reference:
    """How the Gatys reference is run: what it minimises, how long, on which images."""

    content_weight: float
    style_weight: float
    iterations: int
    sets: list[str]
    images: int = 0  # the first N images of the sets (0 = all)

    def describe(self) -> str:
        return (
            f"L-BFGS (strong Wolfe) on pixels from the content image, {self.iterations} iterations, "
            f"{self.content_weight:g} x content + {self.style_weight:g} x style"
        )


def _protocol(
    eval_size: int, style_size: int, ref: Reference
) -> dict[str, str | int | float | list[float] | list[str]]:
    return {
        "loss_network": "VGG16 (ImageNet), input RGB [0, 1] with ImageNet normalisation",
        "content_loss": "relu2_2 MSE, unweighted",
        "style_loss": "sum over relu1_2, relu2_2, relu3_3, relu4_3 of Gram MSE (Gram / C·H·W), unweighted",
        "content_images": f"longer side {eval_size} px (Lanczos)",
        "style_image": f"longer side {style_size} px (Lanczos)",
        "feed_forward": "the ONNX model through the worker pipeline, CPU, seconds per image",
        "gatys": ref.describe(),
        "gatys_sets": ref.sets,
        "gatys_images": ref.images or "all",
        "threads": torch.get_num_threads(),
    }


def _content_images(data_root: Path, sets: list[str], eval_size: int) -> dict[str, list[tuple[str, np.ndarray]]]:
    out = {}
    for name in sets:
        folder = Path(name) if Path(name).is_absolute() else data_root / name
        out[name] = [(p.stem, fit_longer_side(load_rgb(p), eval_size)) for p in list_images([folder])]
    return out


def _scores(
    loss: GramStyleLoss, images: list[tuple[str, np.ndarray]], outputs: list[np.ndarray], seconds: list[float]
) -> StyleScores:
    contents, styles = [], []
    with torch.no_grad():
        for (_, content), out in zip(images, outputs, strict=True):
            x, y = to_batch([content]), to_batch([out])
            terms = loss.terms(y, loss.content_features(x))
            contents.append(float(terms.content))
            styles.append(float(terms.style))
    return StyleScores(
        content_loss=float(np.mean(contents)),
        style_loss=float(np.mean(styles)),
        seconds=float(np.mean(seconds)),
        images=len(images),
    )


def run_feed_forward(stylize: Stylizer, images: list[tuple[str, np.ndarray]]) -> tuple[list[np.ndarray], list[float]]:
    outputs, seconds = [], []
    for _, content in images:
        start = time.perf_counter()
        outputs.append(stylize(content))
        seconds.append(time.perf_counter() - start)
    return outputs, seconds


def gatys_cached(
    painting_sha: str, image_name: str, content: np.ndarray, loss: GramStyleLoss, ref: Reference, cache: Path
) -> tuple[np.ndarray, float]:
    """The Gatys result for one content image (and its optimisation time), from the cache if any."""
    key_src = (
        f"{GATYS_RECIPE}|{painting_sha}|{image_name}|{content.shape}|{ref.iterations}|"
        f"{ref.content_weight}|{ref.style_weight}"
    )
    key = hashlib.sha256(key_src.encode()).hexdigest()[:20]
    png, meta = cache / f"{key}.png", cache / f"{key}.json"
    if png.exists() and meta.exists():
        return np.asarray(Image.open(png).convert("RGB")), float(json.loads(meta.read_text())["seconds"])
    snap = stylize_optimize(content, loss, ref.content_weight, ref.style_weight, iterations=ref.iterations)[-1]
    cache.mkdir(parents=True, exist_ok=True)
    Image.fromarray(snap.image).save(png)
    meta.write_text(json.dumps({"seconds": snap.seconds, "image": image_name, "protocol": key_src}))
    return snap.image, snap.seconds


def compare(
    name: str,
    painting: Path,
    style_size: int,
    stylize: Stylizer,
    contents: dict[str, list[tuple[str, np.ndarray]]],
    vgg: VGG16Features,
    ref: Reference,
    grid: Path | None,
) -> tuple[dict[str, StyleScores], StyleComparison]:
    """Feed-forward scores on every set, and the comparison with Gatys on ``ref.sets``."""
    painting_img = fit_longer_side(load_rgb(painting), style_size)
    loss = GramStyleLoss(vgg, to_batch([painting_img]))
    painting_sha = hashlib.sha256(painting.read_bytes()).hexdigest()
    per_set: dict[str, StyleScores] = {}
    ff_outputs: dict[str, list[np.ndarray]] = {}
    for set_name, images in contents.items():
        outputs, seconds = run_feed_forward(stylize, images)
        ff_outputs[set_name] = outputs
        per_set[set_name] = _scores(loss, images, outputs, seconds)
        print(f"{name:24s} {set_name:8s} feed-forward  {_line(per_set[set_name])}")
    ref_sets = ref.sets
    ref_images = [item for s in ref_sets for item in contents[s]]
    ref_ff = [out for s in ref_sets for out in ff_outputs[s]]
    if ref.images:
        ref_images, ref_ff = ref_images[: ref.images], ref_ff[: ref.images]
    ff_seconds = float(np.mean([per_set[s].seconds for s in ref_sets]))
    gatys_out, gatys_seconds = [], []
    for image_name, content in ref_images:
        out, seconds = gatys_cached(painting_sha, image_name, content, loss, ref, CACHE)
        gatys_out.append(out)
        gatys_seconds.append(seconds)
    ff = _scores(loss, ref_images, ref_ff, [ff_seconds] * len(ref_images))
    gatys = _scores(loss, ref_images, gatys_out, gatys_seconds)
    print(f"{name:24s} {'+'.join(ref_sets):8s} Gatys         {_line(gatys)}")
    comparison = StyleComparison(
        feed_forward=ff,
        gatys=gatys,
        style_loss_ratio=_ratio(ff.style_loss, gatys.style_loss),
        content_loss_ratio=_ratio(ff.content_loss, gatys.content_loss),
        speedup=round(gatys.seconds / ff.seconds, 1),
    )
    if grid is not None:
        rows = [
            [square_thumb(c, 192), square_thumb(g, 192), square_thumb(o, 192)]
            for (_, c), g, o in zip(ref_images, gatys_out, ref_ff, strict=True)
        ]
        rows.insert(0, [square_thumb(painting_img, 192)] * 3)
        titles = [f"content ({name})", f"Gatys, {ref.iterations} L-BFGS iterations", "ours (feed-forward)"]
        save_grid(rows, titles, grid)
    return per_set, comparison


def _ratio(ours: float, reference: float) -> float | None:
    return round(ours / reference, 3) if reference > 0 else None


def _line(s: StyleScores) -> str:
    return f"content {s.content_loss:8.3f}  style {s.style_loss:.3e}  {s.seconds:8.3f} s/image"


def measure_style(card_path: Path, sets: list[str], options: EvalOptions) -> StyleQuality:
    from imgenhance.params import StyleTransferParams
    from training.evaluate import served
    from worker.codec import Picture
    from worker.pipelines import run_local

    card = read_card(card_path)
    cfg = card.training.config
    eval_size, style_size = int(cfg.get("eval_size", 256)), int(cfg.get("style_size", 512))
    model, tiles = served(card_path)
    names = list(dict.fromkeys([*sets, *options.gatys_sets]))  # every set once, in order
    contents = _content_images(options.data_root, names, eval_size)
    vgg = VGG16Features.pretrained("relu4_3")
    named = card.style is not None
    ref = Reference(
        float(cfg["content_weight"]) if named else GRAM_CONTENT_WEIGHT,
        float(cfg["style_weight"]) if named else GRAM_STYLE_WEIGHT,
        options.gatys_iterations,
        options.gatys_sets,
        options.gatys_images,
    )
    results: dict[str, dict[str, StyleScores]] = {}
    versus: dict[str, StyleComparison] = {}

    def stylizer(style: np.ndarray | None, name: str | None) -> Stylizer:
        params = StyleTransferParams(
            model=card.id, style=name, output_format="png", max_side=eval_size, style_side=style_size
        )
        extra = {} if style is None else {"style_image": Picture(style.astype(np.float32) / 255.0, None, 8)}

        def run(content: np.ndarray) -> np.ndarray:
            pic = Picture(content.astype(np.float32) / 255.0, None, 8)
            out = run_local(params, model, tiles, image=pic, **extra).pixels
            return np.round(out * 255).astype(np.uint8)

        return run

    if card.style is not None:
        spec = next(p for p in cfg["styles"] if p["name"] == card.style.name)
        painting = options.data_root / str(spec["image"])
        grid = options.grid
        results[card.style.name], versus[card.style.name] = compare(
            card.style.name, painting, style_size, stylizer(None, card.style.name), contents, vgg, ref, grid
        )
    else:
        for stem in cfg.get("held_out_styles", []):
            painting = next(
                p for s in cfg["style_sets"] for p in list_images([options.data_root / s]) if p.stem == stem
            )
            grid = options.grid.with_name(f"{options.grid.stem}-{stem}{options.grid.suffix}") if options.grid else None
            style_img = load_rgb(painting)  # the pipeline resizes it to style_side, as the API does
            results[stem], versus[stem] = compare(
                stem, painting, style_size, stylizer(style_img, None), contents, vgg, ref, grid
            )
    return StyleQuality(
        protocol=_protocol(eval_size, style_size, ref),
        results=results,
        versus_gatys=versus,
        measured_by=options.measured_by,
    )
