"""The real images of a synthetic set, domain by domain, with their ground truth.

Evaluation works on the synthetic sets only (``synthetic:<name>``, see ``i2i_fast.data``): they
know, for every image, its domain (the style) and its shape mask. This module opens a set for a
method's data kind and hands out its domains as ``SyntheticDomain`` sources, and batches of their
images and masks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from i2i_fast.data import SYNTHETIC_NAMES, open_dataset
from i2i_fast.data.synthetic import SyntheticDomain, SyntheticPairs

SYNTHETIC_PREFIX = "synthetic:"

# The dataset layout each method data kind trains on; evaluation opens the set the same way so
# that an incompatible (set, method) pair fails with the data package's own error.
KIND_OF_METHOD = {"unpaired": "unpaired", "multi_domain": "multi_domain",
                  "multi_domain_reference": "multi_domain", "paired": "paired",
                  "unlabelled": "multi_domain"}


@dataclass(frozen=True)
class SetDomains:
    """The domains of one split of a synthetic set, in label order.

    spec: "synthetic:<name>"; styles: style names (the domain names, label = position);
    domains: one ``SyntheticDomain`` per style; resolution: image side; pairs: for a paired
    set, its ``SyntheticPairs`` (image i of domain A with its ground-truth target), else None.
    """

    spec: str
    split: str
    resolution: int
    seed: int
    styles: tuple[str, ...]
    domains: tuple[SyntheticDomain, ...]
    pairs: SyntheticPairs | None = None


def check_synthetic_spec(spec: object, owner: str = "evaluate") -> str:
    """`spec` if it names a synthetic set, else a ValueError saying why evaluation needs one."""
    if not isinstance(spec, str) or not spec.startswith(SYNTHETIC_PREFIX):
        raise ValueError(
            f"{owner}: data: expected a synthetic set with ground truth, one of "
            f"{', '.join(SYNTHETIC_PREFIX + n for n in SYNTHETIC_NAMES)}; got {spec!r} (content "
            f"IoU and domain accuracy need the shape masks and domain labels that only the "
            f"synthetic sets have)"
        )
    return spec


def open_domains(
    spec: str, data_kind: str, split: str, resolution: int, seed: int = 0
) -> SetDomains:
    """The domains of `spec` as a method of `data_kind` sees them ("unpaired", "multi_domain",
    "paired"): two domains A, B for unpaired/paired methods, all the set's styles otherwise."""
    check_synthetic_spec(spec)
    if data_kind not in KIND_OF_METHOD:
        raise ValueError(
            f"evaluate: method.data_kind: expected one of {', '.join(KIND_OF_METHOD)}, "
            f"got {data_kind!r}"
        )
    dataset = open_dataset(
        spec, KIND_OF_METHOD[data_kind], split=split, resolution=resolution, seed=seed, size=None
    )
    pairs = dataset.pairs if data_kind == "paired" else None
    if pairs is not None:
        sources: Sequence = [pairs.domain_a, pairs.domain_b]
    else:
        sources = dataset.sources
    domains = tuple(sources)
    for d in domains:
        if not isinstance(d, SyntheticDomain):  # pragma: no cover - open_dataset guarantees it
            raise TypeError(f"evaluate: expected synthetic domains, got {type(d).__name__}")
    return SetDomains(
        spec=spec,
        split=split,
        resolution=resolution,
        seed=seed,
        styles=tuple(d.style.name for d in domains),
        domains=domains,
        pairs=pairs,
    )


def load_images(
    domain: SyntheticDomain, indices: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images `indices` of a domain: images (n, 3, R, R) float32 in [-1, 1], masks (n, 1, R, R)
    float32 {0, 1}."""
    if len(indices) == 0:
        r = domain.resolution
        return torch.empty(0, 3, r, r), torch.empty(0, 1, r, r)
    items = [domain.load(int(i)) for i in indices]
    return torch.stack([it["image"] for it in items]), torch.stack([it["mask"] for it in items])


def load_targets(test: SetDomains, indices: Sequence[int]) -> torch.Tensor:
    """The ground-truth targets (domain B) of inputs `indices` of domain A of a paired set:
    (n, 3, R, R) float32 in [-1, 1] (image i of domain A is the input of pair i)."""
    if test.pairs is None:
        raise ValueError(f"evaluate: {test.spec} opened for an unpaired method has no "
                         f"ground-truth pairs")
    items = [test.pairs.load(int(i)) for i in indices]
    return torch.stack([it["b"] for it in items])


def domain_at(styles: Sequence[str], split: str, resolution: int, seed: int, label: int,
              size: int | None = None) -> SyntheticDomain:
    """Domain `label` of a set whose styles are `styles` (slot = label), for a split."""
    if size is None:
        from i2i_fast.data import SYNTHETIC_EVAL_SIZE, SYNTHETIC_TRAIN_SIZE

        size = SYNTHETIC_TRAIN_SIZE if split == "train" else SYNTHETIC_EVAL_SIZE
    return SyntheticDomain(styles[label], resolution, size, seed, split, label)
