"""Training batches and validation scores for each kind of model.

| degradation  | batch input                              | target | validation score          |
|--------------|------------------------------------------|--------|---------------------------|
| bicubic      | MATLAB-bicubic LR (precomputed)          | HR     | Y-PSNR vs HR              |
| realesrgan   | second-order degraded LR (on the fly)    | HR     | Y-PSNR on fixed-seed LR   |
| noise        | noisy RGB + level channel (on the fly)   | clean  | RGB PSNR at sigma 25      |

With ``teacher`` (distillation) the inputs are made as above and the targets are what
the teacher, a served model, makes of them; validation scores Y-PSNR against the
teacher's output on the validation inputs (how closely the student follows it).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from training import degradations
from training.archs.unet import LEVEL_SCALE
from training.config import TrainConfig
from training.data import PatchSampler, SRPair, augment, list_images, load_rgb, make_sr_pairs, realworld_pair
from training.imresize import imresize, modcrop
from training.metrics import crop_border, psnr, y_channel
from training.plots import centre_crop

Batch = tuple[torch.Tensor, torch.Tensor]
log = logging.getLogger("training")

REALWORLD_SEED = 1000  # validation and evaluation degrade image i with seed REALWORLD_SEED + i
TEACHER_MARGIN = 8  # LR pixels around each pool patch that the teacher sees and the student does not
TEACHER_CHUNK = 8  # pool patches per teacher run


class Source(Protocol):
    def sample(self, batch_size: int) -> Batch: ...


class Validator(Protocol):
    baseline_name: str

    def baseline(self) -> float: ...

    def score(self, model: nn.Module) -> float: ...

    def samples(
        self, model: nn.Module, count: int = 3, size: int = 160
    ) -> tuple[list[list[np.ndarray]], list[str]]: ...


def to_tensor(img: np.ndarray, device: torch.device) -> torch.Tensor:
    """HxWx3 uint8 -> (1, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).to(device).float().div(255).unsqueeze(0)


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) float -> HxWx3 uint8, clipped and rounded."""
    out: np.ndarray = t[0].float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return out


class BicubicSource:
    def __init__(self, cfg: TrainConfig, train_paths: list[Path], device: torch.device) -> None:
        pairs = make_sr_pairs(train_paths, cfg.scale)
        self.sampler = PatchSampler([(p.lr, p.hr) for p in pairs], (1, cfg.scale), cfg.lr_patch, device, cfg.seed)

    def sample(self, batch_size: int) -> Batch:
        lr, hr = self.sampler.sample(batch_size)
        return lr, hr


class RealESRGANSource:
    def __init__(self, cfg: TrainConfig, train_paths: list[Path], device: torch.device) -> None:
        self.scale = cfg.scale
        self.patches = PatchSampler(
            [(load_rgb(p),) for p in train_paths],
            (1,),
            cfg.hr_patch or cfg.lr_patch * cfg.scale,
            device,
            cfg.seed,
            "hr_patch",
        )
        self.rng = np.random.default_rng(cfg.seed)
        self.gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)  # noise drawn where it is used
        self.cfg = degradations.RealESRGANConfig(**cfg.degradation_args)

    def sample(self, batch_size: int) -> Batch:
        (hr,) = self.patches.sample(batch_size)
        return degradations.realesrgan(hr, self.scale, self.rng, self.gen, self.cfg), hr


class NoiseSource:
    def __init__(self, cfg: TrainConfig, train_paths: list[Path], device: torch.device) -> None:
        self.cfg = degradations.NoiseConfig(
            max_sigma=cfg.max_sigma, blind_prob=cfg.blind_prob, mismatch_prob=cfg.mismatch_prob
        )
        self.patches = PatchSampler(
            [(load_rgb(p),) for p in train_paths], (1,), cfg.hr_patch or cfg.lr_patch, device, cfg.seed, "hr_patch"
        )
        self.rng = np.random.default_rng(cfg.seed)
        self.gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)

    def sample(self, batch_size: int) -> Batch:
        (clean,) = self.patches.sample(batch_size)
        noisy, sigma = degradations.noisy(clean, self.rng, self.gen, self.cfg)
        blind = torch.from_numpy(self.rng.random(batch_size) < self.cfg.blind_prob).to(clean.device)
        told = torch.where(blind, sigma, degradations.told_levels(sigma, self.rng, self.cfg))
        target = degradations.partial_target(clean, noisy, sigma, told)
        return degradations.level_map(noisy, told, blind, LEVEL_SCALE), target


Teacher = Callable[[np.ndarray], np.ndarray]  # (N, 3, h, w) float32 [0, 1] -> (N, 3, h*s, w*s) float32


class TeacherSource:
    """Distillation: inputs from another source, targets from the teacher run on them.

    A teacher such as x4plus costs ~10x a student step per patch on a CPU, so a pool of
    pairs is made at the start and ``refresh`` of them are replaced by fresh degradations
    after every step. Each pool patch is cut from a larger input, ``TEACHER_MARGIN``
    LR pixels wider on every side, so the targets show the teacher's output inside an
    image, not its zero-padded border."""

    def __init__(
        self,
        inner: Source,
        teacher: Teacher,
        scale: int,
        pool: int,
        refresh: int,
        seed: int,
        cache: Path | None = None,
        cache_key: str = "",
        device: torch.device | None = None,
    ) -> None:
        self.inner, self.teacher, self.scale, self.refresh = inner, teacher, scale, refresh
        self.device = device or torch.device("cpu")  # the pool stays in host memory; batches go here
        self.generator = torch.Generator().manual_seed(seed + 2)
        cached = _load_pool(cache, cache_key) if cache is not None else None
        if cached is not None:
            self.inputs, self.targets = cached
        else:
            self.inputs, self.targets = self._make_pool(pool)
            if cache is not None:
                _save_pool(cache, cache_key, self.inputs, self.targets)
        self.next = 0  # the oldest pair, replaced first

    def _make_pool(self, pool: int) -> tuple[torch.Tensor, torch.Tensor]:
        inputs, targets = [], []
        with tqdm(total=pool, desc="teacher pool", unit="patch", dynamic_ncols=True, disable=None) as bar:
            while len(inputs) < pool:
                lr, target = self._fresh(min(TEACHER_CHUNK, pool - len(inputs)))
                inputs.extend(lr)
                targets.extend(target)
                bar.update(lr.shape[0])
        return torch.stack(inputs), torch.stack(targets)

    def _fresh(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """n new pairs: inputs float, teacher outputs uint8 (what a served model returns)."""
        lr, _ = self.inner.sample(n)
        out = torch.from_numpy(self.teacher(lr.cpu().numpy().astype(np.float32)))
        m, s = TEACHER_MARGIN, self.scale
        target = out[..., m * s : out.shape[-2] - m * s, m * s : out.shape[-1] - m * s]
        return lr[..., m:-m, m:-m].cpu(), target.clamp(0, 1).mul(255).round().byte()

    def sample(self, batch_size: int) -> Batch:
        picks = torch.randint(0, len(self.inputs), (batch_size,), generator=self.generator).tolist()
        pairs = [augment(self.inputs[i], self.targets[i], generator=self.generator) for i in picks]
        lr = torch.stack([a for a, _ in pairs]).to(self.device)
        target = torch.stack([b for _, b in pairs]).to(self.device).float() / 255.0
        if self.refresh:
            lr_new, target_new = self._fresh(self.refresh)
            for k in range(self.refresh):
                self.inputs[self.next], self.targets[self.next] = lr_new[k], target_new[k]
                self.next = (self.next + 1) % len(self.inputs)
        return lr, target


def _load_pool(path: Path, key: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The pool a run made before (a resumed run skips the teacher's minutes), if it was
    made by the same teacher file from the same data and settings."""
    if not path.exists():
        return None
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if saved.get("key") != key:
        log.info("teacher pool %s was made with other settings: making a new one", path)
        return None
    log.info("teacher pool loaded from %s (%d pairs)", path, len(saved["inputs"]))
    return saved["inputs"], saved["targets"]


def _save_pool(path: Path, key: str, inputs: torch.Tensor, targets: torch.Tensor) -> None:
    partial = path.with_suffix(".partial")
    torch.save({"key": key, "inputs": inputs, "targets": targets}, partial)
    partial.replace(path)


# -- validation --------------------------------------------------------------------

Runner = Callable[[torch.Tensor], torch.Tensor]


def run_model(model: nn.Module, device: torch.device, multiple: int = 1) -> Runner:
    """Full-image inference, reflect-padding to the model's size multiple."""

    @torch.no_grad()
    def run(x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % multiple, (-w) % multiple
        if ph or pw:
            x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="reflect")
        y = model(x.to(device))
        scale = y.shape[-1] // x.shape[-1]
        return y[..., : h * scale, : w * scale]

    return run


class SRValidator:
    """Y-PSNR against HR; LR from MATLAB bicubic, or a fixed-seed Real-ESRGAN degradation."""

    baseline_name = "bicubic"
    target_name = "ground truth"

    def __init__(
        self,
        cfg: TrainConfig,
        paths: list[Path],
        device: torch.device,
        multiple: int,
        teacher: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        """``teacher`` (uint8 LR -> uint8 SR, as served): its outputs replace the HR as targets."""
        self.scale, self.device, self.multiple = cfg.scale, device, multiple
        self.pairs = make_sr_pairs(paths, cfg.scale)
        if cfg.degradation == "realesrgan":
            self.pairs = [
                realworld_pair(p, cfg.scale, REALWORLD_SEED + i, cfg.degradation_args) for i, p in enumerate(self.pairs)
            ]
        if teacher is not None:
            self.pairs = [SRPair(p.name, teacher(p.lr), p.lr) for p in self.pairs]
            self.target_name = "teacher"

    def _psnr(self, sr: np.ndarray, pair: SRPair) -> float:
        return psnr(crop_border(y_channel(sr), self.scale), crop_border(y_channel(pair.hr), self.scale))

    def baseline(self) -> float:
        return float(np.mean([self._psnr(imresize(p.lr, self.scale), p) for p in self.pairs]))

    def score(self, model: nn.Module) -> float:
        run = run_model(model, self.device, self.multiple)
        return float(np.mean([self._psnr(to_uint8(run(to_tensor(p.lr, self.device))), p) for p in self.pairs]))

    def samples(self, model: nn.Module, count: int = 3, size: int = 160) -> tuple[list[list[np.ndarray]], list[str]]:
        run = run_model(model, self.device, self.multiple)
        rows = [
            [
                centre_crop(x, size)
                for x in (imresize(p.lr, self.scale), to_uint8(run(to_tensor(p.lr, self.device))), p.hr)
            ]
            for p in self.pairs[:count]
        ]
        return rows, ["bicubic", "model", self.target_name]


class DenoiseValidator:
    """RGB PSNR at sigma 25 (AWGN, fixed seed, not clipped), with the level given."""

    baseline_name = "noisy input"

    def __init__(self, cfg: TrainConfig, paths: list[Path], device: torch.device, multiple: int) -> None:
        self.device, self.multiple, self.sigma = device, multiple, cfg.val_sigma
        self.clean = [modcrop(load_rgb(p), 1) for p in paths]
        self.noisy = [
            c.astype(np.float32) / 255
            + np.random.default_rng(i).normal(0, self.sigma / 255, c.shape).astype(np.float32)
            for i, c in enumerate(self.clean)
        ]

    def _input(self, noisy: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(noisy.transpose(2, 0, 1))).unsqueeze(0)
        level = torch.full((1, 1, *x.shape[-2:]), self.sigma / LEVEL_SCALE)
        return torch.cat([x, level], 1).to(self.device)

    def baseline(self) -> float:
        return float(np.mean([psnr(np.clip(n, 0, 1) * 255, c) for n, c in zip(self.noisy, self.clean, strict=True)]))

    def score(self, model: nn.Module) -> float:
        run = run_model(model, self.device, self.multiple)
        return float(
            np.mean([psnr(to_uint8(run(self._input(n))), c) for n, c in zip(self.noisy, self.clean, strict=True)])
        )

    def samples(self, model: nn.Module, count: int = 3, size: int = 160) -> tuple[list[list[np.ndarray]], list[str]]:
        run = run_model(model, self.device, self.multiple)
        rows = [
            [
                centre_crop(x, size)
                for x in ((np.clip(n, 0, 1) * 255).round().astype(np.uint8), to_uint8(run(self._input(n))), c)
            ]
            for n, c in list(zip(self.noisy, self.clean, strict=True))[:count]
        ]
        return rows, [f"noisy (sigma {self.sigma:g})", "model", "clean"]


SOURCES = {"bicubic": BicubicSource, "realesrgan": RealESRGANSource, "noise": NoiseSource}


def build(
    cfg: TrainConfig, data_root: Path, device: torch.device, multiple: int, run_dir: Path | None = None
) -> tuple[Source, Validator]:
    """The run's training source and validator; a teacher's pool is kept in ``run_dir``."""
    train_paths = list_images([data_root / s for s in cfg.train_sets])
    if cfg.val_sets:
        val_paths = list_images([data_root / s for s in cfg.val_sets])
    else:  # hold out a fixed random part of the training images
        order = np.random.default_rng(cfg.seed).permutation(len(train_paths))
        cut = max(1, int(len(train_paths) * cfg.val_split))
        val_paths = [train_paths[i] for i in order[:cut]]
        train_paths = [train_paths[i] for i in order[cut:]]
    validator: Validator
    if cfg.teacher:
        from training.evaluate import served, served_upscaler

        model, tiles = served(Path(cfg.teacher))  # the worker's runtime, the file's checksum checked
        side = (cfg.hr_patch // cfg.scale if cfg.hr_patch else cfg.lr_patch) + 2 * TEACHER_MARGIN
        wider = replace(cfg, lr_patch=side, hr_patch=side * cfg.scale)
        key = json.dumps(
            [
                hashlib.sha256(Path(cfg.teacher).read_bytes()).hexdigest(),  # the card names the ONNX file's hash
                cfg.teacher_pool,
                side,
                cfg.scale,
                cfg.seed,
                cfg.degradation,
                cfg.degradation_args,
                [str(p) for p in train_paths],
            ]
        )
        source: Source = TeacherSource(
            SOURCES[cfg.degradation](wider, train_paths, device),
            model,
            cfg.scale,
            cfg.teacher_pool,
            cfg.teacher_refresh,
            cfg.seed,
            run_dir / "teacher-pool.pt" if run_dir is not None else None,
            key,
            device,
        )
        validator = SRValidator(cfg, val_paths, device, multiple, served_upscaler(model, tiles))
    else:
        source = SOURCES[cfg.degradation](cfg, train_paths, device)
        validator = (DenoiseValidator if cfg.degradation == "noise" else SRValidator)(cfg, val_paths, device, multiple)
    return source, validator
