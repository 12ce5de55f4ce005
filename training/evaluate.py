"""Evaluation: our models and the classical baselines, side by side in one run.

Super-resolution protocol: HR cropped to a multiple of the scale, LR made with MATLAB
bicubic (``training.imresize``), outputs rounded to uint8, PSNR and SSIM on the Y
channel (BT.601) after cropping ``scale`` pixels from each border. Baselines: bicubic
and Lanczos.

Denoising protocol: additive white Gaussian noise of a stated sigma (0-255 scale) on
the RGB image in float, not clipped, from a fixed seed per image (seed + index);
outputs rounded to uint8; PSNR and SSIM on RGB, no border crop. Baselines: OpenCV
non-local means (``fastNlMeansDenoisingColored``, h = hColor = 0.8 sigma, the best of a
sweep on Set5 at sigma 25; its input is the noisy image clipped to 8 bits) and CBM3D
(``bm3d.bm3d_rgb`` with the true sigma).

Models in ``models/`` are evaluated through the worker's own pipeline (tiling, padding,
level channel): the figures are what the API serves.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from training.data import SRPair, list_images, load_rgb, make_sr_pairs, realworld_pair
from training.imresize import imresize
from training.metrics import crop_border, psnr, ssim, y_channel

Upscaler = Callable[[np.ndarray], np.ndarray]  # HxWx3 uint8 LR -> HxWx3 uint8 SR


def bicubic(scale: int) -> Upscaler:
    return lambda lr: imresize(lr, scale)


def lanczos(scale: int) -> Upscaler:
    def run(lr: np.ndarray) -> np.ndarray:
        h, w = lr.shape[:2]
        return np.asarray(Image.fromarray(lr).resize((w * scale, h * scale), Image.Resampling.LANCZOS))

    return run


def sr_protocol(scale: int) -> dict[str, Any]:
    return {
        "metric": "PSNR (dB) and SSIM",
        "channel": "Y (ITU-R BT.601, 16-235)",
        "crop_border": scale,
        "degradation": "MATLAB-style bicubic downsampling with antialiasing",
        "output_rounding": "uint8",
    }


def score_pair(sr: np.ndarray, pair: SRPair, scale: int) -> tuple[float, float]:
    assert sr.shape == pair.hr.shape, f"{pair.name}: output {sr.shape} but HR is {pair.hr.shape}"
    a = crop_border(y_channel(sr), scale)
    b = crop_border(y_channel(pair.hr), scale)
    return psnr(a, b), ssim(a, b)


def evaluate_sr(
    methods: dict[str, Upscaler],
    sets: dict[str, list[SRPair]],
    scale: int,
    progress: bool = True,
) -> dict[str, Any]:
    """Mean PSNR/SSIM per set and method, plus the per-image figures."""
    results: dict[str, Any] = {}
    for set_name, pairs in sets.items():
        per_method: dict[str, Any] = {}
        for method, fn in methods.items():
            scores = [
                score_pair(fn(p.lr), p, scale)
                for p in tqdm(pairs, desc=f"{set_name}/{method}", disable=None if progress else True, leave=False)
            ]
            per_method[method] = {
                "psnr": round(float(np.mean([s[0] for s in scores])), 3),
                "ssim": round(float(np.mean([s[1] for s in scores])), 4),
                "per_image": {p.name: round(s[0], 3) for p, s in zip(pairs, scores, strict=True)},
            }
        results[set_name] = per_method
    return {"protocol": sr_protocol(scale), "scale": scale, "results": results}


def load_sets(data_root: Path, names: list[str], scale: int) -> dict[str, list[SRPair]]:
    return {name: make_sr_pairs(list_images([_set_path(data_root, name)]), scale) for name in names}


def pipeline_upscaler(card_path: Path) -> Upscaler:
    """A shipped super-resolve model through the worker's pipeline, as the API runs it."""
    return served_upscaler(*served(card_path))


def served_upscaler(model: Any, tiles: Any) -> Upscaler:
    """A model ``served`` loaded, through the worker's pipeline (tiles and all)."""
    from imgenhance.params import SuperResolveParams
    from worker.codec import Picture
    from worker.pipelines import run_local

    params = SuperResolveParams(model=model.card.id, scale=model.card.scale, output_format="png")  # type: ignore[arg-type]

    def run(lr: np.ndarray) -> np.ndarray:
        out = run_local(params, model, tiles, image=Picture(lr.astype(np.float32) / 255.0, None, 8)).pixels
        return np.round(out * 255.0).astype(np.uint8)

    return run


def served(card_path: Path) -> tuple[Any, Any]:
    """A model of ``models/`` loaded as a worker loads it (checksum, warm-up), on the CPU,
    with the service's default tile settings (one tile per batch)."""
    from imgenhance.cards import read_card
    from imgenhance.settings import Settings
    from worker.pipelines import TileSettings
    from worker.runtime import load_model

    card = read_card(card_path)
    model = load_model(card, str(Path(card_path).parent / card.file), ["CPUExecutionProvider"], 0)
    return model, replace(TileSettings.from_settings(Settings()), batch=1)


# -- denoising ---------------------------------------------------------------------

Denoiser = Callable[[np.ndarray], np.ndarray]  # HxWx3 float32 noisy (unclipped) -> HxWx3 uint8
NLM_H_PER_SIGMA = 0.8


def add_noise(clean: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, sigma / 255.0, clean.shape)
    return (clean.astype(np.float32) / 255.0 + noise.astype(np.float32)).astype(np.float32)


def _to8(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def nlm(sigma: float) -> Denoiser:
    import cv2

    h = NLM_H_PER_SIGMA * sigma
    return lambda noisy: cv2.fastNlMeansDenoisingColored(_to8(noisy), None, h, h, 7, 21)


def bm3d_rgb(sigma: float) -> Denoiser:
    import bm3d

    return lambda noisy: _to8(bm3d.bm3d_rgb(noisy.astype(np.float64), sigma_psd=sigma / 255.0))


def pipeline_denoiser(card_path: Path) -> Callable[[float | None], Denoiser]:
    """A shipped denoiser through the worker's pipeline; sigma None = blind mode."""
    from imgenhance.params import DenoiseParams
    from worker.codec import Picture
    from worker.pipelines import run_local

    model, tiles = served(card_path)

    def at(sigma: float | None) -> Denoiser:
        params = DenoiseParams(model=model.card.id, sigma=sigma, output_format="png")
        return lambda noisy: _to8(run_local(params, model, tiles, image=Picture(noisy, None, 8)).pixels)

    return at


def pipeline_jpeg_denoiser(card_path: Path) -> Callable[[bool], Callable[[bytes], np.ndarray]]:
    """``artifacts=jpeg`` through the worker's pipeline on a JPEG file's bytes, decoded as
    a worker decodes them (its quality read from the tables); ``blind``: that quality
    not used."""
    from imgenhance.params import DenoiseParams
    from worker.codec import decode
    from worker.pipelines import run_local

    model, tiles = served(card_path)

    def mode(blind: bool) -> Callable[[bytes], np.ndarray]:
        params = DenoiseParams(model=model.card.id, artifacts="noise" if blind else "jpeg", output_format="png")
        return lambda data: _to8(run_local(params, model, tiles, image=decode(data)).pixels)

    return mode


def jpeg_bytes(image: np.ndarray, quality: int) -> bytes:
    """Pillow's encoder at ``quality`` (4:2:0, libjpeg's tables), as most files are made."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def evaluate_jpeg(
    mode: Callable[[bool], Callable[[bytes], np.ndarray]],
    sets: dict[str, list[tuple[str, np.ndarray]]],
    qualities: list[int],
) -> dict[str, Any]:
    """set -> f"q{q}" -> {jpeg, model (quality from the file), model_blind}: PSNR/SSIM against the original."""
    from worker.codec import decode

    results: dict[str, Any] = {}
    for set_name, images in sets.items():
        for q in qualities:
            files = [jpeg_bytes(clean, q) for _, clean in images]
            per: dict[str, Any] = {"jpeg": _scores([_to8(decode(f).pixels) for f in files], images)}
            for name, blind in (("model", False), ("model_blind", True)):
                fn = mode(blind)
                per[name] = _scores([fn(f) for f in tqdm(files, desc=f"{set_name}/q{q}/{name}", leave=False)], images)
            results.setdefault(set_name, {})[f"q{q}"] = per
    return results


def strength_curve(
    at: Callable[[float | None], Denoiser],
    images: list[tuple[str, np.ndarray]],
    true_sigmas: list[float],
    told_sigmas: list[float],
    seed: int = 0,
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """(true sigma -> noisy PSNR, true sigma -> told sigma or "blind" -> PSNR), the denoise protocol's noise."""
    noisy_psnr: dict[str, float] = {}
    curve: dict[str, dict[str, float]] = {}
    for true in true_sigmas:
        noisy = [add_noise(clean, true, seed + i) for i, (_, clean) in enumerate(images)]
        noisy_psnr[f"{true:g}"] = _scores([_to8(n) for n in noisy], images)["psnr"]
        row: dict[str, float] = {}
        for told in [*told_sigmas, None]:
            fn = at(told)
            outs = [fn(n) for n in tqdm(noisy, desc=f"true {true:g} told {told}", leave=False)]
            row["blind" if told is None else f"{told:g}"] = _scores(outs, images)["psnr"]
        curve[f"{true:g}"] = row
    return noisy_psnr, curve


def denoise_protocol(sigmas: list[float], seed: int) -> dict[str, Any]:
    return {
        "metric": "PSNR (dB) and SSIM",
        "channel": "RGB",
        "crop_border": 0,
        "noise": "additive white Gaussian, float, not clipped",
        "sigmas": sigmas,
        "seed": f"{seed} + image index",
        "output_rounding": "uint8",
        "nlm": f"OpenCV fastNlMeansDenoisingColored, h = hColor = {NLM_H_PER_SIGMA} sigma, 7/21",
        "bm3d": "bm3d.bm3d_rgb with the true sigma",
    }


def evaluate_denoise(
    methods_at: Callable[[float], dict[str, Denoiser]],
    sets: dict[str, list[tuple[str, np.ndarray]]],
    sigmas: list[float],
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for set_name, images in sets.items():
        for sigma in sigmas:
            noisy = [add_noise(clean, sigma, seed + i) for i, (_, clean) in enumerate(images)]
            per_method: dict[str, Any] = {"noisy": _scores([_to8(n) for n in noisy], images)}
            for method, fn in methods_at(sigma).items():
                outs = [
                    fn(n)
                    for n in tqdm(
                        noisy,
                        desc=f"{set_name}/sigma{sigma:g}/{method}",
                        disable=None if progress else True,
                        leave=False,
                    )
                ]
                per_method[method] = _scores(outs, images)
            results.setdefault(set_name, {})[f"sigma{sigma:g}"] = per_method
    return {"protocol": denoise_protocol(sigmas, seed), "results": results}


def _scores(outs: list[np.ndarray], images: list[tuple[str, np.ndarray]]) -> dict[str, Any]:
    scores = [(psnr(o, c), ssim(o, c)) for o, (_, c) in zip(outs, images, strict=True)]
    return {
        "psnr": round(float(np.mean([s[0] for s in scores])), 3),
        "ssim": round(float(np.mean([s[1] for s in scores])), 4),
        "per_image": {name: round(sc[0], 3) for (name, _), sc in zip(images, scores, strict=True)},
    }


def load_clean_sets(data_root: Path, names: list[str]) -> dict[str, list[tuple[str, np.ndarray]]]:
    return {name: [(p.stem, load_rgb(p)) for p in list_images([_set_path(data_root, name)])] for name in names}


def _set_path(data_root: Path, name: str) -> Path:
    """A set name under the data root, or any folder given by path (held-out photos)."""
    path = Path(name)
    return path if path.is_absolute() or path.exists() else data_root / name


def format_denoise_table(report: dict[str, Any]) -> str:
    lines = [f"protocol: {report['protocol']}"]
    for set_name, by_sigma in report["results"].items():
        for sigma, per_method in by_sigma.items():
            ref = per_method.get("bm3d", {}).get("psnr")
            for method, m in per_method.items():
                gain = f"  ({m['psnr'] - ref:+.2f} dB vs BM3D)" if ref is not None and method != "bm3d" else ""
                lines.append(f"{set_name:8s} {sigma:8s} {method:11s} PSNR {m['psnr']:7.3f}  SSIM {m['ssim']:.4f}{gain}")
    return "\n".join(lines)


def degrade_sets(
    sets: dict[str, list[SRPair]], scale: int, degradation_args: dict[str, Any] | None = None
) -> dict[str, list[SRPair]]:
    """Real-world inputs: each LR re-made by Real-ESRGAN's pipeline from a fixed seed,
    with the ranges the model was trained on."""
    from training.sources import REALWORLD_SEED

    return {
        name: [realworld_pair(p, scale, REALWORLD_SEED + i, degradation_args) for i, p in enumerate(pairs)]
        for name, pairs in sets.items()
    }


def save_comparison(
    methods: dict[str, Upscaler], sets: dict[str, list[SRPair]], scale: int, path: Path, count: int = 4, size: int = 192
) -> None:
    """Centre crops: the (degraded) input upscaled by each method, then the ground truth."""
    from training.plots import centre_crop, save_grid

    pairs = [p for ps in sets.values() for p in ps][:count]
    rows = [[centre_crop(fn(p.lr), size) for fn in methods.values()] + [centre_crop(p.hr, size)] for p in pairs]
    save_grid(rows, [*methods, "ground truth"], path)


def format_table(report: dict[str, Any]) -> str:
    lines = [f"protocol: {report['protocol']}"]
    for set_name, per_method in report["results"].items():
        base = per_method.get("bicubic", {}).get("psnr")
        for method, m in per_method.items():
            gain = f"  ({m['psnr'] - base:+.2f} dB vs bicubic)" if base is not None and method != "bicubic" else ""
            lines.append(f"{set_name:8s} {method:10s} PSNR {m['psnr']:7.3f}  SSIM {m['ssim']:.4f}{gain}")
    return "\n".join(lines)
