"""Training configurations: one dataclass per program, loaded from TOML, overridable
from the CLI (``--set key=value``).

``TrainConfig`` drives the super-resolution and denoising loop (``training.train``),
``StyleConfig`` the style-transfer loop (``training.train_style``). A checkpoint
stores its config, so ``export`` and ``eval`` rebuild the model and know its task
without guessing.
"""

from __future__ import annotations

import inspect
import itertools
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from training.archs.rrdb import RRDBNet
from training.style_losses import GRAM_CONTENT_WEIGHT, GRAM_STYLE_WEIGHT


class _TomlConfig:
    """from_dict / from_toml / to_dict for the config dataclasses below."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload, no-any-return]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}; known keys: {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_toml(cls, path: Path, overrides: list[str] | None = None) -> Any:
        data = tomllib.loads(Path(path).read_text())
        for item in overrides or []:
            key, sep, raw = item.partition("=")
            if not sep:
                raise ValueError(f"override {item!r} must look like key=value")
            data[key] = parse_value(raw)
        return cls.from_dict(data)


@dataclass
class TrainConfig(_TomlConfig):
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
    mismatch_prob: float = 0.0  # share of the rest told a random level, with a partial target (strength control)
    val_sigma: float = 25.0
    steps: int = 20_000
    max_minutes: float = 0.0  # 0 = no time budget; otherwise the LR schedule spans the budget
    lr: float = 5e-4
    lr_min: float = 1e-6
    optimizer: str = "adam"  # adam | rmsprop
    betas: tuple[float, float] = (0.9, 0.99)
    loss: str = "l1"  # l1 | charbonnier
    init_from: str = ""  # a checkpoint whose generator weights start this run (ESRGAN's second stage)
    # RRDBNet: start from these body blocks of init_from's deeper network, in this order
    # (a shallow student cut from its teacher; [] = init_from has this run's depth)
    init_blocks: list[int] = field(default_factory=list)
    # distillation: a model card whose outputs on the (degraded) inputs are the targets, not the HR
    teacher: str = ""
    teacher_pool: int = 1024  # input / teacher-output pairs kept in memory, made at the start of the run
    teacher_refresh: int = 2  # pairs replaced by fresh degradations after every step
    # GAN stage (stage = "gan"): generator loss = pixel + perceptual + gan terms;
    # perceptual stage: pixel + perceptual terms, no discriminator (distillation)
    stage: str = "psnr"  # psnr | gan | perceptual
    gan_type: str = "ragan"  # vanilla | lsgan | hinge | wgan-gp | ragan
    discriminator: str = "UNetDiscriminatorSN"  # or VGGStyleDiscriminator (input = hr_patch, 128 or 256)
    discriminator_args: dict[str, Any] = field(default_factory=dict)
    d_lr: float = 1e-4
    pixel_weight: float = 1.0
    perceptual_weight: float = 1.0
    perceptual_batch: int = 0  # samples of each batch the perceptual term sees (0 = all)
    perceptual_net: str = "vgg16"  # vgg16 (ImageNet, from `weights fetch`) | vgg19 (a local file, below)
    perceptual_layers: dict[str, float] = field(default_factory=dict)  # {} = the net's (losses.PERCEPTUAL_LAYERS)
    perceptual_weights: str = ""  # vgg19: local weights file (torchvision's vgg19-dcbedf0e.pth)
    perceptual_fallback: str = "refuse"  # vgg19: refuse | random (fixed random VGG19 when no weights file)
    gan_weight: float = 0.1
    gp_weight: float = 10.0  # wgan-gp only
    ema_decay: float = 0.999
    val_every: int = 1000
    patience: int = 0  # validations without improvement before stopping; 0 = never
    seed: int = 0
    amp: bool = False  # bf16 autocast (CUDA, or a CPU with bf16 instructions): loop.use_bf16
    channels_last: bool = False  # NHWC activations: cuDNN's faster layout (RRDBNet's bf16 step 1.2x on an H100)

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)  # type: ignore[assignment]
        _one_of("scale", self.scale, (1, 2, 4))
        _one_of("loss", self.loss, ("l1", "charbonnier"))
        _one_of("degradation", self.degradation, ("bicubic", "realesrgan", "noise"))
        _one_of("stage", self.stage, ("psnr", "gan", "perceptual"))
        _one_of("optimizer", self.optimizer, ("adam", "rmsprop"))
        _one_of("perceptual_fallback", self.perceptual_fallback, ("refuse", "random"))
        _one_of("perceptual_net", self.perceptual_net, ("vgg16", "vgg19"))
        if self.val_every <= 0:
            raise ValueError("val_every must be positive")
        if self.degradation == "noise" and self.scale != 1:
            raise ValueError("denoising models have scale = 1")
        if self.teacher and self.degradation == "noise":
            raise ValueError("teacher (distillation) is for super-resolution models")
        if self.teacher and not (0 <= self.teacher_refresh <= self.teacher_pool):
            raise ValueError("teacher_refresh must be between 0 and teacher_pool")
        if self.init_blocks:
            if not self.init_from or self.arch != "RRDBNet":
                raise ValueError("init_blocks picks RRDBNet blocks of init_from: it needs both")
            default = inspect.signature(RRDBNet).parameters["num_block"].default
            depth = int(self.arch_args.get("num_block", default))
            if len(self.init_blocks) != depth:
                raise ValueError(f"init_blocks names {len(self.init_blocks)} blocks; the network has {depth}")


@dataclass
class Painting:
    """A named style: the painting's file under --data-root and what a person should know."""

    name: str  # what requests send as style=<name>; the model id is style-<name>
    image: str
    title: str
    artist: str
    year: str
    licence: str = "public domain"
    source: str = ""


@dataclass
class StyleConfig(_TomlConfig):
    """A style-transfer network: ``method = "johnson"`` learns the ``styles`` paintings
    (one network, a conditional instance norm per painting), ``method = "adain"`` learns
    a decoder for any style (``style_sets``)."""

    name: str  # run name
    task: str = "style-transfer"
    method: str = "johnson"  # johnson | adain
    arch_args: dict[str, Any] = field(default_factory=dict)  # TransformerNet(width, blocks); AdaINNet takes none
    styles: list[Painting] = field(default_factory=list)  # johnson: [[styles]] tables in TOML
    style_size: int = 512  # the painting's longer side when its statistics are taken: sets the stroke scale
    # adain: folders of style images, and the paintings held out to test unseen styles
    style_sets: list[str] = field(default_factory=lambda: ["styles"])
    held_out_styles: list[str] = field(default_factory=list)  # file stems under style_sets, never trained on
    photo_style_share: float = 0.5  # adain: share of style samples that are photographs (more statistics seen)
    content_sets: list[str] = field(default_factory=lambda: ["T91", "BSD200"])
    crop: int = 256  # content (and style) crop side in training
    scale_range: tuple[float, float] = (1.0, 2.0)  # content images resized so the shorter side is crop x [lo, hi]
    batch_size: int = 4
    steps: int = 10_000
    max_minutes: float = 0.0  # 0 = no time budget
    lr: float = 1e-3
    lr_min: float = 1e-5
    style_lr_scale: float = 10.0  # johnson, several paintings: learning-rate factor of the per-painting norms
    content_weight: float = GRAM_CONTENT_WEIGHT  # johnson: relu2_2; adain: relu4_1 against the AdaIN target
    style_weight: float = GRAM_STYLE_WEIGHT  # johnson: Gram on relu1_2..relu4_3; adain: mean/std on relu1_1..relu4_1
    tv_weight: float = 0.0
    gram_weight: float = 0.0  # adain: weight of the Gram style loss (relu1_2..relu4_3) inside the style term
    init_from: str = ""  # a checkpoint, or shipped cards ("models/style-{name}.json"): train_style.initial_state
    val_every: int = 250
    eval_sets: list[str] = field(default_factory=lambda: ["Set5", "Set14"])
    eval_size: int = 256  # content images' longer side when losses are compared with Gatys
    seed: int = 0
    threads: int = 0  # torch intra-op threads on CPU; 0 = torch's default
    amp: bool = False  # bf16 autocast of the training step (validation stays fp32): loop.use_bf16
    clip_spikes: float = 5.0  # gradient norm clipped to this x the recent median (loop.SpikeClip); 0 = off

    def __post_init__(self) -> None:
        self.scale_range = tuple(self.scale_range)  # type: ignore[assignment]
        _one_of("method", self.method, ("johnson", "adain"))
        self.styles = [Painting(**s) if isinstance(s, dict) else s for s in self.styles]
        if self.method == "johnson" and not self.styles:
            raise ValueError("a johnson (named styles) run needs at least one [[styles]] painting")
        if self.method == "adain" and not self.held_out_styles:
            raise ValueError("an adain run needs held_out_styles: they validate it and measure unseen styles")
        names = [s.name for s in self.styles]
        if len(set(names)) != len(names):
            raise ValueError(f"style names must be unique: {names}")
        if self.crop % 8:
            raise ValueError(f"crop must be a multiple of 8, got {self.crop}")


def _one_of(key: str, value: object, allowed: tuple[object, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{key} must be one of {list(allowed)}, got {value!r}")


def parse_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw  # a bare string such as name=foo


@dataclass
class GanConfig(_TomlConfig):
    """A generator trained as a GAN (``python -m training train-gan``)."""

    name: str  # run name; also the default model id
    task: str = "generate"
    data: str = "mnist"  # under --data-root: the MNIST folder (idx files) or a folder of images
    holdout: int = 2000  # images kept out of training for evaluation (MNIST: the last ones; folders: every k-th)
    classes: list[str] = field(default_factory=list)  # class names of a conditional model; [] = unconditional
    resolution: int = 32  # output side (MNIST's 28 px are padded to 32)
    channels: int = 1  # 1 = gray, 3 = RGB
    latent: int = 128
    g_width: int = 256  # channels at 4x4, halved per doubling of resolution (at least min_width)
    d_width: int = 256
    min_width: int = 32
    loss: str = "hinge"  # bce | lsgan | wgan-gp | hinge
    spectral_norm: bool = True  # on every discriminator layer
    equalized_lr: bool = False  # ProGAN's equalised learning rate in G and D (training/archs/gan.py says why)
    gp_weight: float = 10.0  # wgan-gp
    r1_weight: float = 0.0  # R1 gradient penalty on real images (0 = off)
    cr_weight: float = 0.0  # consistency regularisation: D(x) ~ D(flip/translate(x)) on reals
    diffaugment: list[str] = field(default_factory=list)  # of color, translation, cutout; real AND fake
    optimizer: str = "adam"  # adam | rmsprop
    g_lr: float = 2e-4
    d_lr: float = 2e-4
    betas: tuple[float, float] = (0.0, 0.99)
    d_steps: int = 1  # discriminator steps per generator step
    batch_size: int = 64
    steps: int = 10_000  # generator steps
    max_minutes: float = 0.0  # 0 = no time budget
    ema_decay: float = 0.999
    progressive: list[int] = field(default_factory=list)  # e.g. [32, 64, 128]: grow through these; [] = fixed
    stage_steps: int = 0  # progressive: steps per resolution; the first half of each fades the new block in
    init_from: str = ""  # transfer: a train-gan checkpoint to start from
    freeze_d: int = 0  # FreezeD: the first k discriminator blocks (input side) stay frozen
    sample_every: int = 500  # sample grid (fixed latents), GIF frame, curves, checkpoints
    eval_images: int = 2000  # generated images for FID/KID in evaluation
    seed: int = 0
    threads: int = 0

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)  # type: ignore[assignment]
        _one_of("loss", self.loss, ("bce", "lsgan", "wgan-gp", "hinge"))
        _one_of("optimizer", self.optimizer, ("adam", "rmsprop"))
        _one_of("channels", self.channels, (1, 3))
        unknown = sorted(set(self.diffaugment) - {"color", "translation", "cutout"})
        if unknown:
            raise ValueError(f"diffaugment takes color, translation and cutout, not {unknown}")
        if self.resolution < 8 or self.resolution & (self.resolution - 1):
            raise ValueError(f"resolution must be a power of two of at least 8, got {self.resolution}")
        if self.progressive:
            steps = self.progressive
            doubling = all(b == 2 * a for a, b in itertools.pairwise(steps))
            if not doubling or steps[0] < 8 or steps[-1] != self.resolution or not self.stage_steps:
                raise ValueError(
                    f"progressive must double from at least 8 up to resolution ({self.resolution}), "
                    f"with stage_steps; got {steps}"
                )


# the config each training command reads (python -m training <command> --config ...)
CONFIG_OF_COMMAND: dict[str, type[_TomlConfig]] = {
    "train": TrainConfig,
    "train-style": StyleConfig,
    "train-gan": GanConfig,
}
