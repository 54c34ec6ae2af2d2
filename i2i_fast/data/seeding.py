"""Random generators derived from a tuple of keys, independent of process, worker and order.

Every random choice of the data package (a scene's geometry, a style's parameters, an
augmentation, an epoch's order) comes from ``rng(seed, "what", ...)``: a fresh numpy generator
whose stream depends only on the keys. So item ``i`` of epoch ``e`` is the same whichever worker
process builds it, and in whatever order.
"""

from __future__ import annotations

import zlib

import numpy as np

Key = int | str


def _entropy(key: Key) -> int:
    if isinstance(key, bool) or not isinstance(key, (int, str, np.integer)):
        raise TypeError(f"rng: key: expected an int or a str, got {type(key).__name__}")
    if isinstance(key, str):
        # Strings name streams; a fixed hash (not Python's salted hash()) keeps them stable.
        return zlib.crc32(key.encode("utf-8"))
    if key < 0:
        raise ValueError(f"rng: key: expected a non-negative int, got {key}")
    return int(key)


def rng(*keys: Key) -> np.random.Generator:
    """A numpy Generator (PCG64) seeded by the sequence of keys (non-negative ints or strings)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([_entropy(k) for k in keys])))


def permutation(length: int, *keys: Key) -> np.ndarray:
    """A permutation of range(length) (int64) drawn from ``rng(*keys)``."""
    return rng(*keys).permutation(length)
