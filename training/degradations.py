"""Degradations made on the fly, batch-wise, on the training device.

- ``realesrgan``: Real-ESRGAN's second-order pipeline, which turns clean HR patches
  into realistic LR inputs: [blur -> resize -> noise -> JPEG] twice, then the final
  resize to HR/scale with a sinc filter and JPEG in random order. Blur kernels are
  isotropic/anisotropic Gaussian, generalized Gaussian, plateau, or 2-D sinc (ringing);
  noise is Gaussian or Poisson, in colour or gray.
- ``noisy``: the denoise mixture: additive white Gaussian noise (sigma 0-50 on the
  0-255 scale), camera-like Poisson-Gaussian noise, and JPEG artefacts. Each sample
  is labelled with the noise level it carries (the nominal sigma for Gaussian noise,
  the measured RMS error otherwise), which the denoiser takes as input.

Kernels are made in NumPy (tiny) and applied per sample with one grouped convolution;
JPEG goes through Pillow on the CPU, as the real codec does.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import special

KERNEL_SIZE = 21


# -- blur kernels ------------------------------------------------------------------


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    ax = np.arange(size) - (size - 1) / 2
    return np.meshgrid(ax, ax)


def _rotated_inverse_cov(sig_x: float, sig_y: float, theta: float) -> np.ndarray:
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    cov = rot @ np.diag([sig_x**2, sig_y**2]) @ rot.T
    return np.linalg.inv(cov)


def gaussian_like_kernel(size: int, sig_x: float, sig_y: float, theta: float, beta: float, kind: str) -> np.ndarray:
    """Gaussian (beta=1), generalized Gaussian (exp(-0.5 d^beta)) or plateau (1/(1+d^beta))."""
    xx, yy = _grid(size)
    inv = _rotated_inverse_cov(sig_x, sig_y, theta)
    d2 = inv[0, 0] * xx**2 + (inv[0, 1] + inv[1, 0]) * xx * yy + inv[1, 1] * yy**2
    k = 1.0 / (1.0 + np.power(d2, beta)) if kind == "plateau" else np.exp(-0.5 * np.power(d2, beta))
    return k / k.sum()


def sinc_kernel(size: int, cutoff: float) -> np.ndarray:
    """Circular low-pass (2-D sinc) kernel; ``cutoff`` in radians (pi = no filtering)."""
    xx, yy = _grid(size)
    r = np.sqrt(xx**2 + yy**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = cutoff * special.j1(cutoff * r) / (2 * np.pi * r)
    k[r == 0] = cutoff**2 / (4 * np.pi)
    return k / k.sum()


def random_kernel(rng: np.random.Generator, sigma_range: tuple[float, float], sinc_prob: float) -> np.ndarray:
    size = int(rng.choice(np.arange(7, KERNEL_SIZE + 1, 2)))
    if rng.random() < sinc_prob:
        cutoff = rng.uniform(np.pi / 3, np.pi) if size < 13 else rng.uniform(np.pi / 5, np.pi)
        k = sinc_kernel(size, cutoff)
    else:
        kind = rng.choice(
            ["iso", "aniso", "gen_iso", "gen_aniso", "plateau_iso", "plateau_aniso"],
            p=[0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
        )
        sig_x = rng.uniform(*sigma_range)
        sig_y = sig_x if "iso" in kind and "aniso" not in kind else rng.uniform(*sigma_range)
        theta = rng.uniform(-np.pi, np.pi)
        if kind.startswith("gen"):
            beta, shape = rng.uniform(0.5, 4.0), "generalized"
        elif kind.startswith("plateau"):
            beta, shape = rng.uniform(1.0, 2.0), "plateau"
        else:
            beta, shape = 1.0, "gaussian"
        k = gaussian_like_kernel(size, sig_x, sig_y, theta, beta, shape)
    pad = (KERNEL_SIZE - size) // 2
    return np.pad(k, pad)


def filter_per_sample(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) each filtered by its own (N, k, k) kernel, reflect-padded."""
    n, c, h, w = x.shape
    k = kernels.shape[-1]
    x = F.pad(x, [k // 2] * 4, mode="reflect")
    weight = kernels.to(x).repeat_interleave(c, dim=0).unsqueeze(1)  # (N*C, 1, k, k)
    return F.conv2d(x.reshape(1, n * c, h + k - 1, w + k - 1), weight, groups=n * c).reshape(n, c, h, w)


# -- noise and compression ---------------------------------------------------------


def gaussian_noise(x: torch.Tensor, sigma: torch.Tensor, gray: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Per-sample sigma (N,) on the [0, 1] scale; gray (N,) bool: the same noise on every channel."""
    noise = torch.randn(x.shape, generator=gen, device=gen.device).to(x)
    gray_noise = noise[:, :1].expand_as(noise)
    noise = torch.where(gray.view(-1, 1, 1, 1), gray_noise, noise)
    return noise * sigma.view(-1, 1, 1, 1)


def poisson_noise(x: torch.Tensor, scale: torch.Tensor, gray: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Signal-dependent noise of an 8-bit sensor, times ``scale`` (N,)."""
    clean = x.clamp(0, 1)
    lum = (0.299 * clean[:, 0:1] + 0.587 * clean[:, 1:2] + 0.114 * clean[:, 2:3]).expand_as(clean)
    base = torch.where(gray.view(-1, 1, 1, 1), lum, clean)
    noise = torch.poisson((base * 255.0).to(gen.device), generator=gen).to(x) / 255.0 - base
    return noise * scale.view(-1, 1, 1, 1)


def jpeg(x: torch.Tensor, quality: np.ndarray) -> torch.Tensor:
    """Round-trip each sample through a real JPEG encoder at its own quality."""
    arrays = (x.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    out = []
    for arr, q in zip(arrays, quality, strict=True):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "JPEG", quality=int(q))
        out.append(np.asarray(Image.open(buf)))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).to(x) / 255.0


def _resize(x: torch.Tensor, size: tuple[int, int], rng: np.random.Generator) -> torch.Tensor:
    mode = str(rng.choice(["area", "bilinear", "bicubic"]))
    return (
        F.interpolate(x, size=size, mode=mode)
        if mode == "area"
        else F.interpolate(x, size=size, mode=mode, align_corners=False)
    )


# -- the two pipelines -------------------------------------------------------------


@dataclass(frozen=True)
class RealESRGANConfig:
    """Real-ESRGAN's published ranges by default; ``degradation_args`` in a training
    config overrides any of them (pairs of ranges: [first order, second order])."""

    sinc_prob: tuple[float, float] = (0.1, 0.1)
    blur_sigma: tuple[tuple[float, float], tuple[float, float]] = ((0.2, 3.0), (0.2, 1.5))
    second_blur_prob: float = 0.8
    resize_prob: tuple[float, float, float] = (0.2, 0.7, 0.1)  # up, down, keep
    resize_range: tuple[tuple[float, float], tuple[float, float]] = ((0.15, 1.5), (0.3, 1.2))
    gaussian_noise_prob: float = 0.5
    noise_range: tuple[tuple[float, float], tuple[float, float]] = ((1.0, 30.0), (1.0, 25.0))
    poisson_range: tuple[tuple[float, float], tuple[float, float]] = ((0.05, 3.0), (0.05, 2.5))
    gray_noise_prob: float = 0.4
    jpeg_range: tuple[float, float] = (30.0, 95.0)
    final_sinc_prob: float = 0.8


def _noise_step(
    x: torch.Tensor, order: int, cfg: RealESRGANConfig, rng: np.random.Generator, gen: torch.Generator
) -> torch.Tensor:
    n = x.shape[0]
    gray = torch.from_numpy(rng.random(n) < cfg.gray_noise_prob).to(x.device)
    if rng.random() < cfg.gaussian_noise_prob:
        sigma = torch.from_numpy(rng.uniform(*cfg.noise_range[order], n) / 255.0).to(x)
        return x + gaussian_noise(x, sigma, gray, gen)
    scale = torch.from_numpy(rng.uniform(*cfg.poisson_range[order], n)).to(x)
    return x + poisson_noise(x, scale, gray, gen)


def realesrgan(
    hr: torch.Tensor, scale: int, rng: np.random.Generator, gen: torch.Generator, cfg: RealESRGANConfig | None = None
) -> torch.Tensor:
    """(N, 3, H, W) clean HR in [0, 1] -> (N, 3, H/scale, W/scale) degraded LR in [0, 1]."""
    cfg = cfg or RealESRGANConfig()
    n, _, h, w = hr.shape
    x = hr
    for order in (0, 1):
        if order == 0 or rng.random() < cfg.second_blur_prob:
            kernels = np.stack([random_kernel(rng, cfg.blur_sigma[order], cfg.sinc_prob[order]) for _ in range(n)])
            x = filter_per_sample(x, torch.from_numpy(kernels).float())
        kind = rng.choice(["up", "down", "keep"], p=cfg.resize_prob)
        factor = {
            "up": rng.uniform(1, cfg.resize_range[order][1]),
            "down": rng.uniform(cfg.resize_range[order][0], 1),
            "keep": 1.0,
        }[str(kind)]
        # the first resize is relative to the HR size, the second to the target LR size
        base_h, base_w = (h, w) if order == 0 else (h / scale, w / scale)
        x = _resize(x, (max(8, int(base_h * factor)), max(8, int(base_w * factor))), rng)
        x = _noise_step(x, order, cfg, rng, gen)
        if order == 0:
            x = jpeg(x, rng.uniform(*cfg.jpeg_range, n))
    target = (h // scale, w // scale)

    def final_resize_and_sinc(t: torch.Tensor) -> torch.Tensor:
        t = _resize(t, target, rng)
        if rng.random() < cfg.final_sinc_prob:
            kernels = np.stack([sinc_kernel(KERNEL_SIZE, rng.uniform(np.pi / 3, np.pi)) for _ in range(n)])
            t = filter_per_sample(t, torch.from_numpy(kernels).float())
        return t

    if rng.random() < 0.5:
        x = jpeg(final_resize_and_sinc(x), rng.uniform(*cfg.jpeg_range, n))
    else:
        x = final_resize_and_sinc(jpeg(x, rng.uniform(*cfg.jpeg_range, n)))
    return (x.clamp(0, 1) * 255).round() / 255.0


@dataclass(frozen=True)
class NoiseConfig:
    max_sigma: float = 50.0  # 0-255 scale
    gaussian_prob: float = 0.6
    camera_prob: float = 0.2  # the rest: JPEG
    gray_prob: float = 0.2
    quantize_prob: float = 0.5  # clip and round to 8 bits, as real files are
    jpeg_range: tuple[float, float] = (10.0, 90.0)
    blind_prob: float = 0.3
    # share of non-blind samples told a level other than the true one (``partial_target``)
    mismatch_prob: float = 0.0


def partial_target(
    clean: torch.Tensor, noisy_batch: torch.Tensor, true: torch.Tensor, told: torch.Tensor
) -> torch.Tensor:
    """What a denoiser told level ``told`` should return for noise of level ``true`` (N,):
    the noise scaled to leave sqrt(true^2 - told^2), so a level below the true one removes
    that much noise (in quadrature) and keeps the rest; at or above the true level, the
    clean image. This is what makes the level a strength control, not only a hint."""
    keep = (1.0 - (told / true.clamp_min(1e-6)) ** 2).clamp_min(0.0).sqrt()
    return clean + keep.view(-1, 1, 1, 1) * (noisy_batch - clean)


def told_levels(true: torch.Tensor, rng: np.random.Generator, cfg: NoiseConfig) -> torch.Tensor:
    """The level each sample is told: the true one, or with ``mismatch_prob`` a level drawn
    uniformly from [0, max_sigma] (below the true level: partial removal; above: full)."""
    n = true.shape[0]
    mismatched = torch.from_numpy(rng.random(n) < cfg.mismatch_prob).to(true.device)
    drawn = torch.from_numpy(rng.uniform(0, cfg.max_sigma, n)).to(true)
    return torch.where(mismatched, drawn, true)


def noisy(
    clean: torch.Tensor, rng: np.random.Generator, gen: torch.Generator, cfg: NoiseConfig | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3, H, W) clean -> (noisy, sigma (N,) on the 0-255 scale)."""
    cfg = cfg or NoiseConfig()
    n = clean.shape[0]
    kind = rng.choice(
        ["gaussian", "camera", "jpeg"],
        size=n,
        p=[cfg.gaussian_prob, cfg.camera_prob, 1 - cfg.gaussian_prob - cfg.camera_prob],
    )
    gray = torch.from_numpy(rng.random(n) < cfg.gray_prob).to(clean.device)
    sigma = rng.uniform(0, cfg.max_sigma, n)
    out = clean + gaussian_noise(clean, torch.from_numpy(sigma / 255.0).to(clean), gray, gen)

    camera = torch.from_numpy(kind == "camera").to(clean.device)
    if camera.any():
        shot = torch.from_numpy(rng.uniform(0.2, 2.5, n)).to(clean)
        read = torch.from_numpy(rng.uniform(0, 10, n) / 255.0).to(clean)
        sensor = clean + poisson_noise(clean, shot, gray, gen) + gaussian_noise(clean, read, gray, gen)
        out = torch.where(camera.view(-1, 1, 1, 1), sensor, out)
    compressed = kind == "jpeg"
    if compressed.any():
        idx = torch.from_numpy(np.flatnonzero(compressed)).to(clean.device)
        out[idx] = jpeg(clean[idx], rng.uniform(*cfg.jpeg_range, len(idx)))
    quantize = torch.from_numpy((rng.random(n) < cfg.quantize_prob) | (kind != "gaussian")).to(clean.device)
    out = torch.where(quantize.view(-1, 1, 1, 1), (out.clamp(0, 1) * 255).round() / 255, out)

    measured = ((out - clean) ** 2).mean(dim=(1, 2, 3)).sqrt() * 255.0
    level = torch.where(
        torch.from_numpy(kind == "gaussian").to(clean.device), torch.from_numpy(sigma).to(clean), measured
    )
    return out, level


def level_map(noisy_batch: torch.Tensor, sigma: torch.Tensor, blind: torch.Tensor, scale: float) -> torch.Tensor:
    """Append the level channel: sigma/scale, or -1 where ``blind``."""
    n, _, h, w = noisy_batch.shape
    level = torch.where(blind, torch.full_like(sigma, -1.0), sigma / scale)
    return torch.cat([noisy_batch, level.view(n, 1, 1, 1).expand(n, 1, h, w).to(noisy_batch)], dim=1)
