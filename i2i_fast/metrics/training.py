"""Fitting the small metric networks on real synthetic images.

The domain classifier and the shape segmenter are trained the same way: a pool of real images
of every domain of the set (rendered once, at the evaluation resolution, from the "train"
split), random batches from the pool with augmentations, Adam with a cosine schedule, a few
hundred steps on the CPU. Held-out figures come from the "val" split, whose scenes and style
parameters are disjoint from the pool's (and from the "test" split that evaluation translates).

Augmentations stand in for the imperfections of generated images without leaving the domain:
random flips and quarter turns (images and masks together), Gaussian pixel noise (sigma up to
``NOISE``), a partial 3x3 blur (mixing weight up to ``BLUR``) and a brightness offset (up to
``BRIGHTNESS``, in [-1, 1] units; the styles keep shape and background lightness more than
0.08 luma = 0.16 units from their thresholds, so the offset never makes a shape look like
background).
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .real_images import domain_at, load_images

# Module files whose source the trained networks depend on (part of their cache key).
DATA_SOURCES = ("data/shapes.py", "data/styles.py", "data/synthetic.py")

NOISE = 0.08
BLUR = 0.7
BRIGHTNESS = 0.08


@dataclass
class RealPool:
    """Real images of K domains: images (M, 3, R, R) in [-1, 1], masks (M, 1, R, R) {0, 1},
    labels (M,) int64 domain indices."""

    images: torch.Tensor
    masks: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return self.images.shape[0]

    def sample(self, batch_size: int, generator: torch.Generator,
               augment: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A random batch (images, masks, labels), augmented."""
        idx = torch.randint(len(self), (batch_size,), generator=generator)
        images, masks = self.images[idx], self.masks[idx]
        if augment:
            images, masks = augment_batch(images, masks, generator)
        return images, masks, self.labels[idx]


def to_work_size(x: torch.Tensor, size: int) -> torch.Tensor:
    """Images or masks (N, C, R, R) averaged down to (N, C, size, size) (area interpolation; the
    identity when R == size). A mask becomes the fraction of each cell it covers."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="area")


def render_pool(styles: Sequence[str], split: str, resolution: int, per_domain: int,
                store_size: int, data_seed: int = 0, chunk: int = 32) -> RealPool:
    """Images 0..per_domain-1 of every domain of the split (domain d = style d, slot d),
    rendered at `resolution` and kept at `store_size` (``to_work_size``: what the metric
    networks compute on), so a pool at 256 x 256 does not hold full-size images."""
    images, masks, labels = [], [], []
    for label in range(len(styles)):
        domain = domain_at(styles, split, resolution, data_seed, label, size=max(per_domain, 1))
        for start in range(0, per_domain, chunk):
            x, m = load_images(domain, range(start, min(start + chunk, per_domain)))
            images.append(to_work_size(x, store_size))
            masks.append(to_work_size(m, store_size))
        labels.append(torch.full((per_domain,), label, dtype=torch.int64))
    return RealPool(torch.cat(images), torch.cat(masks), torch.cat(labels))


def held_out_batches(
    styles: Sequence[str], resolution: int, per_domain: int, data_seed: int = 0,
    split: str = "val", chunk: int = 32,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Real images of the held-out split at full resolution, in chunks: (images (n, 3, R, R),
    masks (n, 1, R, R), labels (n,)), domain after domain."""
    for label in range(len(styles)):
        domain = domain_at(styles, split, resolution, data_seed, label, size=max(per_domain, 1))
        for start in range(0, per_domain, chunk):
            x, m = load_images(domain, range(start, min(start + chunk, per_domain)))
            yield x, m, torch.full((x.shape[0],), label, dtype=torch.int64)


def box_blur(x: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    kernel = torch.full((c, 1, 3, 3), 1.0 / 9.0, dtype=x.dtype)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=c)


def augment_batch(images: torch.Tensor, masks: torch.Tensor,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random flips/quarter turns (images and masks alike), noise, blur, brightness: see the
    module doc. images (B, 3, R, R), masks (B, 1, R, R) -> same shapes."""
    b = images.shape[0]
    turns = torch.randint(4, (b,), generator=generator).tolist()
    flips = torch.randint(2, (b,), generator=generator).tolist()
    geo_x, geo_m = [], []
    for i in range(b):
        x, m = images[i], masks[i]
        if flips[i]:
            x, m = x.flip(-1), m.flip(-1)
        geo_x.append(torch.rot90(x, turns[i], (-2, -1)))
        geo_m.append(torch.rot90(m, turns[i], (-2, -1)))
    x = torch.stack(geo_x)
    m = torch.stack(geo_m)
    blur = torch.rand(b, 1, 1, 1, generator=generator) * BLUR
    x = x + (box_blur(x) - x) * blur
    sigma = torch.rand(b, 1, 1, 1, generator=generator) * NOISE
    x = x + torch.randn(x.shape, generator=generator) * sigma
    shift = (torch.rand(b, 1, 1, 1, generator=generator) * 2 - 1) * BRIGHTNESS
    return (x + shift).clamp(-1.0, 1.0), m


def fit(
    model: torch.nn.Module,
    sample_batch: Callable[[torch.Generator], tuple[torch.Tensor, ...]],
    loss_fn: Callable[..., torch.Tensor],
    steps: int,
    lr: float,
    seed: int,
    progress: str | None = None,
) -> list[float]:
    """Train `model` for `steps` Adam steps (cosine schedule to 0) on batches from
    `sample_batch(generator)`; `loss_fn(model, *batch)` gives the loss. Returns the losses.
    progress: the title of a progress bar on stderr (steps, rate, ETA, loss), or None.

    Deterministic given the seed (single process; CPU kernels may differ in the last bits
    between thread counts)."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    model.train()
    losses = []
    with tqdm(total=steps, desc=progress, unit="step", file=sys.stderr,
              disable=progress is None, mininterval=0.5) as bar:
        for step in range(steps):
            batch = sample_batch(generator)
            loss = loss_fn(model, *batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(float(loss.detach()))
            if step % 10 == 0 or step == steps - 1:
                bar.set_postfix_str(f"loss={losses[-1]:.3g}", refresh=False)
            bar.update(1)
    model.eval()
    return losses


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run the block with one intra-op thread (restored after).

    The metric networks are so small that threads only add synchronisation (measured 10x slower
    steps with 2 threads on a busy 2-core machine), and one thread makes their training give the
    same bits whatever the machine's thread count.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def seeded_init(build: Callable[[], torch.nn.Module], seed: int) -> torch.nn.Module:
    """`build()` under a torch RNG seeded with `seed`, leaving the global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def cached_network(what: str, cache_name: str, styles: Sequence[str], resolution: int,
                   settings: Any, sources: Sequence[str],
                   train: Callable[[], tuple[dict, dict]],
                   build: Callable[[], torch.nn.Module], cache_dir=None
                   ) -> tuple[torch.nn.Module, dict, bool, Any]:
    """A metric network of the set `styles` at `resolution`: from the cache, or trained with
    `train()` (on one thread) and cached first. The cache key holds `what`, the set, the settings
    and a digest of the `sources` (package files). Returns (network in eval mode, info,
    trained_now, cache path); the network is built under a forked RNG seeded with
    settings.seed, so loading it leaves the caller's random stream alone."""
    from . import cache

    key_parts = {
        "what": what,
        "styles": list(styles),
        "resolution": resolution,
        "settings": dataclasses.asdict(settings),
        "sources": cache.source_digest(cache.package_files(*sources)),
    }

    def train_single_threaded() -> tuple[dict, dict]:
        with single_thread():
            return train()

    state, info, trained_now, path = cache.load_or_train(cache_name, key_parts,
                                                         train_single_threaded, cache_dir)
    net = seeded_init(build, settings.seed)
    net.load_state_dict(state)
    net.eval()
    return net, info, trained_now, path
