"""A small digit classifier, trained here on the MNIST training split, to judge generated
digits: does a digit generated for class k look like a k to a classifier that reads
real digits well? Its accuracy on held-out real digits is the reference.

    x (1x32x32) ─ conv 32 ─ conv 32 ─ pool ─ conv 64 ─ conv 64 ─ pool ─ dense 128 ─ dense 10
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from training.gan_data import RealSet

log = logging.getLogger("training")
RECIPE = 2  # part of the cache key: bump when training changes, so no stale judge is reused


class DigitClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(0.3), nn.Linear(64 * 8 * 8, 128), nn.ReLU(), nn.Linear(128, 10)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 32, 32) in [-1, 1] -> logits (N, 10)."""
        out: torch.Tensor = self.head(self.features(x))
        return out


def train_classifier(train: RealSet, epochs: int = 4, seed: int = 0, min_steps: int = 200) -> DigitClassifier:
    """``epochs`` passes over ``train``, more when a small set would give fewer than ``min_steps``
    updates: an under-trained judge would blame the generator for its own mistakes."""
    batches_per_epoch = -(-len(train) // 128)
    epochs = max(epochs, -(-min_steps // batches_per_epoch))
    torch.manual_seed(seed)
    net = DigitClassifier()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        order = rng.permutation(len(train))
        for start in range(0, len(order), 128):
            x, y = train.batch(order[start : start + 128])
            # small random shifts, so the classifier does not reward pixel-exact digits only
            x = torch.roll(x, shifts=(int(rng.integers(-2, 3)), int(rng.integers(-2, 3))), dims=(2, 3))
            loss = F.cross_entropy(net(x), y)  # type: ignore[arg-type]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        log.debug("digit classifier: epoch %d, last batch loss %.4f", epoch + 1, loss.item())
    log.info("digit classifier: %d epochs, last batch loss %.4f", epochs, loss.item())
    return net.eval()


@torch.no_grad()
def predict(net: DigitClassifier, images: np.ndarray) -> np.ndarray:
    """uint8 (N, 1, 32, 32) -> predicted class (N,)."""
    out = []
    for start in range(0, len(images), 256):
        x = torch.from_numpy(images[start : start + 256]).float().div(127.5).sub(1)
        out.append(net(x).argmax(dim=1).numpy())
    return np.concatenate(out)


def per_class_accuracy(net: DigitClassifier, images: np.ndarray, labels: np.ndarray) -> dict[int, float]:
    predicted = predict(net, images)
    return {int(k): float((predicted[labels == k] == k).mean()) for k in np.unique(labels)}


def cached_classifier(train: RealSet, cache: Path) -> DigitClassifier:
    """Train once per training split (the cache is keyed by its images and labels), then reuse."""
    import hashlib

    if train.labels is None:
        raise ValueError("the digit classifier needs labelled images")
    recipe = f"{RECIPE}|".encode()
    key = hashlib.sha256(recipe + train.images.tobytes() + train.labels.tobytes()).hexdigest()[:20]
    path = cache / f"digit-classifier-{key}.pt"
    net = DigitClassifier()
    if path.exists():
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return net.eval()
    net = train_classifier(train)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    return net
