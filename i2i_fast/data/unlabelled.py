"""The unlabelled image set TUNIT trains on: images without domain labels, each given as a pair
(the image, a strongly transformed version of it; see ``augment``).

Sources (``open_dataset(spec, "unlabelled")``):

- a folder of images with no domain folders: ``root/<split>/`` holding the images (any depth),
  or, for split "train", ``root/`` itself when it has no ``<split>/`` folder;
- a folder with domain folders ``root/<split>/<domain>/`` (the multi-domain layout): the domains
  are known, hidden from training (the items carry none) and kept for evaluation;
- ``synthetic:shapes-k<K>`` (and ``synthetic:shapes``): the domains (styles) are known, hidden the
  same way.

Items: {"image", "image_tf"} (3, S, S) float32 in [-1, 1]. The domains are concatenated (item i
is image i of the concatenation; no balancing: the official loader shuffles the whole set), and
``dataset.hidden_domain(index)`` / ``dataset.hidden_domains()`` give the hidden label of an item
for evaluation.

Semi-supervised (``labelled_fraction`` p > 0, TUNIT's p_semi; needs known domains): as the
official split, the first max(1, int(n_d · p)) images of each domain d are labelled, the others
unlabelled. Item i is then the unlabelled image i, {"image", "image_tf"}, together with a
labelled one, {"sup_image", "sup_image_tf", "sup_domain": int64}: image order[i mod n_sup] of the
labelled images, where order is a permutation drawn from (seed, epoch, i div n_sup), so each
labelled image comes once per n_sup items. The method uses the half its schedule says (the
official code draws supervised and unsupervised iterations from two loaders).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .augment import PairAugmentation, to_pil
from .datasets import Dataset, ImageSource, Item


def source_image(source: ImageSource, index: int) -> Image.Image:
    """Image `index` of a source as an RGB PIL image: the file itself for a folder, the rendered
    image (8 bits) for a synthetic domain."""
    read = getattr(source, "read", None)
    if callable(read):
        return read(index)
    return to_pil(source.load(index, None)["image"])


class UnlabelledDataset(Dataset):
    """Images as (image, transformed image) pairs; see the module docstring."""

    kind = "unlabelled"

    def __init__(self, sources: Sequence[ImageSource], augmentation: PairAugmentation,
                 seed: int, origin: str, names: Sequence[str] | None = None,
                 labelled: bool = True, labelled_fraction: float = 0.0):
        super().__init__(seed, origin)
        if len(sources) < 1:
            raise ValueError("UnlabelledDataset: sources: expected at least one, got none")
        self.sources_ = list(sources)
        self.augmentation = augmentation
        self.labelled = bool(labelled)  # whether the sources are known domains
        self.domain_names = tuple(names) if names is not None else tuple(
            getattr(s, "name", str(i)) for i, s in enumerate(self.sources_))
        if not (isinstance(labelled_fraction, (int, float)) and 0.0 <= labelled_fraction < 1.0):
            raise ValueError(f"UnlabelledDataset: labelled_fraction: expected a value in [0, 1), "
                             f"got {labelled_fraction!r}")
        if labelled_fraction > 0 and not self.labelled:
            raise ValueError(f"open_dataset: labelled_fraction: {origin} has no domain folders, "
                             f"so no labels for the semi-supervised mode (labelled_fraction "
                             f"{labelled_fraction}); put the images in <split>/<domain>/ folders")
        self.labelled_fraction = float(labelled_fraction)
        unlabelled, supervised = [], []
        for d, source in enumerate(self.sources_):
            n = len(source)
            n_sup = max(1, int(n * labelled_fraction)) if labelled_fraction > 0 else 0
            if labelled_fraction > 0 and n_sup >= n:
                raise ValueError(f"open_dataset: labelled_fraction: domain "
                                 f"{self.domain_names[d]!r} of {origin} has {n} image(s): "
                                 f"none left unlabelled with {labelled_fraction}")
            supervised += [(d, j) for j in range(n_sup)]
            unlabelled += [(d, j) for j in range(n_sup, n)]
        self._items = np.array(unlabelled, dtype=np.int64).reshape(-1, 2)
        self._supervised = np.array(supervised, dtype=np.int64).reshape(-1, 2)

    @property
    def sources(self) -> list:
        return self.sources_

    def __len__(self) -> int:
        return len(self._items)

    @property
    def supervised_length(self) -> int:
        """Labelled images of the semi-supervised mode (0 without it)."""
        return len(self._supervised)

    def hidden_domain(self, index: int) -> int | None:
        """The domain of item `index` (its unlabelled image), for evaluation; None when the
        sources are not known domains."""
        return int(self._items[index][0]) if self.labelled else None

    def hidden_domains(self) -> np.ndarray | None:
        """(len,) int64: the domain of every item, for evaluation (None: no known domains)."""
        return self._items[:, 0].copy() if self.labelled else None

    def _pair(self, d: int, j: int, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        return self.augmentation(source_image(self.sources_[d], int(j)), rng)

    def supervised_index(self, epoch: int, index: int) -> int:
        """The labelled image that goes with item `index` in `epoch` (semi-supervised mode)."""
        n_sup = len(self._supervised)
        cycle, slot = divmod(index, n_sup)
        order = self._orders.get(n_sup, epoch, "supervised", cycle)
        return int(order[slot])

    def item(self, epoch: int, index: int) -> Item:
        d, j = self._items[index]
        image, image_tf = self._pair(d, j, self._rng("image", epoch, index))
        out = {"image": image, "image_tf": image_tf}
        if self.labelled_fraction > 0:
            d, j = self._supervised[self.supervised_index(epoch, index)]
            image, image_tf = self._pair(d, j, self._rng("supervised", epoch, index))
            out.update(sup_image=image, sup_image_tf=image_tf,
                       sup_domain=torch.tensor(int(d), dtype=torch.int64))
        return out

    def describe(self) -> str:
        hidden = ("domains known, hidden from training" if self.labelled
                  else "no domain labels")
        lines = [f"{self._header()}; items {{image, image_tf}}, {hidden}; "
                 f"{self.augmentation.describe()}"]
        if self.labelled_fraction > 0:
            lines.append(f"  semi-supervised: {len(self._supervised)} labelled images (the first "
                         f"{self.labelled_fraction:g} of each domain) paired with the items")
        for i, (name, source) in enumerate(zip(self.domain_names, self.sources_)):
            lines.append(f"  {'domain ' + str(i) + ' ' if self.labelled else ''}'{name}': "
                         f"{source.describe()}")
        return "\n".join(lines)


def flat_folder(root: Path, split: str) -> Path | None:
    """The folder of an unlabelled set: root/<split>/ when it holds images and no subfolders,
    root/ itself for split "train" when there is no root/<split>/; else None (domain folders or
    another layout)."""
    split_dir = root / split
    if split_dir.is_dir():
        subdirs = [p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
        return None if subdirs else split_dir
    if split == "train" and root.is_dir() and not any(
            (root / f"{split}{side}").is_dir() for side in ("A", "B")):
        return root
    return None
