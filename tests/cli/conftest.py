"""Fixtures for the command line: a folder of small images, and a clean environment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support import images


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No key or settings from the developer's shell or .env file reach the command."""
    monkeypatch.delenv("IMGENHANCE_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """in/a.png, in/sub/b.jpg, in/sub/deeper/c.webp and a text file the walk leaves alone."""
    root = tmp_path / "in"
    write(root / "a.png", images.png(images.photo(20, 16, seed=1)))
    write(root / "sub" / "b.jpg", images.jpeg(images.photo(18, 14, seed=2)))
    write(root / "sub" / "deeper" / "c.webp", images.webp(images.photo(16, 16, seed=3)))
    write(root / "notes.txt", b"not an image, and not named like one")
    return root


def rgba(width: int = 20, height: int = 16) -> bytes:
    arr = np.dstack([images.photo(width, height, seed=4), images.rgba_disc(width, height)[..., 3]])
    return images.png(arr)


def rgb16(width: int = 20, height: int = 16) -> bytes:
    return images.png16_rgb(images.photo(width, height, seed=5).astype(np.uint16) * 256 + 77)
