"""Training configuration: one dataclass, loaded from TOML, overridable from the CLI.

A checkpoint stores this config, so ``export`` and ``eval`` rebuild the model and
know its task without guessing.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass
class TrainConfig:
    name: str  # run name; also the default model id
    task: str = "super-resolve"
    arch: str = "SRVGGNetCompact"  # key of training.archs.ARCHS
    arch_args: dict[str, Any] = field(default_factory=dict)
    scale: int = 4
    degradation: str = "bicubic"  # bicubic | realesrgan | noise
    degradation_args: dict[str, Any] = field(default_factory=dict)  # realesrgan: RealESRGANConfig overrides
    train_sets: list[str] = field(default_factory=lambda: ["T91", "BSD200"])  # folders under --data-root
    val_sets: list[str] = field(default_factory=lambda: ["Set5"])  # early stopping / curves; [] = hold out val_split
    val_split: float = 0.05  # fraction of training images held out when val_sets is empty
    eval_sets: list[str] = field(default_factory=lambda: ["Set5", "Set14"])  # final report and card
    lr_patch: int = 48  # low-resolution (input) patch side
    hr_patch: int = 0  # realesrgan / noise: clean patch side (0 = lr_patch * scale)
    batch_size: int = 32
    # denoise
    max_sigma: float = 50.0  # training noise levels, 0-255 scale
    blind_prob: float = 0.3  # share of samples trained with the level hidden (blind mode)
    val_sigma: float = 25.0
    steps: int = 20_000
    max_minutes: float = 0.0  # 0 = no time budget; otherwise the LR schedule spans the budget
    lr: float = 5e-4
    lr_min: float = 1e-6
    optimizer: str = "adam"  # adam | rmsprop
    betas: tuple[float, float] = (0.9, 0.99)
    loss: str = "l1"  # l1 | charbonnier
    init_from: str = ""  # a checkpoint whose generator weights start this run (ESRGAN's second stage)
    # GAN stage (stage = "gan"): generator loss = pixel + perceptual + gan terms
    stage: str = "psnr"  # psnr | gan
    gan_type: str = "ragan"  # vanilla | lsgan | hinge | wgan-gp | ragan
    discriminator: str = "UNetDiscriminatorSN"  # or VGGStyleDiscriminator (input = hr_patch, 128 or 256)
    discriminator_args: dict[str, Any] = field(default_factory=dict)
    d_lr: float = 1e-4
    pixel_weight: float = 1.0
    perceptual_weight: float = 1.0
    perceptual_layers: dict[str, float] = field(
        default_factory=lambda: {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0}
    )
    perceptual_weights: str = ""  # local VGG19 weights file (torchvision's vgg19-dcbedf0e.pth)
    perceptual_fallback: str = "refuse"  # refuse | random (fixed random VGG19 when no weights file)
    gan_weight: float = 0.1
    gp_weight: float = 10.0  # wgan-gp only
    ema_decay: float = 0.999
    val_every: int = 1000
    patience: int = 0  # validations without improvement before stopping; 0 = never
    seed: int = 0
    amp: bool = False  # bf16 autocast on CUDA

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)  # type: ignore[assignment]
        assert self.scale in (1, 2, 4), f"scale must be 1, 2 or 4, got {self.scale}"
        assert self.loss in ("l1", "charbonnier"), f"loss must be l1 or charbonnier, got {self.loss!r}"
        assert self.val_every > 0, "val_every must be positive"
        assert self.degradation in ("bicubic", "realesrgan", "noise"), f"unknown degradation {self.degradation!r}"
        assert self.stage in ("psnr", "gan"), f"stage must be psnr or gan, got {self.stage!r}"
        assert self.optimizer in ("adam", "rmsprop"), f"optimizer must be adam or rmsprop, got {self.optimizer!r}"
        assert self.perceptual_fallback in ("refuse", "random"), "perceptual_fallback must be refuse or random"
        assert self.degradation != "noise" or self.scale == 1, "denoising models have scale = 1"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        assert not unknown, f"unknown config keys {sorted(unknown)}; known keys: {sorted(known)}"
        return cls(**data)

    @classmethod
    def from_toml(cls, path: Path, overrides: list[str] | None = None) -> TrainConfig:
        data = tomllib.loads(Path(path).read_text())
        for item in overrides or []:
            key, _, raw = item.partition("=")
            assert _, f"override {item!r} must look like key=value"
            data[key] = _parse_value(raw)
        return cls.from_dict(data)


def _parse_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw  # a bare string such as name=foo
