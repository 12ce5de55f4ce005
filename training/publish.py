"""Export -> parity -> card -> measure: the one sequence that puts a model into ``models/``.

``export`` (our checkpoints) and ``import`` (community weights) both come here. All of
it happens in a staging folder and is moved into the model store at the end, card
last, so a wrong graph, or an export that fails half way, never reaches it. Named
styles also get their pictures: a thumbnail of the painting and a photograph in the
style.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from imgenhance.cards import ModelCard, StyleInfo, file_sha256, with_earlier_speed, write_card
from training.archs.style import single_style
from training.checkpoint import ArchSpec, Checkpoint
from training.config import Painting
from training.export import (
    build_card,
    export_onnx,
    exportable,
    graph_inputs,
    parity,
    require_parity,
    rounded_to_fp16,
)
from training.jpeg_levels import measure_jpeg_levels
from training.measure import EvalOptions, measure

EXAMPLE_PHOTO = "Set14/zebra.png"  # the photograph each named style's example shows, when present
THUMB_SIDE = 256


def publish(
    ckpt: Checkpoint,
    model_id: str,
    models_dir: Path,
    variant: str,
    default: bool,
    options: EvalOptions | None,
    painting: Painting | None = None,
    fp16_weights: bool = False,
) -> ModelCard:
    """Write ``<id>.onnx`` and ``<id>.json`` (plus, for a named style, its pictures);
    measure unless ``options`` is None. Everything is made in a staging folder and moved
    into ``models_dir`` only when all of it succeeded, the card last: a failure leaves
    the models a worker loads as they were. ``fp16_weights``: the file stores its large
    weights as float16 (half the size; the card measures what those weights compute)."""
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=f".staging-{model_id}-") as tmp:
        stage = Path(tmp)
        card = _build(ckpt, model_id, stage, variant, default, options, painting, fp16_weights)
        card_path = stage / f"{model_id}.json"
        card = with_earlier_speed(card, models_dir / card_path.name)
        write_card(card, card_path)
        for path in sorted(stage.iterdir(), key=lambda f: f == card_path):
            path.replace(models_dir / path.name)
    print(f"wrote {models_dir / card.file} and {models_dir / card_path.name}")
    return card


def _build(
    ckpt: Checkpoint,
    model_id: str,
    stage: Path,
    variant: str,
    default: bool,
    options: EvalOptions | None,
    painting: Painting | None,
    fp16_weights: bool,
) -> ModelCard:
    trained = exportable(ckpt)
    model = rounded_to_fp16(trained) if fp16_weights else trained
    inputs = graph_inputs(ckpt.arch)
    onnx_path = stage / f"{model_id}.onnx"
    passes = export_onnx(model, onnx_path, inputs=inputs, fp16_weights=fp16_weights)
    diff = require_parity(model, onnx_path, ckpt.arch.size_multiple, inputs=inputs)
    print(f"ONNX parity vs PyTorch (sizes other than the export size): max abs diff {diff:.2e}")
    if fp16_weights:
        cost = parity(trained, onnx_path, ckpt.arch.size_multiple, inputs=inputs)
        print(f"float16 weight storage: outputs within {cost:.2e} of the float32 weights' outputs")
    style = None
    if painting is not None:
        if options is None:
            raise ValueError("a named style needs --data-root: its painting goes into the card's preview")
        style = style_pictures(painting, int(ckpt.config["style_size"]), model_id, stage, options.data_root)
    jpeg_levels = None
    if ckpt.task == "denoise" and options is not None:
        jpeg_levels = measure_jpeg_levels([options.data_root / s for s in ckpt.config.get("train_sets", [])])
    card = build_card(ckpt, onnx_path, model_id, variant, default, passes, diff, style, jpeg_levels)
    card_path = stage / f"{model_id}.json"
    write_card(card, card_path)
    if options is not None:
        if style is not None:
            _write_example(card_path, _example_photo(options, ckpt), stage / style.example)
        card = card.model_copy(update={"quality": measure(card_path, options)})
        write_card(card, card_path)
    return card


def named_styles(ckpt: Checkpoint, names: list[str] | None = None) -> list[tuple[Checkpoint, Painting]]:
    """A multi-style checkpoint cut into one plain Johnson network per painting."""
    paintings = [Painting(**p) for p in ckpt.config["styles"]]
    known = [p.name for p in paintings]
    unknown = sorted(set(names or []) - set(known))
    if unknown:
        raise ValueError(f"no painting {unknown} in {ckpt.config['name']}; it has {known}")
    out = []
    for k, painting in enumerate(paintings):
        if names and painting.name not in names:
            continue
        params = ckpt.params_ema if ckpt.params_ema is not None else ckpt.params
        arch = ArchSpec(ckpt.arch.name, {**ckpt.arch.args, "styles": 1})
        out.append((replace(ckpt, arch=arch, params=single_style(params, k), params_ema=None), painting))
    return out


def style_pictures(painting: Painting, style_side: int, model_id: str, models_dir: Path, data_root: Path) -> StyleInfo:
    """The painting's thumbnail beside the card; the card's style block."""
    path = data_root / painting.image
    preview = f"{model_id}.preview.jpg"
    with Image.open(path) as im:
        thumb = im.convert("RGB")
        thumb.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
        thumb.save(models_dir / preview, quality=88)
    return StyleInfo(
        name=painting.name,
        title=painting.title,
        artist=painting.artist,
        year=painting.year,
        licence=painting.licence,
        source=painting.source,
        image_sha256=file_sha256(path),
        style_side=style_side,
        preview=preview,
        example=f"{model_id}.example.jpg",
    )


def _example_photo(options: EvalOptions, ckpt: Checkpoint) -> Path:
    photo = options.data_root / EXAMPLE_PHOTO
    if photo.exists():
        return photo
    from training.data import list_images

    first_set = (options.sets or ckpt.config.get("eval_sets") or ["Set5"])[0]
    return list_images([options.data_root / first_set])[0]


def _write_example(card_path: Path, photo: Path, out: Path) -> None:
    """The example photograph through the served model (the worker's pipeline)."""
    from imgenhance.cards import read_card
    from imgenhance.params import StyleTransferParams
    from training.evaluate import served
    from worker.codec import Picture
    from worker.pipelines import run_local

    card = read_card(card_path)
    model, tiles = served(card_path)
    assert card.style is not None, "examples are for named styles"
    with Image.open(photo) as im:
        rgb = np.asarray(im.convert("RGB")).astype(np.float32) / 255.0
    params = StyleTransferParams(model=card.id, style=card.style.name, output_format="jpeg", max_side=512)
    result = run_local(params, model, tiles, image=Picture(rgb, None, 8)).pixels
    Image.fromarray(np.round(result * 255).astype(np.uint8)).save(out, quality=88)
