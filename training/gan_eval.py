"""Evaluation of generators: FID and KID against held-out real images, with the
real-vs-real floor, and for digits a classifier's per-class accuracy.

Protocol (stored in every generate card):
- generated: ``eval_images`` images from seeds 0, 1, ... (64 per seed, psi = 1), classes
  balanced (image i of a seed gets class i mod C);
- real: the images held out of training (``holdout``);
- FID and KID in TF-Inception pool3 space (``training.fid``); the floor compares two
  random halves of the held-out images (what two samples of the same distribution
  score at that size);
- digits: a classifier trained here on the training split (``training.digit_classifier``);
  its accuracy on the held-out real digits against its accuracy on 200 digits
  generated for each class.

A card is measured through the served ONNX model (the pipeline's latents and
rendering); an ablation measures its checkpoints in PyTorch with the same code.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imgenhance.cards import ClassAccuracy, GenerateQuality
from training.fid import InceptionFeatures, fid, kid
from training.gan_data import RealSet, load_real

Sampler = Callable[[np.ndarray, np.ndarray | None], np.ndarray]  # (z, labels) -> uint8 (N, C, H, W)
PER_SEED = 64
PER_CLASS = 200
CACHE = Path("runs") / "eval-cache"  # Inception features of real sets, digit classifiers: keyed by content


def latents(seed: int, n: int, size: int) -> np.ndarray:
    from worker.pipelines.generate import latents as served_latents

    return served_latents(seed, n, size)


def generate_set(sample: Sampler, count: int, latent: int, classes: int) -> np.ndarray:
    out = []
    for seed in range(int(np.ceil(count / PER_SEED))):
        z = latents(seed, PER_SEED, latent)
        y = (np.arange(PER_SEED) % classes).astype(np.int64) if classes else None
        out.append(sample(z, y))
    return np.concatenate(out)[:count]


def evaluate_generator(
    sample: Sampler, cfg: dict[str, Any], data_root: Path, count: int | None = None, measured_by: str = ""
) -> GenerateQuality:
    train, held = load_real(data_root, cfg["data"], cfg["holdout"], cfg["resolution"], cfg["channels"])
    classes = len(cfg.get("classes", []))
    count = count or int(cfg.get("eval_images", 2000))
    generated = generate_set(sample, count, int(cfg["latent"]), classes)
    features = InceptionFeatures()
    f_gen, f_real = features(generated), real_features(features, held)
    halves = np.random.default_rng(0).permutation(len(f_real))
    a, b = f_real[halves[: len(halves) // 2]], f_real[halves[len(halves) // 2 :]]
    subset = min(1000, len(f_real) // 2, len(f_gen))
    quality = GenerateQuality(
        protocol=protocol(cfg, count, len(held)),
        fid=round(fid(f_gen, f_real), 3),
        kid=round(kid(f_gen, f_real, subset_size=subset), 5),
        fid_floor=round(fid(a, b), 3),
        kid_floor=round(kid(a, b, subset_size=subset), 5),
        generated_images=count,
        real_images=len(held),
        classifier=_class_accuracy(sample, cfg, train, held, held.labels) if held.labels is not None else None,
        measured_by=measured_by,
    )
    print(quality.headline())
    return quality


def real_features(features: InceptionFeatures, real: RealSet) -> np.ndarray:
    """Inception features of real images, cached by the images' content."""
    import hashlib

    cache = CACHE
    key = hashlib.sha256(real.images.tobytes()).hexdigest()[:20]
    path = cache / f"inception-{key}.npy"
    if path.exists():
        cached: np.ndarray = np.load(path)
        return cached
    out = features(real.images)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def protocol(cfg: dict[str, Any], count: int, real: int) -> dict[str, str | int | float | list[float] | list[str]]:
    return {
        "generated": f"{count} images, seeds 0.. ({PER_SEED} per seed), psi = 1, classes balanced",
        "real": f"{real} held-out images of {cfg['data']}",
        "features": "TF-FID InceptionV3 pool3 (2048-d), bilinear resize to 299 (PyTorch), gray repeated to RGB",
        "fid_floor": "FID between two random halves of the held-out images (FID is biased by set size: the floor "
        "compares N/2 with N/2, the model its generated images with all N)",
        "kid": "unbiased MMD^2, cubic polynomial kernel, 100 subsets",
        "classifier": f"trained on the training split; {PER_CLASS} generated images per class"
        if cfg.get("classes")
        else "n/a",
    }


def _class_accuracy(
    sample: Sampler, cfg: dict[str, Any], train: RealSet, held: RealSet, labels: np.ndarray
) -> ClassAccuracy:
    from training.digit_classifier import cached_classifier, per_class_accuracy

    net = cached_classifier(train, CACHE)
    real = per_class_accuracy(net, held.images, labels)
    names = cfg["classes"]
    generated: dict[int, float] = {}
    for k in range(len(names)):
        z = latents(10_000 + k, PER_CLASS, int(cfg["latent"]))
        images = sample(z, np.full(PER_CLASS, k, np.int64))
        generated[k] = per_class_accuracy(net, images, np.full(PER_CLASS, k))[k]
    ratio = min(generated[k] / max(real[k], 1e-9) for k in generated)
    return ClassAccuracy(
        real={names[k]: round(v, 4) for k, v in real.items()},
        generated={names[k]: round(v, 4) for k, v in generated.items()},
        worst_ratio=round(ratio, 4),
    )


def onnx_sampler(card_path: Path) -> Sampler:
    """The served model (ONNX Runtime, the pipeline's rendering)."""
    from training.evaluate import served
    from worker.pipelines.generate import render

    model, _ = served(card_path)

    def sample(z: np.ndarray, y: np.ndarray | None) -> np.ndarray:
        images = render(model, z, y, None, 0, len(z))  # (N, H, W, C) in [0, 1]
        return np.round(images * 255).astype(np.uint8).transpose(0, 3, 1, 2)

    return sample


def torch_sampler(generator: torch.nn.Module) -> Sampler:
    @torch.no_grad()
    def sample(z: np.ndarray, y: np.ndarray | None) -> np.ndarray:
        out = []
        for start in range(0, len(z), 64):
            labels = torch.from_numpy(y[start : start + 64]) if y is not None else None
            x = generator(torch.from_numpy(z[start : start + 64]), labels)
            out.append(((x.clamp(-1, 1) + 1) * 127.5).round().byte().numpy())
        return np.concatenate(out)

    return sample


def save_samples(sample: Sampler, cfg: dict[str, Any], path: Path, count: int = 64) -> None:
    """A grid of ``count`` images from seed 0 (classes in columns for conditional models)."""
    from PIL import Image

    classes = len(cfg.get("classes", []))
    images = generate_set(sample, count, int(cfg["latent"]), classes)  # (N, C, H, W) uint8
    n, c, h, w = images.shape
    cols = classes if classes and count % classes == 0 else int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    sheet = np.full((rows * (h + 2), cols * (w + 2), c), 255, np.uint8)
    for i, tile in enumerate(images):
        r, k = divmod(i, cols)
        sheet[r * (h + 2) : r * (h + 2) + h, k * (w + 2) : k * (w + 2) + w] = tile.transpose(1, 2, 0)
    scale = max(1, 256 // h)
    picture = Image.fromarray(sheet[..., 0] if c == 1 else sheet)
    picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)
