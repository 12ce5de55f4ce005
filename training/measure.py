"""Measure a model of ``models/`` under its task's protocol, beside its baselines, and
return the card's typed quality block. ``python -m training eval`` and ``export``
call this; nothing else writes a card's figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imgenhance.cards import (
    DenoiseGain,
    DenoiseQuality,
    JpegQuality,
    JpegScores,
    ModelCard,
    Quality,
    Score,
    SRQuality,
    SRScores,
    StrengthCurve,
    read_card,
)


@dataclass(frozen=True)
class EvalOptions:
    data_root: Path
    sets: list[str] | None = None  # default: the training config's eval_sets
    sigmas: list[float] = field(default_factory=lambda: [25.0])  # denoise
    grid: Path | None = None  # real-world SR / style: a picture of the comparison
    measured_by: str = ""  # the command, stored in the card
    gatys_iterations: int = 100  # style: L-BFGS iterations of the reference
    gatys_sets: list[str] = field(default_factory=lambda: ["Set5"])  # style: images the reference runs on
    gatys_images: int = 0  # style: only the first N images of gatys_sets (0 = all)
    generated_images: int | None = None  # generate: images for FID/KID (default: the config's eval_images)


def measure(card_path: Path, options: EvalOptions) -> Quality:
    card = read_card(card_path)
    sets = options.sets or card.training.config.get("eval_sets", ["Set5", "Set14"])
    if card.task == "denoise":
        return _denoise(card_path, sets, options)
    if card.task == "style-transfer":
        from training.style_eval import measure_style

        return measure_style(card_path, sets, options)
    if card.task == "generate":
        from training.gan_eval import evaluate_generator, onnx_sampler, save_samples

        sample = onnx_sampler(card_path)
        if options.grid is not None:
            save_samples(
                sample, card.training.config, options.grid, 80 if card.generator and card.generator.classes else 64
            )
        return evaluate_generator(
            sample, card.training.config, options.data_root, options.generated_images, options.measured_by
        )
    return _super_resolve(card_path, sets, options)


def keep_real_world_lpips(quality: Quality, old: ModelCard, sha256: str) -> Quality:
    """A new quality block keeps the card's ``eval-realworld`` figures (a separate, slower
    run over several models) while they measured the same ONNX file."""
    kept = old.quality.real_world_lpips if isinstance(old.quality, SRQuality) else None
    if isinstance(quality, SRQuality) and kept is not None and kept.onnx_sha256 == sha256:
        return quality.model_copy(update={"real_world_lpips": kept})
    return quality


def _scores(report: dict[str, Any]) -> SRScores:
    results = {
        name: {m: Score(psnr=v["psnr"], ssim=v["ssim"]) for m, v in per.items()}
        for name, per in report["results"].items()
    }
    gain = {name: round(per["model"].psnr - per["bicubic"].psnr, 3) for name, per in results.items()}
    return SRScores(protocol=report["protocol"], results=results, gain_over_bicubic_db=gain)


def _super_resolve(card_path: Path, sets: list[str], options: EvalOptions) -> SRQuality:
    from training import evaluate as ev

    card = read_card(card_path)
    scale = card.scale
    methods = {"model": ev.pipeline_upscaler(card_path), "bicubic": ev.bicubic(scale), "lanczos": ev.lanczos(scale)}
    pairs = ev.load_sets(options.data_root, sets, scale)
    report = ev.evaluate_sr(methods, pairs, scale)
    print(ev.format_table(report))
    real_world = None
    if card.variant == "real-world":
        degraded = ev.degrade_sets(pairs, scale, card.training.config.get("degradation_args"))
        real = ev.evaluate_sr(methods, degraded, scale)
        print("on Real-ESRGAN-degraded inputs (blur, noise, JPEG; fixed seeds):")
        print(ev.format_table(real))
        real_world = _scores(real)
        if options.grid is not None:
            ev.save_comparison(methods, degraded, scale, options.grid)
            print(f"wrote {options.grid}")
    clean = _scores(report)
    return SRQuality(
        protocol=clean.protocol,
        results=clean.results,
        gain_over_bicubic_db=clean.gain_over_bicubic_db,
        real_world_degradation=real_world,
        measured_by=options.measured_by,
    )


def _denoise(card_path: Path, sets: list[str], options: EvalOptions) -> DenoiseQuality:
    from training import evaluate as ev

    at = ev.pipeline_denoiser(card_path)

    def methods(sigma: float) -> dict[str, ev.Denoiser]:
        return {"model": at(sigma), "model_blind": at(None), "nlm": ev.nlm(sigma), "bm3d": ev.bm3d_rgb(sigma)}

    report = ev.evaluate_denoise(methods, ev.load_clean_sets(options.data_root, sets), options.sigmas)
    print(ev.format_denoise_table(report))
    results = {
        name: {sigma: {m: Score(psnr=v["psnr"], ssim=v["ssim"]) for m, v in per.items()} for sigma, per in by.items()}
        for name, by in report["results"].items()
    }
    gains = {
        name: {
            sigma: DenoiseGain(
                vs_bm3d_db=round(per["model"].psnr - per["bm3d"].psnr, 3),
                vs_nlm_db=round(per["model"].psnr - per["nlm"].psnr, 3),
            )
            for sigma, per in by.items()
        }
        for name, by in results.items()
    }
    curve_set = STRENGTH_SET if STRENGTH_SET in sets else sets[-1]
    clean = ev.load_clean_sets(options.data_root, [curve_set])[curve_set]
    noisy_psnr, curve = ev.strength_curve(at, clean, STRENGTH_TRUE_SIGMAS, STRENGTH_TOLD_SIGMAS)
    strength = StrengthCurve(set=curve_set, noisy_psnr=noisy_psnr, psnr=curve)
    print(format_strength(strength))
    if options.grid is not None:
        from training.plots import save_strength_curve

        save_strength_curve(strength.noisy_psnr, strength.psnr, strength.set, options.grid)
    jpeg = JpegQuality(
        protocol={
            "metric": "PSNR (dB) and SSIM, RGB, no border crop, outputs rounded to uint8",
            "compression": "Pillow JPEG at each quality, 4:2:0 (libjpeg tables)",
            "model": "artifacts=jpeg, the quality read from the file's quantisation tables",
            "model_blind": "the blind level",
        },
        results={
            name: {
                q: JpegScores(
                    jpeg=_score(per["jpeg"]), model=_score(per["model"]), model_blind=_score(per["model_blind"])
                )
                for q, per in by.items()
            }
            for name, by in ev.evaluate_jpeg(
                ev.pipeline_jpeg_denoiser(card_path), ev.load_clean_sets(options.data_root, sets), JPEG_QUALITIES
            ).items()
        },
    )
    print(format_jpeg(jpeg))
    return DenoiseQuality(
        protocol=report["protocol"],
        results=results,
        gains=gains,
        strength=strength,
        jpeg=jpeg,
        measured_by=options.measured_by,
    )


STRENGTH_SET = "Set14"  # the issue's; another evaluation set where it is not among them
STRENGTH_TRUE_SIGMAS = [15.0, 25.0, 50.0]
STRENGTH_TOLD_SIGMAS = [0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0]
JPEG_QUALITIES = [10, 20, 30, 50]


def _score(per: dict[str, Any]) -> Score:
    return Score(psnr=per["psnr"], ssim=per["ssim"])


def format_strength(curve: StrengthCurve) -> str:
    told = list(next(iter(curve.psnr.values())))
    lines = [
        f"{curve.set}: PSNR (dB) against the requested sigma",
        "true  noisy  " + " ".join(f"{t:>6s}" for t in told),
    ]
    for true, row in curve.psnr.items():
        lines.append(f"{true:>4s} {curve.noisy_psnr[true]:6.2f}  " + " ".join(f"{row[t]:6.2f}" for t in told))
    return "\n".join(lines)


def format_jpeg(jpeg: JpegQuality) -> str:
    lines = ["JPEG artefacts: PSNR (dB) of the JPEG input and of artifacts=jpeg"]
    for name, by in jpeg.results.items():
        for q, sc in by.items():
            gain = sc.model.psnr - sc.jpeg.psnr
            lines.append(
                f"{name:6s} {q:4s} jpeg {sc.jpeg.psnr:6.2f}  model {sc.model.psnr:6.2f} ({gain:+.2f})"
                f"  blind {sc.model_blind.psnr:6.2f}"
            )
    return "\n".join(lines)
