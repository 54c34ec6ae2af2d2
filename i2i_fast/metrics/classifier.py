"""Target-domain accuracy: a small CNN that tells the domains of a synthetic set apart.

Trained on real images of the set's domains (``training``: a pool from the "train" split at the
evaluation resolution, augmented), cached on disk (``cache``), and checked on the held-out "val"
split: its accuracy there is reported next to every evaluation as a sanity line. The accuracy of
a translation is the fraction of outputs that it assigns to the requested target domain.

The network averages its input down to at most ``WORK_SIZE`` pixels a side first (the domains
differ by background colour, lightness and texture, all visible at that size; it keeps training
a few hundred steps on the CPU short at 256 x 256), then four 3x3 convolutions (three with
stride 2), global average pooling and a linear layer: (N, 3, R, R) -> (N, K) logits.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from . import training

WORK_SIZE = 64
SOURCES = ("metrics/classifier.py", "metrics/training.py", "metrics/real_images.py",
           *training.DATA_SOURCES)


@dataclass(frozen=True)
class ClassifierSettings:
    """How the classifier is trained (all part of its cache key)."""

    steps: int = 300
    batch_size: int = 32
    lr: float = 2e-3
    images_per_domain: int = 160
    val_per_domain: int = 100
    seed: int = 0
    data_seed: int = 0


class DomainClassifier(nn.Module):
    """(N, 3, R, R) float in [-1, 1] -> (N, n_domains) logits. R is fixed at construction."""

    def __init__(self, n_domains: int, resolution: int, width: int = 32):
        super().__init__()
        self.n_domains = n_domains
        self.resolution = resolution
        self.work_size = min(resolution, WORK_SIZE)
        self.features = nn.Sequential(
            nn.Conv2d(3, width // 2, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width // 2, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
        )
        self.head = nn.Linear(2 * width, n_domains)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_work(training.to_work_size(x, self.work_size))

    def forward_work(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of images already at the work size (N, 3, w, w)."""
        return self.head(self.features(x).mean(dim=(2, 3)))

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted domain labels (N,) int64 of images (N, 3, R, R) in [-1, 1]."""
        check_images("DomainClassifier.predict", x, self.resolution)
        return self(x.float()).argmax(dim=1)


def check_images(owner: str, x: object, resolution: int) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{owner}: images: expected a tensor, got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] != 3 or x.shape[2] != resolution or x.shape[3] != resolution:
        raise ValueError(
            f"{owner}: images: expected shape (N, 3, {resolution}, {resolution}), "
            f"got {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise TypeError(f"{owner}: images: expected a floating dtype, got {x.dtype}")
    return x


@dataclass
class TrainedClassifier:
    """A domain classifier ready to use, with how it was made and how well it does on real
    held-out images (``info``: "val_accuracy", "val_accuracy_per_domain", "steps",
    "final_loss", ...)."""

    net: DomainClassifier
    styles: tuple[str, ...]
    resolution: int
    info: dict[str, Any]
    trained_now: bool
    path: Path

    def to(self, device: torch.device | str) -> TrainedClassifier:
        self.net.to(device)
        return self


def _train(styles: Sequence[str], resolution: int, s: ClassifierSettings,
           log, progress: bool = True) -> tuple[dict, dict]:
    net = training.seeded_init(lambda: DomainClassifier(len(styles), resolution), s.seed)
    log(f"i2i_fast.metrics: training the domain classifier for {', '.join(styles)} at "
        f"{resolution}x{resolution} ({s.steps} steps; cached afterwards)")
    pool = training.render_pool(styles, "train", resolution, s.images_per_domain,
                                net.work_size, s.data_seed)

    def loss_fn(model, images, masks, labels):
        return F.cross_entropy(model.forward_work(images), labels)

    losses = training.fit(net, lambda g: pool.sample(s.batch_size, g), loss_fn,
                          s.steps, s.lr, s.seed,
                          progress="training the domain classifier" if progress else None)
    correct = torch.zeros(len(styles))
    total = torch.zeros(len(styles))
    with torch.no_grad():
        for x, _, labels in training.held_out_batches(styles, resolution, s.val_per_domain,
                                                      s.data_seed):
            hit = (net(x).argmax(1) == labels).float()
            correct.index_add_(0, labels, hit)
            total.index_add_(0, labels, torch.ones_like(hit))
    per_domain = (correct / total).tolist()
    info = {
        "val_accuracy": float(correct.sum() / total.sum()),
        "val_accuracy_per_domain": dict(zip(styles, per_domain)),
        "val_images": int(total.sum()),
        "final_loss": sum(losses[-20:]) / len(losses[-20:]),
        "settings": dataclasses.asdict(s),
    }
    return net.state_dict(), info


def domain_classifier(
    styles: Sequence[str],
    resolution: int,
    *,
    settings: ClassifierSettings | None = None,
    cache_dir: str | os.PathLike | None = None,
    log=None,
    progress: bool = True,
) -> TrainedClassifier:
    """The classifier of the set whose domains are `styles` (label = position) at `resolution`:
    loaded from the cache, or trained (and cached) first. log(message): what is done (default:
    stderr); progress: a progress bar on stderr while it trains."""
    styles = tuple(styles)
    if len(styles) < 2:
        raise ValueError(f"domain_classifier: styles: expected at least 2 domains, got {styles}")
    s = settings or ClassifierSettings()
    log = log or (lambda msg: print(msg, file=sys.stderr))
    net, info, trained_now, path = training.cached_network(
        "domain_classifier", "classifier", styles, resolution, s, SOURCES,
        lambda: _train(styles, resolution, s, log, progress),
        lambda: DomainClassifier(len(styles), resolution), cache_dir)
    return TrainedClassifier(net, styles, resolution, info, trained_now, path)
