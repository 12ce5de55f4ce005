"""Real images for the GANs: MNIST digits (idx files) or a folder of pictures, split into
the images a generator trains on and the ones kept for evaluation.

MNIST: the last ``holdout`` images (of the 10,000 in the test-split files we have) are
held out; digits are padded from 28 to 32 pixels. Folders: every k-th picture is held
out, so both halves cover the set; pictures are resized to the resolution (Lanczos).
Everything lives in memory as uint8 (N, C, H, W), with labels for MNIST.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from training.data import list_images

MNIST_IMAGES = "t10k-images-idx3-ubyte.gz"
MNIST_LABELS = "t10k-labels-idx1-ubyte.gz"


@dataclass(frozen=True)
class RealSet:
    images: np.ndarray  # uint8 (N, C, H, W)
    labels: np.ndarray | None  # int64 (N,) for class-conditional sets

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def batch(self, index: np.ndarray, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor | None]:
        """Images in [-1, 1] and their labels."""
        x = torch.from_numpy(self.images[index]).to(device).float().div(127.5).sub(1)
        y = torch.from_numpy(self.labels[index]).to(device) if self.labels is not None else None
        return x, y


def read_idx(path: Path) -> np.ndarray:
    """An MNIST idx file (gzip) as an array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    kind, dims = data[2], data[3]
    if data[:2] != b"\x00\x00" or kind != 0x08:
        raise ValueError(f"{path.name} is not an unsigned-byte idx file")
    shape = struct.unpack(f">{dims}I", data[4 : 4 + 4 * dims])
    array: np.ndarray = np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)
    return array


def load_mnist(folder: Path, holdout: int, resolution: int = 32) -> tuple[RealSet, RealSet]:
    images = read_idx(folder / MNIST_IMAGES)
    labels = read_idx(folder / MNIST_LABELS).astype(np.int64)
    pad = (resolution - images.shape[1]) // 2
    images = np.pad(
        images, ((0, 0), (pad, resolution - images.shape[1] - pad), (pad, resolution - images.shape[2] - pad))
    )
    images = images[:, None]
    cut = len(images) - holdout
    return RealSet(images[:cut], labels[:cut]), RealSet(images[cut:], labels[cut:])


def load_folder(folder: Path, holdout: int, resolution: int, channels: int) -> tuple[RealSet, RealSet]:
    paths = list_images([folder])
    mode = "RGB" if channels == 3 else "L"
    pictures = []
    for path in paths:
        with Image.open(path) as im:
            img = np.asarray(im.convert(mode).resize((resolution, resolution), Image.Resampling.LANCZOS))
        pictures.append(img.reshape(resolution, resolution, channels).transpose(2, 0, 1))
    images = np.stack(pictures)
    every = max(2, round(len(images) / holdout)) if holdout else 0
    held = np.zeros(len(images), bool)
    if every:
        held[::every] = True
    return RealSet(images[~held], None), RealSet(images[held], None)


def load_real(data_root: Path, data: str, holdout: int, resolution: int, channels: int) -> tuple[RealSet, RealSet]:
    """(training images, held-out images)."""
    folder = data_root / data
    if (folder / MNIST_IMAGES).exists():
        return load_mnist(folder, holdout, resolution)
    return load_folder(folder, holdout, resolution, channels)
