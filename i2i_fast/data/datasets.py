"""Dataset layouts over image sources: unpaired, multi-domain, reference, paired.

A *source* is an indexed collection of images of one domain (``folders.FolderDomain``,
``synthetic.SyntheticDomain``) or of aligned pairs (``folders.AlignedFolder``,
``synthetic.SyntheticPairs``) with ``len()`` and ``load(index, rng) -> dict of tensors``. A
dataset arranges sources into the items a method trains on.

Keys: ``dataset[i]`` is item i of epoch 0; ``dataset[(epoch, i)]`` is item i of that epoch (the
training sampler passes such keys, so DataLoader workers need no shared epoch state). Every
random choice of an item (augmentation, which B image goes with A image i, which second
reference image) comes from a generator seeded by (seed, role, epoch, i): an item is the same
whatever worker builds it and whatever the number of workers.

Items (tensors; images (3, S, S) float32 in [-1, 1], masks (1, S, S) float32 {0, 1}):

- ``UnpairedDataset``: {"a", "b"} (+ "a_mask", "b_mask" for synthetic sources). Length
  max(|A|, |B|); item i takes A image i mod |A| and, independently, B image perm_e[i mod |B|] for
  a permutation perm_e of B drawn from (seed, epoch): a and b are not paired by index, each B
  image appears once per epoch when |B| >= |A|, and the pairing changes every epoch.
- ``MultiDomainDataset``: {"image", "domain": int64 scalar} (+ "mask"). With ``balanced=True``
  (StarGAN v2 samples domains uniformly) every domain has max count slots: slot j of a smaller
  domain d takes image perm_{e,d}[j mod |d|]; else the domains are concatenated.
- ``ReferenceDataset``: {"image", "image2", "domain"} (+ "mask", "mask2"): two images of the same
  domain (StarGAN v2's x_ref, x_ref2, y_ref); image2 is image perm'_{e,d}[j] of the same domain.
- ``MultiDomainReferenceDataset``: one StarGAN v2 training item, {"image", "domain", "ref",
  "ref2", "ref_domain"} (+ "mask", "ref_mask", "ref2_mask"): the ``MultiDomainDataset`` item i
  (the source x_real, y_org) and, independently, a reference pair of one domain (x_ref, x_ref2,
  y_trg) -- the ``ReferenceDataset`` pair of item perm_e[i], for a permutation perm_e of the
  items drawn from (seed, epoch), with its own augmentation draws. The official code draws them
  from two independent loaders; here they are independent within an epoch and balanced
  over domains like the source.
- ``PairedDataset``: {"a", "b"} aligned (+ "a_mask", "b_mask" for synthetic pairs).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch

from . import checks, seeding

Key = int | tuple[int, int]
Item = dict[str, torch.Tensor]


class ImageSource(Protocol):
    """Images of one domain (load returns at least "image") or aligned pairs ("a", "b")."""

    def __len__(self) -> int: ...

    def load(self, index: int, rng: np.random.Generator) -> Item: ...

    def describe(self) -> str: ...


def _as_int(owner: str, name: str, value: Any) -> int:
    if not isinstance(value, (bool, np.bool_)):
        try:
            return operator.index(value)  # int, numpy integer, integer 0-dim tensor
        except TypeError:
            pass
    raise TypeError(
        f"{owner}[key]: {name}: expected an int (key = index or (epoch, index)), "
        f"got {type(value).__name__}"
    )


def parse_key(key: Any, length: int, owner: str) -> tuple[int, int]:
    """(epoch, index) from an int index or an (epoch, index) pair; negative indices count back."""
    if isinstance(key, (tuple, list)):
        if len(key) != 2:
            raise TypeError(
                f"{owner}[key]: expected an index or (epoch, index), got a sequence of {len(key)}"
            )
        epoch, index = _as_int(owner, "epoch", key[0]), _as_int(owner, "index", key[1])
    else:
        epoch, index = 0, _as_int(owner, "index", key)
    if epoch < 0:
        raise IndexError(f"{owner}[key]: epoch: expected >= 0, got {epoch}")
    if not -length <= index < length:
        raise IndexError(f"{owner}[key]: index: expected in [-{length}, {length}), got {index}")
    return epoch, index % length


class _Orders:
    """Per-epoch permutations of a stream, cached for the last few epochs (per process)."""

    def __init__(self, seed: int):
        self.seed = seed
        self._cache: dict[tuple, np.ndarray] = {}

    def get(self, length: int, epoch: int, *stream: seeding.Key) -> np.ndarray:
        key = (length, epoch, *stream)
        order = self._cache.get(key)
        if order is None:
            if len(self._cache) >= 32:
                self._cache.pop(next(iter(self._cache)))
            order = seeding.permutation(length, self.seed, "order", *stream, epoch)
            self._cache[key] = order
        return order


class Dataset(torch.utils.data.Dataset):
    """Common behaviour: keys, length, description. Subclasses define `item` and `sources`."""

    kind = ""

    def __init__(self, seed: int, origin: str):
        self.seed = checks.integer(type(self).__name__, "seed", seed, 0)
        self.origin = origin
        self._orders = _Orders(self.seed)

    @property
    def sources(self) -> list:
        raise NotImplementedError

    @property
    def skipped(self) -> list:
        """Files left out by ``skip_bad=True`` (``folders.BadImage``: path, reason)."""
        return [bad for source in self.sources for bad in getattr(source, "skipped", [])]

    def exclude_unreadable(self, message: str) -> Any:
        """Leave out the file of one of the sources that an ImageReadError `message` names (as
        raised in a DataLoader worker too: the message then holds the worker's traceback); its
        items take the next readable file of its folder. The ``folders.BadImage`` left out, or
        None when the message names none of the files not left out already."""
        candidates = []
        for source in self.sources:
            for path in getattr(source, "files", ()):
                if str(path) in message:
                    candidates.append((len(str(path)), source, path))
        if not candidates:
            return None
        _, source, path = max(candidates, key=lambda c: c[0])  # a.png.png before a.png
        from .folders import read_error_line

        return source.exclude(path, read_error_line(message))

    def __len__(self) -> int:
        raise NotImplementedError

    def item(self, epoch: int, index: int) -> Item:
        raise NotImplementedError

    def __getitem__(self, key: Key) -> Item:
        epoch, index = parse_key(key, len(self), type(self).__name__)
        return self.item(epoch, index)

    def _rng(self, role: str, epoch: int, index: int) -> np.random.Generator:
        return seeding.rng(self.seed, "augment", role, epoch, index)

    def _header(self) -> str:
        return f"{self.kind} dataset from {self.origin}: {len(self)} items, seed {self.seed}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(origin={self.origin!r}, len={len(self)}, seed={self.seed})"


def _with_prefix(prefix: str, loaded: Item) -> Item:
    """{"image": x, "mask": m} -> {prefix: x, prefix + "_mask": m}."""
    return {(prefix if k == "image" else f"{prefix}_{k}"): v for k, v in loaded.items()}


class UnpairedDataset(Dataset):
    """Two domains, drawn independently: {"a", "b"} (+ masks). See the module doc."""

    kind = "unpaired"

    def __init__(self, a: ImageSource, b: ImageSource, seed: int, origin: str):
        super().__init__(seed, origin)
        self.a, self.b = a, b
        self.domain_names = (getattr(a, "name", "A"), getattr(b, "name", "B"))

    @property
    def sources(self) -> list:
        return [self.a, self.b]

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def b_index(self, epoch: int, index: int) -> int:
        """The B image that goes with item `index` in `epoch`."""
        return int(self._orders.get(len(self.b), epoch, "b")[index % len(self.b)])

    def item(self, epoch: int, index: int) -> Item:
        a = self.a.load(index % len(self.a), self._rng("a", epoch, index))
        b = self.b.load(self.b_index(epoch, index), self._rng("b", epoch, index))
        return {**_with_prefix("a", a), **_with_prefix("b", b)}

    def describe(self) -> str:
        return (
            f"{self._header()}; items {{a, b}} drawn independently (b from a per-epoch "
            f"permutation of B)\n  A: {self.a.describe()}\n  B: {self.b.describe()}"
        )


class MultiDomainDataset(Dataset):
    """K domains: {"image", "domain"} (+ "mask"). See the module doc for `balanced`."""

    kind = "multi_domain"

    def __init__(
        self, domains: Sequence[ImageSource], seed: int, origin: str, balanced: bool = True,
        names: Sequence[str] | None = None,
    ):
        super().__init__(seed, origin)
        if len(domains) < 1:
            raise ValueError(f"{type(self).__name__}: domains: expected at least one, got none")
        self.domains = list(domains)
        if names is not None and len(names) != len(self.domains):
            raise ValueError(
                f"{type(self).__name__}: names: expected one per domain ({len(self.domains)}), "
                f"got {len(names)}"
            )
        self.domain_names = tuple(
            names if names is not None else [getattr(d, "name", str(i)) for i, d in enumerate(domains)]
        )
        self.balanced = bool(balanced)
        self.counts = [len(d) for d in self.domains]
        self._slots = max(self.counts)
        self._starts = np.cumsum([0] + self.counts)

    @property
    def sources(self) -> list:
        return self.domains

    def __len__(self) -> int:
        return self._slots * len(self.domains) if self.balanced else int(self._starts[-1])

    def locate(self, epoch: int, index: int) -> tuple[int, int]:
        """(domain, image index in that domain) of item `index` in `epoch`."""
        if not self.balanced:
            d = int(np.searchsorted(self._starts, index, side="right")) - 1
            return d, index - int(self._starts[d])
        d, slot = divmod(index, self._slots)
        n = self.counts[d]
        if n == self._slots:
            return d, slot
        return d, int(self._orders.get(n, epoch, "domain", d)[slot % n])

    def item(self, epoch: int, index: int) -> Item:
        d, j = self.locate(epoch, index)
        loaded = self.domains[d].load(j, self._rng("image", epoch, index))
        return {**loaded, "domain": torch.tensor(d, dtype=torch.int64)}

    def describe(self) -> str:
        how = (
            f"balanced: {self._slots} slots per domain" if self.balanced else "domains concatenated"
        )
        lines = [f"{self._header()}; {len(self.domains)} domains, {how}"]
        for i, (name, d) in enumerate(zip(self.domain_names, self.domains)):
            lines.append(f"  domain {i} '{name}': {d.describe()}")
        return "\n".join(lines)


class ReferenceDataset(MultiDomainDataset):
    """Two images of one domain: {"image", "image2", "domain"} (+ "mask", "mask2")."""

    kind = "reference"

    def item(self, epoch: int, index: int) -> Item:
        d, j = self.locate(epoch, index)
        second = int(self._orders.get(self.counts[d], epoch, "reference", d)[j])
        first = self.domains[d].load(j, self._rng("image", epoch, index))
        other = self.domains[d].load(second, self._rng("image2", epoch, index))
        out = {**first, **{f"{k}2": v for k, v in other.items()}}
        out["domain"] = torch.tensor(d, dtype=torch.int64)
        return out


class MultiDomainReferenceDataset(MultiDomainDataset):
    """A source item and an independent reference pair: {"image", "domain", "ref", "ref2",
    "ref_domain"} (+ "mask", "ref_mask", "ref2_mask"). See the module doc."""

    kind = "multi_domain_reference"

    def reference_item(self, epoch: int, index: int) -> int:
        """The item whose reference pair goes with item `index` in `epoch`."""
        return int(self._orders.get(len(self), epoch, "reference item")[index])

    def item(self, epoch: int, index: int) -> Item:
        out = super().item(epoch, index)
        d, j = self.locate(epoch, self.reference_item(epoch, index))
        second = int(self._orders.get(self.counts[d], epoch, "reference", d)[j])
        ref = self.domains[d].load(j, self._rng("ref", epoch, index))
        ref2 = self.domains[d].load(second, self._rng("ref2", epoch, index))
        out.update(_with_prefix("ref", ref))
        out.update(_with_prefix("ref2", ref2))
        out["ref_domain"] = torch.tensor(d, dtype=torch.int64)
        return out


class PairedDataset(Dataset):
    """Aligned pairs: {"a", "b"} (+ "a_mask", "b_mask"), one source of pairs."""

    kind = "paired"

    def __init__(self, pairs: ImageSource, seed: int, origin: str):
        super().__init__(seed, origin)
        self.pairs = pairs
        self.domain_names = ("A", "B")

    @property
    def sources(self) -> list:
        return [self.pairs]

    def __len__(self) -> int:
        return len(self.pairs)

    def item(self, epoch: int, index: int) -> Item:
        return self.pairs.load(index, self._rng("pair", epoch, index))

    def describe(self) -> str:
        return f"{self._header()}; items {{a, b}} aligned\n  {self.pairs.describe()}"
