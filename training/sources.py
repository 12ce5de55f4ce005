"""Training batches and validation scores for each kind of model.

| degradation  | batch input                              | target | validation score          |
|--------------|------------------------------------------|--------|---------------------------|
| bicubic      | MATLAB-bicubic LR (precomputed)          | HR     | Y-PSNR vs HR              |
| realesrgan   | second-order degraded LR (on the fly)    | HR     | Y-PSNR on fixed-seed LR   |
| noise        | noisy RGB + level channel (on the fly)   | clean  | RGB PSNR at sigma 25      |
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from training import degradations
from training.archs.unet import LEVEL_SCALE
from training.config import TrainConfig
from training.data import PatchSampler, SRPair, list_images, load_rgb, make_sr_pairs, realworld_pair
from training.imresize import imresize, modcrop
from training.metrics import crop_border, psnr, y_channel
from training.plots import centre_crop

Batch = tuple[torch.Tensor, torch.Tensor]
REALWORLD_SEED = 1000  # validation and evaluation degrade image i with seed REALWORLD_SEED + i


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

    def __init__(self, cfg: TrainConfig, paths: list[Path], device: torch.device, multiple: int) -> None:
        self.scale, self.device, self.multiple = cfg.scale, device, multiple
        self.pairs = make_sr_pairs(paths, cfg.scale)
        if cfg.degradation == "realesrgan":
            self.pairs = [
                realworld_pair(p, cfg.scale, REALWORLD_SEED + i, cfg.degradation_args) for i, p in enumerate(self.pairs)
            ]

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
        return rows, ["bicubic", "model", "ground truth"]


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


def build(cfg: TrainConfig, data_root: Path, device: torch.device, multiple: int) -> tuple[Source, Validator]:
    train_paths = list_images([data_root / s for s in cfg.train_sets])
    if cfg.val_sets:
        val_paths = list_images([data_root / s for s in cfg.val_sets])
    else:  # hold out a fixed random part of the training images
        order = np.random.default_rng(cfg.seed).permutation(len(train_paths))
        cut = max(1, int(len(train_paths) * cfg.val_split))
        val_paths = [train_paths[i] for i in order[:cut]]
        train_paths = [train_paths[i] for i in order[cut:]]
    source = SOURCES[cfg.degradation](cfg, train_paths, device)
    validator: Validator = (DenoiseValidator if cfg.degradation == "noise" else SRValidator)(
        cfg, val_paths, device, multiple
    )
    return source, validator
