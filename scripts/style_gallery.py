"""The README's style picture: photographs through every shipped style model.

    python scripts/style_gallery.py [--out docs/images/styles.jpg] [--side 384]

Rows are photographs, columns the named styles (the painting's thumbnail on top), and
a last column for the any-style model given a painting it never saw in training. Every
image goes through the worker's pipeline, as the API would run it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from imgenhance.cards import ModelCard
from imgenhance.catalog import Catalog
from imgenhance.params import StyleTransferParams
from worker.codec import Picture
from worker.pipelines import TileSettings, run_local
from worker.runtime import LoadedModel, load_model

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets"
PHOTOS = ["Set14/zebra.png", "Set5/bird.png", "Set14/pepper.png"]
UNSEEN = "styles/the_scream.jpg"  # held out of the any-style model's training


def square(img: np.ndarray, side: int) -> Image.Image:
    h, w = img.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return Image.fromarray(img[top : top + s, left : left + s]).resize((side, side), Image.Resampling.LANCZOS)


def load(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "styles.jpg", help="(default: %(default)s)")
    p.add_argument("--side", type=int, default=256, help="tile side in pixels (default: 256)")
    p.add_argument("--data-root", type=Path, default=DATA, help="(default: %(default)s)")
    args = p.parse_args()

    catalog = Catalog.load(ROOT / "models")
    named = catalog.styles()
    tiles = TileSettings(512, 24, 1)
    columns: list[tuple[str, Image.Image, ModelCard]] = []
    for card in named:
        assert card.style is not None
        thumb = load(catalog.root / card.style.preview)
        columns.append((card.style.title.split(" (")[0], square(thumb, args.side), card))
    unseen = load(args.data_root / UNSEEN)
    any_card = catalog.arbitrary_style()
    columns.append(("any style: The Scream, unseen", square(unseen, args.side), any_card))

    pad, head = 6, 22
    width = (len(columns) + 1) * (args.side + pad) + pad
    height = (len(PHOTOS) + 1) * (args.side + pad) + pad + head
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    for c, (title, thumb, _) in enumerate(columns, start=1):
        x = pad + c * (args.side + pad)
        draw.text((x, 4), title[:40], fill="black")
        sheet.paste(thumb, (x, head + pad))
    draw.text((pad, 4), "photograph", fill="black")
    models: dict[str, LoadedModel] = {}
    for r, photo_path in enumerate(PHOTOS, start=1):
        photo = load(args.data_root / photo_path)
        y = head + pad + r * (args.side + pad)
        sheet.paste(square(photo, args.side), (pad, y))
        picture = Picture(photo.astype(np.float32) / 255.0, None, 8)
        for c, (_, _, card) in enumerate(columns, start=1):
            if card.id not in models:
                models[card.id] = load_model(card, str(catalog.path(card)), ["CPUExecutionProvider"], 0)
            name = card.style.name if card.style is not None else None
            params = StyleTransferParams(model=card.id, style=name, output_format="png", max_side=512)
            extra = {} if name else {"style_image": Picture(unseen.astype(np.float32) / 255.0, None, 8)}
            out = run_local(params, models[card.id], tiles, image=picture, **extra)
            img = np.round(out.pixels * 255).astype(np.uint8)
            sheet.paste(square(img, args.side), (pad + c * (args.side + pad), y))
        print(f"row {r}: {photo_path}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, quality=90)
    print(f"wrote {args.out} ({sheet.width}x{sheet.height})")


if __name__ == "__main__":
    main()
