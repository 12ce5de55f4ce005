"""Mutation run: put one named fault into a copy of the code, run the tests that should
notice, and count how many faults they catch.

    python scripts/mutate.py                 # every fault (make mutate)
    python scripts/mutate.py --list          # the faults, without running anything
    python scripts/mutate.py --only cmyk-inverted orientation-6-wrong-way

Each fault is an exact snippet of a source file and its replacement, the tests to run
(``pytest -x -q``), and why the fault matters. The repository is copied once (without
``.venv`` and ``.git``) into a temporary folder, so edits to the working tree during a
run change nothing; the same interpreter runs the tests with ``PYTHONPATH`` pointing at
the copy, and the gateway and worker processes the end-to-end tests start inherit it.
Before any fault, the selected tests run once on the unchanged copy and must pass.

A fault whose snippet is not found exactly once is reported as "not applicable" (the
code moved): it counts neither as caught nor as survived, and says the list needs
updating. Not part of CI: it takes several minutes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IGNORE = shutil.ignore_patterns(
    ".venv", ".git", "runs", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "*.egg-info"
)


@dataclass(frozen=True)
class Fault:
    name: str
    file: str
    original: str
    replacement: str
    tests: tuple[str, ...]
    why: str


CODEC = "tests/worker/test_codec.py"
TILING = "tests/worker/test_tiling.py"
JOBS = "tests/app/test_jobs_e2e.py"
QUALITY = "tests/app/test_quality_e2e.py"
BAD_INPUT = "tests/app/test_bad_input_e2e.py"
RESILIENCE = "tests/app/test_resilience_e2e.py"
CATALOG = "tests/imgenhance/test_settings_catalog.py"
EVAL = "tests/training/test_eval_protocol.py"
TENANCY = "tests/app/test_tenancy_contract_e2e.py"
HOSTILE = "tests/app/test_hostile_corpus_e2e.py"
RQWORKER = "tests/worker/test_rqworker.py"
STORE = "tests/app/test_store.py"
WEBHOOKS = "tests/app/test_webhooks_idempotency_e2e.py"
METRICS = "tests/training/test_imresize_metrics.py"
PARITY = "tests/training/test_export_parity.py"
STYLE_PIPELINE = "tests/worker/test_style_pipeline.py"
STYLE_E2E = "tests/app/test_style_e2e.py"
STYLE_TRAINING = "tests/training/test_style.py::test_gram_is_normalised_by_channels_and_pixels"
PRETRAINED = "tests/training/test_pretrained.py"
GENERATE_PIPELINE = "tests/worker/test_generate_pipeline.py"
GAN_TRAINING = "tests/training/test_gan.py"
NCNN = "tests/training/test_ncnn.py"
NCNN_ENGINE = "tests/worker/test_ncnn_engine.py"
DENOISE_PIPELINE = "tests/worker/test_denoise_pipeline.py"
DEGRADATIONS = "tests/training/test_degradations_losses.py"

FAULTS: list[Fault] = [
    # -- the faults of issue 7's table ------------------------------------------------
    Fault(
        "parity-returns-zero",
        "training/export.py",
        "            worst = diff\n    return worst",
        "            worst = diff\n    return 0.0",
        (PARITY,),
        "a graph that computes something else than its model would ship",
    ),
    Fault(
        "prelu-rewrite-one-plus-a",
        "imgenhance/onnx_passes.py",
        '("1-a", 1.0 - slope),',
        '("1-a", 1.0 + slope),',
        (PARITY,),
        "the export's graph pass would change what every PReLU model computes",
    ),
    Fault(
        "score-pair-rgb-no-crop",
        "training/evaluate.py",
        "    a = crop_border(y_channel(sr), scale)\n    b = crop_border(y_channel(pair.hr), scale)",
        "    a = sr\n    b = pair.hr",
        (EVAL,),
        "every card's figures would follow another protocol than the one they state",
    ),
    Fault(
        "validator-rgb-no-crop",
        "training/sources.py",
        "return psnr(crop_border(y_channel(sr), self.scale), crop_border(y_channel(pair.hr), self.scale))",
        "return psnr(sr, pair.hr)",
        (EVAL,),
        "best.pt would be picked by another score than the one the cards report",
    ),
    Fault(
        "orientation-6-wrong-way",
        "worker/codec.py",
        "6: lambda a: np.swapaxes(a, 0, 1)[:, ::-1],",
        "6: lambda a: np.swapaxes(a, 0, 1)[::-1],",
        (CODEC,),
        "16-bit photos taken with the camera turned would come back upside down",
    ),
    Fault(
        "cmyk-inverted",
        "worker/codec.py",
        '        im = im.convert("RGBA" if "A" in mode else "RGB")  # CMYK',
        '        im = ImageOps.invert(im.convert("RGB")) if mode == "CMYK" '
        'else im.convert("RGBA" if "A" in mode else "RGB")  # CMYK',
        (CODEC,),
        "print-ready CMYK files would come back as negatives",
    ),
    Fault(
        "icc-dropped-for-jpeg-and-webp",
        "worker/codec.py",
        'options: dict[str, object] = {"icc_profile": pic.icc_profile} if pic.icc_profile else {}',
        'options: dict[str, object] = {"icc_profile": pic.icc_profile} if pic.icc_profile and fmt == "png" else {}',
        (CODEC, f"{JOBS}::test_icc_profile_is_kept"),
        "wide-gamut photos would shift colour in jpeg and webp outputs",
    ),
    Fault(
        "tiles-overlap-one-pixel-less",
        "worker/tiling.py",
        "    tile = math.ceil((length + (n - 1) * overlap) / n)",
        "    tile = math.ceil((length + (n - 1) * (overlap - 1)) / n)",
        (TILING,),
        "tiles would overlap less than the model's receptive field needs: visible seams",
    ),
    Fault(
        "palette-transparency-ignored",
        "worker/codec.py",
        'im = im.convert("RGBA" if "transparency" in im.info else "RGB")',
        'im = im.convert("RGB")',
        (CODEC,),
        "transparent GIF/PNG palette images would get an opaque background",
    ),
    Fault(
        "alpha16-decoded-as-8-bits",
        "worker/codec.py",
        "alpha = arr[..., 3].astype(np.float32) / 65535.0 if arr.shape[2] == 4 else None",
        "alpha = (arr[..., 3] >> 8).astype(np.float32) / 255.0 if arr.shape[2] == 4 else None",
        (CODEC,),
        "16-bit alpha would lose its low byte: banding in soft masks",
    ),
    Fault(
        "alpha16-encoded-as-8-bits",
        "worker/codec.py",
        "planes.append(_quantise(pic.alpha, 16)[..., None])",
        "planes.append((_quantise(pic.alpha, 8).astype(np.uint16) * 257)[..., None])",
        (CODEC,),
        "16-bit outputs would carry an 8-bit alpha",
    ),
    Fault(
        "tile-blend-ignores-column-weights",
        "worker/tiling.py",
        "dst[:, rows, cols] += band * (wy[rows][:, None] * wx[cols][None, :])",
        "dst[:, rows, cols] += band * wy[rows][:, None]",
        (f"{QUALITY}::test_tiled_result_matches_the_model_run_on_the_whole_image",),
        "images larger than a tile would come back with bright seams (the API test alone must see it)",
    ),
    # -- worker -----------------------------------------------------------------------
    Fault(
        "jpeg-flattens-over-black",
        "worker/codec.py",
        "pixels = pixels * alpha[..., None] + (1.0 - alpha[..., None])",
        "pixels = pixels * alpha[..., None]",
        (CODEC,),
        "transparent areas of a jpeg output would turn black",
    ),
    Fault(
        "quantise-truncates",
        "worker/codec.py",
        "np.round(np.clip(x, 0.0, 1.0) * peak)",
        "np.floor(np.clip(x, 0.0, 1.0) * peak)",
        (CODEC,),
        "every output would be half a level darker; lossless round trips would not be",
    ),
    Fault(
        "webp-lossless-by-default-lost",
        "worker/codec.py",
        "options.update(lossless=True, quality=80) if quality is None",
        "options.update(quality=80) if quality is None",
        (CODEC,),
        "webp outputs would be lossy although the API promises lossless by default",
    ),
    Fault(
        "gray16-scaled-by-65536",
        "worker/codec.py",
        "return Picture((np.clip(arr, 0, 65535) / 65535.0)[..., None], None, 16, icc)",
        "return Picture((np.clip(arr, 0, 65535) / 65536.0)[..., None], None, 16, icc)",
        (CODEC,),
        "16-bit gray images would lose their top level and shift slightly",
    ),
    Fault(
        "png16-icc-dropped",
        "worker/codec.py",
        "return _with_icc(buf.tobytes(), pic.icc_profile)",
        "return buf.tobytes()",
        (CODEC,),
        "16-bit colour PNGs would lose their colour profile",
    ),
    Fault(
        "tile-weights-not-normalised",
        "worker/tiling.py",
        "return [w / total[start * scale : start * scale + w.size] for start, w in "
        "zip(plan.starts, weights, strict=True)]",
        "return weights",
        (TILING,),
        "blended overlaps would be brighter or darker than the rest",
    ),
    Fault(
        "tile-ramp-without-margin",
        "worker/tiling.py",
        "    margin = overlap_out / 4",
        "    margin = 0.0",
        (TILING, f"{QUALITY}::test_tiled_result_matches_the_model_run_on_the_whole_image"),
        "tile edges, where the model saw zero padding, would get weight in the blend",
    ),
    Fault(
        "progress-reports-one-batch-late",
        "worker/tiling.py",
        "progress(first + len(chunk), total)",
        "progress(first, total)",
        (TILING,),
        "progress would never reach 1 and cancel checks would lag a batch",
    ),
    Fault(
        "bleed-does-nothing",
        "worker/alpha.py",
        "return np.where(hole[..., None], fill, rgb).astype(rgb.dtype)",
        "return rgb",
        ("tests/worker/test_alpha.py", f"{JOBS}::test_rgba_keeps_alpha_without_dark_halo"),
        "upscaled alpha edges would get dark halos",
    ),
    Fault(
        "bleed-fills-with-the-overall-average",
        "worker/alpha.py",
        "fill = np.where(w > eps, p / np.maximum(w, eps), coarse)",
        "fill = coarse",
        ("tests/worker/test_alpha.py",),
        "hidden colour would be the whole image's average, not the nearby edge's: coloured fringes",
    ),
    Fault(
        "model-checksum-not-checked",
        "worker/runtime.py",
        "if file_sha256(Path(path)) != card.sha256:",
        "if False:",
        ("tests/worker/test_runtime.py",),
        "a worker would serve weights its card does not describe",
    ),
    # -- app ----------------------------------------------------------------------------
    Fault(
        "probe-ignores-orientation",
        "app/probe.py",
        "if orientation in (5, 6, 7, 8):",
        "if orientation in ():",
        (f"{BAD_INPUT}::test_output_limit_counts_the_upright_size_of_a_rotated_photo",),
        "the size the gateway records and reports for a turned photo would be the stored one",
    ),
    Fault(
        "probe-ignores-palette-transparency",
        "app/probe.py",
        'has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info',
        'has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La")',
        (f"{JOBS}::test_palette_transparency_becomes_alpha",),
        "transparent palette images would default to png instead of webp",
    ),
    Fault(
        "probe-accepts-animations",
        "app/probe.py",
        'if getattr(im, "n_frames", 1) > 1:',
        "if False:",
        (f"{BAD_INPUT}::test_animated_gif_is_415",),
        "animated images would be accepted and silently cut to one frame",
    ),
    Fault(
        "probe-skips-full-decode",
        "app/probe.py",
        "        im.load()\n    except Exception as exc:  # truncated",
        "        pass\n    except Exception as exc:  # truncated",
        (f"{BAD_INPUT}::test_truncated_image_is_422",),
        "damaged uploads would be queued and fail later in a worker instead of a 422 now",
    ),
    Fault(
        "upload-limit-without-multipart-slack",
        "app/limits.py",
        "return self.max_bytes * UPLOADS_PER_REQUEST.get(path, 1) + MULTIPART_SLACK",
        "return self.max_bytes * UPLOADS_PER_REQUEST.get(path, 1)",
        (f"{BAD_INPUT}::test_upload_of_exactly_the_byte_limit_is_accepted",),
        "an upload of exactly the advertised limit would be refused",
    ),
    Fault(
        "chunked-upload-not-counted",
        "app/limits.py",
        'received += len(message.get("body", b""))',
        'received = len(message.get("body", b""))',
        (f"{BAD_INPUT}::test_chunked_upload_is_cut_off_while_still_arriving",),
        "a chunked upload of any size would be spooled to disk",
    ),
    Fault(
        "problem-type-missing",
        "app/errors.py",
        '"type": f"/problems/{code}",',
        '"type": "about:blank",',
        (f"{BAD_INPUT}::test_not_an_image_is_415",),
        "clients branching on the problem type would break",
    ),
    Fault(
        "queue-full-off-by-one",
        "app/store.py",
        "if queue.count >= self.settings.max_queue_length:",
        "if queue.count > self.settings.max_queue_length:",
        (f"{RESILIENCE}::test_queue_full_is_503_and_readyz_needs_a_worker",),
        "the queue would take one job more than configured",
    ),
    Fault(
        "prefer-wait-not-capped",
        "app/submit.py",
        "return min(float(match.group(1)), cap) if match else 0.0",
        "return float(match.group(1)) if match else 0.0",
        (f"{RESILIENCE}::test_prefer_wait_is_capped_by_max_wait_seconds",),
        "a client could hold a gateway connection open for as long as it asks",
    ),
    Fault(
        "default-scale-is-2",
        "app/routes/super_resolve.py",
        "scale if scale or names_a_model else 4",
        "scale if scale or names_a_model else 2",
        (f"{JOBS}::test_sync_wait_returns_the_4x_image",),
        "the documented default (x4) would not be what runs",
    ),
    Fault(
        "quality-accepted-for-png",
        "app/submit.py",
        'if quality is not None and chosen == "png":',
        "if False:",
        (f"{BAD_INPUT}::test_invalid_parameters_are_422",),
        "a quality that cannot apply would be silently ignored",
    ),
    # -- imgenhance ---------------------------------------------------------------------
    Fault(
        "catalog-ignores-the-default-flag",
        "imgenhance/catalog.py",
        "sorted(candidates, key=lambda c: (not c.default, c.id))[0]",
        "sorted(candidates, key=lambda c: c.id)[0]",
        (f"{CATALOG}::test_the_default_card_wins_over_one_that_sorts_first",),
        "adding a model could silently change which one serves the default",
    ),
    Fault(
        "catalog-scale-mismatch-accepted",
        "imgenhance/catalog.py",
        "if scale is not None and card.scale != scale:",
        "if False:",
        (f"{CATALOG}::test_catalog_resolves_defaults_names_variants_and_scales",),
        "scale=4 with an x2 model would run x2",
    ),
    Fault(
        "settings-tile-overlap-half-allowed",
        "imgenhance/settings.py",
        "if self.tile_overlap * 2 >= self.tile_size:",
        "if self.tile_overlap * 2 > self.tile_size:",
        (f"{CATALOG}::test_tile_overlap_must_leave_room",),
        "an overlap of half a tile makes the tiler loop without progress",
    ),
    Fault(
        "settings-public-bind-allowed",
        "imgenhance/settings.py",
        '    if host == "localhost":\n        return True\n    try:',
        "    if host:\n        return True\n    try:",
        (f"{CATALOG}::test_public_bind_without_keys_is_refused",),
        "the service would serve anonymously on a public address",
    ),
    # -- training metrics, resize, export -----------------------------------------------
    Fault(
        "y-channel-without-offset",
        "training/metrics.py",
        "return 16.0 + rgb @ np.array([65.481, 128.553, 24.966])",
        "return rgb @ np.array([65.481, 128.553, 24.966])",
        (METRICS, EVAL),
        "SSIM on Y would not match the published convention",
    ),
    Fault(
        "crop-border-ignored",
        "training/metrics.py",
        "return img[border:-border, border:-border] if border > 0 else img",
        "return img",
        (METRICS, EVAL),
        "every PSNR would include the border the literature crops",
    ),
    Fault(
        "ssim-window-sigma-2",
        "training/metrics.py",
        "def _gaussian_window(size: int = 11, sigma: float = 1.5)",
        "def _gaussian_window(size: int = 11, sigma: float = 2.0)",
        (METRICS, EVAL),
        "SSIM would not be Wang et al.'s and not comparable with published tables",
    ),
    Fault(
        "bicubic-kernel-a-075",
        "training/imresize.py",
        "return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2)",
        "return (1.25 * ax3 - 2.25 * ax2 + 1) * (ax <= 1) + (-0.75 * ax3 + 3.75 * ax2 - 6 * ax + 3)",
        (METRICS, EVAL),
        "low-resolution inputs would not be MATLAB's: figures not comparable with the literature",
    ),
    Fault(
        "imresize-without-antialias",
        "training/imresize.py",
        "    if scale < 1:  # antialias",
        "    if False:  # antialias",
        (METRICS, EVAL),
        "downscaled inputs would alias, unlike MATLAB's",
    ),
    Fault(
        "imresize-truncates",
        "training/imresize.py",
        "return np.clip(np.round(out), 0, 255).astype(np.uint8)",
        "return np.clip(out, 0, 255).astype(np.uint8)",
        (METRICS, EVAL),
        "uint8 results would be biased half a level down",
    ),
    Fault(
        "parity-tolerance-1",
        "imgenhance/cards.py",
        "PARITY_TOLERANCE = 1e-4",
        "PARITY_TOLERANCE = 1.0",
        (PARITY,),
        "the parity check would let a wrong graph through",
    ),
    Fault(
        "validator-output-not-rounded",
        "training/sources.py",
        ".mul(255).round().byte()",
        ".mul(255).byte()",
        (EVAL,),
        "validation would truncate outputs, unlike the evaluation that writes the cards",
    ),
    # -- style transfer (issue 8) -------------------------------------------------------
    Fault(
        "style-strength-ignored",
        "worker/pipelines/style_transfer.py",
        "out = params.strength * out + (1.0 - params.strength) * x",
        "out = out",
        (STYLE_PIPELINE, f"{STYLE_E2E}::test_strength_zero_gives_the_photo_back"),
        "strength would do nothing for named styles",
    ),
    Fault(
        "any-style-strength-not-passed",
        "worker/pipelines/style_transfer.py",
        "strength=np.array([params.strength], np.float32)",
        "strength=np.array([1.0], np.float32)",
        (STYLE_PIPELINE,),
        "strength would do nothing for uploaded styles",
    ),
    Fault(
        "preserve-color-ignored",
        "worker/pipelines/style_transfer.py",
        "    if params.preserve_color:\n        stylised = keep_colours(stylised, work)",
        "    if False:\n        stylised = keep_colours(stylised, work)",
        (STYLE_PIPELINE,),
        "preserve_color would be silently ignored",
    ),
    Fault(
        "keep-size-ignored",
        "worker/pipelines/style_transfer.py",
        "    if params.keep_size:\n        stylised = resize(stylised, *size)",
        "    if False:\n        stylised = resize(stylised, *size)",
        (STYLE_PIPELINE,),
        "results would come back at the stylisation size, not the photo's",
    ),
    Fault(
        "style-image-read-at-its-own-size",
        "worker/pipelines/style_transfer.py",
        "style_w, style_h = fit((style_pic.width, style_pic.height), params.style_side, upscale=True)",
        "style_w, style_h = style_pic.width, style_pic.height",
        (STYLE_PIPELINE,),
        "style_side would do nothing: the stroke scale would depend on the upload's size",
    ),
    Fault(
        "style-alpha-not-bled",
        "worker/pipelines/style_transfer.py",
        "    colour = rgb(picture)\n    if picture.alpha is not None and float(picture.alpha.min()) < 1.0:",
        "    colour = rgb(picture)\n    if False:",
        (STYLE_PIPELINE,),
        "hidden black under transparent pixels would bleed into visible edges",
    ),
    Fault(
        "style-and-style-image-both-accepted",
        "app/routes/style_transfer.py",
        "if style is not None and style_image is not None:",
        "if False:",
        (f"{STYLE_E2E}::test_bad_style_requests_are_422",),
        "an ambiguous request would silently ignore one of its styles",
    ),
    Fault(
        "gram-not-normalised-by-pixels",
        "training/style_losses.py",
        "return f @ f.transpose(1, 2) / (c * h * w)",
        "return f @ f.transpose(1, 2) / (c * h)",
        (STYLE_TRAINING,),
        "the style loss would depend on image size, so paintings and crops would not compare",
    ),
    Fault(
        "weights-hash-not-checked",
        "training/pretrained.py",
        "    if digest != spec.sha256:",
        "    if False:",
        (PRETRAINED,),
        "an altered weights file would be unpickled and used",
    ),
    Fault(
        "unpickler-admits-any-global",
        "training/pretrained.py",
        "        if target is None:\n            raise WeightsError",
        "        if target is None:\n"
        "            return super().find_class(module, name)\n"
        "            raise WeightsError",
        (PRETRAINED,),
        "a pickle in a downloaded package could run code",
    ),
    Fault(
        "vgg-kernels-transposed",
        "training/pretrained.py",
        "kernel.transpose(3, 2, 0, 1)",
        "kernel.transpose(3, 2, 1, 0)",
        (PRETRAINED,),
        "every loss built on VGG16 would see transposed filters",
    ),
    # -- generate (issue 9) and the ncnn importer (issue 10) ------------------------------
    Fault(
        "truncation-ignored",
        "worker/pipelines/generate.py",
        "images = render(model, params.truncation * start, y, progress, 0, params.n)",
        "images = render(model, start, y, progress, 0, params.n)",
        (GENERATE_PIPELINE,),
        "truncation would be accepted and do nothing",
    ),
    Fault(
        "classes-not-cycled",
        "worker/pipelines/generate.py",
        "index = np.arange(params.n) % classes if params.label is None",
        "index = np.zeros(params.n, np.int64) if params.label is None",
        (GENERATE_PIPELINE,),
        "a grid without a class would show one class only",
    ),
    Fault(
        "generator-step-without-diffaugment",
        "training/train_gan.py",
        "        d_fake = self.d(self.augment(fake), y_fake, level, alpha)\n        self.d.requires_grad_(True)",
        "        d_fake = self.d(fake, y_fake, level, alpha)\n        self.d.requires_grad_(True)",
        (f"{GAN_TRAINING}::test_diffaugment_is_applied_to_real_and_fake_in_both_steps",),
        "the generator would learn to reproduce the augmentations (DiffAugment's own failure case)",
    ),
    Fault(
        "collapse-check-ignores-classes",
        "training/train_gan.py",
        "same = torch.ones_like(dist, dtype=torch.bool) if labels is None else labels[:, None] == labels[None, :]",
        "same = torch.ones_like(dist, dtype=torch.bool)",
        (f"{GAN_TRAINING}::test_a_conditional_generator_that_ignores_its_latent_has_no_diversity",),
        "a digits generator that ignores its latent went unflagged (seen on a real run)",
    ),
    Fault(
        "classifier-undertrained-on-small-sets",
        "training/digit_classifier.py",
        "epochs = max(epochs, -(-min_steps // batches_per_epoch))",
        "epochs = epochs",
        (f"{GAN_TRAINING}::test_progressive_diffaugment_resume_transfer_with_frozen_d_and_export",),
        "a judge that cannot read real digits would blame the generator",
    ),
    Fault(
        "ncnn-leaky-slope-dropped",
        "training/ncnn.py",
        "slope = layer.floats(10)[0] if layer.floats(10) else 0.0",
        "slope = 0.01",
        (NCNN,),
        "Real-ESRGAN's imported graphs would compute something else than the originals",
    ),
    Fault(
        "ncnn-concat-axis-not-shifted",
        "training/ncnn.py",
        "axis = layer.int(0) + 1  # ncnn's axis counts from the channel axis",
        "axis = layer.int(0)",
        (NCNN,),
        "dense blocks would concatenate along the batch axis",
    ),
    Fault(
        "job-owner-not-checked",
        "app/store.py",
        'if job.meta.get("owner", owner.name) != owner.name:',
        "if False:",
        (f"{TENANCY}::test_a_job_exists_only_for_the_key_that_made_it",),
        "any API key could read, download and cancel any other key's job",
    ),
    Fault(
        "job-id-not-validated",
        "app/store.py",
        "if not JOB_ID.fullmatch(job_id):",
        "if not job_id:",
        (f"{TENANCY}::test_ids_that_cannot_name_a_job_are_404_problems",),
        "an id with a dot answered 500 text/plain (RQ's own id check raises)",
    ),
    Fault(
        "queue-limit-outside-the-lock",
        "app/store.py",
        'f"{jobs.NAMESPACE}:admission", timeout=ADMISSION_LOCK_SECONDS, blocking_timeout=ADMISSION_LOCK_SECONDS',
        'f"{jobs.NAMESPACE}:admission:{uuid.uuid4().hex}", timeout=ADMISSION_LOCK_SECONDS, '
        "blocking_timeout=ADMISSION_LOCK_SECONDS",
        (f"{STORE}::test_the_queue_limit_holds_exactly_under_concurrent_submits",),
        "concurrent submits overshot the queue limit (80 of 200 against 50)",
    ),
    Fault(
        "rate-limit-off-by-one",
        "app/ratelimit.py",
        "if count > limit:",
        "if count > limit + 1:",
        (f"{TENANCY}::test_request_rate_limit_per_key",),
        "a key would get one request more a minute than it was given",
    ),
    Fault(
        "probe-decodes-png-for-exif",
        "app/probe.py",
        'if im.format == "PNG" and not decoded:',
        "if False:",
        (f"{HOSTILE}::test_a_flood_of_bombs_refused_from_the_header_keeps_the_gateway_small",),
        "the probe decoded every PNG to look for EXIF: a flood took the gateway to 2.4 GB",
    ),
    Fault(
        "work-loop-not-restarted",
        "worker/rqworker.py",
        "                if burst or self._stop_requested:\n                    return worked",
        "                return worked",
        (f"{RQWORKER}::test_the_work_loop_restarts_after_an_unexpected_end_and_after_a_lost_connection",),
        "a worker busy when Redis dropped exited for good",
    ),
    Fault(
        "input-error-retried",
        "worker/tasks.py",
        "        job.retries_left = 0  # the same input would fail the same way\n",
        "",
        (f"{TENANCY}::test_a_result_over_the_byte_limit_fails_the_job_clearly",),
        "a job failed by its input would run again and fail the same way",
    ),
    Fault(
        "webhook-not-retried",
        "worker/webhooks.py",
        "        webhooks.schedule(self.connection, job_id, delay)",
        "        self.connection.zrem(webhooks.DUE, job_id)",
        (f"{WEBHOOKS}::test_a_finished_job_is_announced_signed_and_retried_until_delivered",),
        "a receiver down for a moment would never hear of the job",
    ),
    Fault(
        "webhook-ssrf-unchecked",
        "imgenhance/webhooks.py",
        "        if not address.is_global or address.is_multicast:",
        "        if address.is_multicast:",
        (f"{WEBHOOKS}::test_webhooks_to_internal_addresses_or_without_a_secret_are_refused",),
        "a client could make the service call 169.254.169.254 or an internal admin port",
    ),
    Fault(
        "idempotency-ignores-the-request",
        "app/store.py",
        'if record["fingerprint"] != idempotency.fingerprint:',
        "if False:",
        (f"{WEBHOOKS}::test_idempotency_key_makes_a_retried_submit_return_the_first_job",),
        "a reused key would silently return a job for another request",
    ),
    Fault(
        "partial-target-linear-not-quadrature",
        "training/degradations.py",
        "keep = (1.0 - (told / true.clamp_min(1e-6)) ** 2).clamp_min(0.0).sqrt()",
        "keep = (1.0 - told / true.clamp_min(1e-6)).clamp_min(0.0)",
        (f"{DEGRADATIONS}::test_partial_target_leaves_the_noise_above_the_told_level",),
        "sigma would stop meaning 'this much noise removed': the strength curve the card states would drift",
    ),
    Fault(
        "told-level-ignores-the-files-jpeg-quality",
        "worker/pipelines/denoise.py",
        "quality = params.jpeg_quality or picture.jpeg_quality",
        "quality = params.jpeg_quality",
        (DENOISE_PIPELINE,),
        "artifacts=jpeg on a JPEG upload would run blind instead of at the level of its quality",
    ),
    Fault(
        "jpeg-quality-from-the-chroma-table",
        "worker/codec.py",
        "jpeg_quality(list(tables[0]))",
        "jpeg_quality(list(tables[max(tables)]))",
        (f"{CODEC}::test_a_jpeg_upload_carries_the_quality_it_was_saved_at",),
        "the quality read from a JPEG upload would be wrong, and with it the level artifacts=jpeg is told",
    ),
    Fault(
        "ncnn-depth-to-space-mode-swapped",
        "worker/ncnn_engine.py",
        '{"CRD": 0, "DCR": 1}',
        '{"CRD": 1, "DCR": 0}',
        (NCNN_ENGINE,),
        "the ncnn engine would scramble every x2/x4 output's pixels",
    ),
]


def copy_repo(source: Path, dest: Path) -> Path:
    target = dest / "repo"
    shutil.copytree(source, target, ignore=IGNORE)
    return target


def run_tests(repo: Path, tests: tuple[str, ...] | list[str], timeout: float) -> tuple[int, float, str]:
    env = {**os.environ, "PYTHONPATH": str(repo), "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    start = time.monotonic()
    try:
        done = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, time.monotonic() - start, "timed out"
    return done.returncode, time.monotonic() - start, done.stdout[-2000:] + done.stderr[-2000:]


def apply(repo: Path, fault: Fault) -> tuple[Path, str] | None:
    """Put the fault in when its snippet occurs exactly once; returns the file and its
    original text, or None when the snippet is not there (the code moved)."""
    path = repo / fault.file
    text = path.read_text() if path.exists() else ""
    if text.count(fault.original) != 1:
        return None
    path.write_text(text.replace(fault.original, fault.replacement))
    return path, text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="+", metavar="NAME", help="run these faults only (default: all)")
    p.add_argument("--list", action="store_true", help="list the faults and exit")
    p.add_argument("--repo", type=Path, default=REPO, help=f"the tree to copy and mutate (default: {REPO})")
    p.add_argument("--timeout", type=float, default=600, help="seconds per test run (default: 600)")
    p.add_argument("--skip-baseline", action="store_true", help="do not first run the tests on the unchanged copy")
    p.add_argument("--verbose", action="store_true", help="print the test output of every run")
    args = p.parse_args(argv)

    faults = [f for f in FAULTS if not args.only or f.name in args.only]
    unknown = set(args.only or []) - {f.name for f in FAULTS}
    if unknown:
        p.error(f"unknown fault(s): {sorted(unknown)}")
    if args.list:
        for f in faults:
            print(f"{f.name:42s} {f.file:26s} {f.why}")
        return 0

    with tempfile.TemporaryDirectory(prefix="imgenhance-mutate-") as tmp:
        repo = copy_repo(args.repo, Path(tmp))
        print(f"copied {args.repo} to {repo}; {len(faults)} faults", flush=True)
        if not args.skip_baseline:
            selection = sorted({t for f in faults for t in f.tests})
            code, seconds, out = run_tests(repo, selection, args.timeout * 2)
            if code != 0:
                print(f"the selected tests fail without any fault ({seconds:.0f} s); fix them first:\n{out}")
                return 2
            print(f"baseline: the selected tests pass on the unchanged copy ({seconds:.0f} s)", flush=True)

        rows: list[tuple[Fault, str, str, float]] = []  # fault, file mutated, result, seconds
        for fault in faults:
            applied = apply(repo, fault)
            if applied is None:
                rows.append((fault, fault.file, "not applicable", 0.0))
                print(f"  {fault.name:42s} not applicable: snippet not found once in {fault.file}", flush=True)
                continue
            path, original = applied
            try:
                code, seconds, out = run_tests(repo, fault.tests, args.timeout)
            finally:
                path.write_text(original)
            status = {0: "SURVIVED", 1: "caught", -1: "error (timeout)"}.get(code, f"error (pytest exit {code})")
            rows.append((fault, str(path.relative_to(repo)), status, seconds))
            print(f"  {fault.name:42s} {status:16s} {seconds:6.1f} s", flush=True)
            if args.verbose or status.startswith("error"):
                print(out)

    caught = sum(status == "caught" for _, _, status, _ in rows)
    survived = [fault for fault, _, status, _ in rows if status == "SURVIVED"]
    missing = [fault for fault, _, status, _ in rows if status == "not applicable"]
    errors = [fault for fault, _, status, _ in rows if status.startswith("error")]
    applicable = caught + len(survived)
    print()
    print(f"{'fault':42s} {'file':28s} {'result':16s} seconds")
    for fault, file, status, seconds in rows:
        print(f"{fault.name:42s} {file:28s} {status:16s} {seconds:7.1f}")
    print()
    share = f"{100 * caught / applicable:.0f}%" if applicable else "n/a"
    print(
        f"caught {caught} / survived {len(survived)} of {applicable} applicable faults ({share}); "
        f"not applicable {len(missing)}; errors {len(errors)}"
    )
    for fault in survived:
        print(f"  survived: {fault.name}: {fault.why}")
    for fault in missing:
        print(f"  not applicable: {fault.name} ({fault.file}): update its snippet")
    return 1 if survived or errors else 0


if __name__ == "__main__":
    sys.exit(main())
