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
    train_sets: list[str] = field(default_factory=lambda: ["T91", "BSD200"])  # folders under --data-root
    val_sets: list[str] = field(default_factory=lambda: ["Set5"])  # early stopping / curves
    eval_sets: list[str] = field(default_factory=lambda: ["Set5", "Set14"])  # final report and card
    lr_patch: int = 48  # low-resolution patch side
    batch_size: int = 32
    steps: int = 20_000
    max_minutes: float = 0.0  # 0 = no time budget; otherwise the LR schedule spans the budget
    lr: float = 5e-4
    lr_min: float = 1e-6
    betas: tuple[float, float] = (0.9, 0.99)
    loss: str = "l1"  # l1 | charbonnier
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
