"""The image sizes a method's networks take, found from the networks themselves.

A size is tried by running the method's architecture on it (``runs``): every shape check of its
layers runs (a reflection pad wider than its input, a convolution larger than its input, a decoder
whose output does not match its input). Methods try it with one channel per layer, which leaves
those checks as they are and costs little. The smallest size is searched among the candidates
the design allows (multiples of its stride, powers of two), so no minimum is written down per
configuration.

``SizeRule`` is what a method says about its inputs: sides that are multiples of ``multiple``
from ``minimum`` on (up to ``maximum``, for networks built for one size). Methods set it as
``method.size_rule``; ``i2i-fast translate`` keeps an input's size where the rule allows it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch

LIMIT = 1 << 16  # the largest side tried when looking for the smallest one


@dataclasses.dataclass(frozen=True)
class SizeRule:
    """Image sides (height and width, each) a method's networks take: multiples of `multiple`,
    at least `minimum`, at most `maximum` (None: no bound)."""

    minimum: int
    multiple: int = 1
    maximum: int | None = None

    def allows(self, size: int) -> bool:
        return (size >= self.minimum and size % self.multiple == 0
                and (self.maximum is None or size <= self.maximum))

    def describe(self) -> str:
        if self.maximum is not None and self.maximum == self.minimum:
            return f"exactly {self.minimum}"
        what = f"a multiple of {self.multiple} >= {self.minimum}" if self.multiple > 1 \
            else f"a size >= {self.minimum}"
        return what + (f" and <= {self.maximum}" if self.maximum is not None else "")

    def check(self, owner: str, key: str, size: int, why: str = "") -> None:
        """ValueError "owner: key: expected ..., got size" when `size` is not allowed."""
        if not self.allows(size):
            raise ValueError(f"{owner}: {key}: expected {self.describe()}"
                             f"{f' ({why})' if why else ''}, got {size}")

    def fitted(self, size: int) -> int:
        """The largest allowed side <= `size` (0 when `size` is below the minimum)."""
        if self.maximum is not None:
            size = min(size, self.maximum)
        fitted = size - size % self.multiple
        return fitted if fitted >= self.minimum else 0


def runs(fn: Callable[[], Any]) -> bool:
    """Whether fn() gets through the shape checks of the networks it calls."""
    try:
        fn()
    except (RuntimeError, ValueError, IndexError):
        return False
    return True


def smallest_multiple(works: Callable[[int], bool], multiple: int, known: int | None = None
                      ) -> int | None:
    """The smallest multiple of `multiple` for which works(side) holds, given that it holds for
    every multiple above one that does (a network that runs at a side runs at larger ones);
    None up to LIMIT. known: a multiple already known to work (the search stays below it)."""
    lo = 0  # lo * multiple fails (or is not a size)
    if known is not None:
        hi = known // multiple
    else:
        hi = 1
        while not works(hi * multiple):
            lo, hi = hi, hi * 2
            if hi * multiple > LIMIT:
                return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if works(mid * multiple):
            hi = mid
        else:
            lo = mid
    return hi * multiple


def is_power_of_two(n: int) -> bool:
    """n is 1, 2, 4, 8, ..."""
    return n > 0 and n & (n - 1) == 0


def smallest_power_of_two(works: Callable[[int], bool]) -> int | None:
    """The smallest power of two for which works(side) holds (each tried, up to LIMIT)."""
    side = 1
    while side <= LIMIT:
        if works(side):
            return side
        side *= 2
    return None


def smallest_power_of_two_run(owner: str, run_at: Callable[[int], Any]) -> int:
    """The smallest power-of-two side for which run_at(side), building a method's networks for
    that side and running them, gets through (`runs`). Building them draws random numbers: the
    caller's random state is kept. ValueError naming `owner` when no side up to LIMIT works."""
    with torch.random.fork_rng(devices=[]):
        found = smallest_power_of_two(lambda side: runs(lambda: run_at(side)))
    if found is None:
        raise ValueError(f"{owner}: these networks run at no image size up to {LIMIT}")
    return found


def probe_multiple(works: Callable[[int], bool], multiple: int) -> SizeRule | None:
    """The rule of networks that take any multiple of `multiple` from some minimum on (fully
    convolutional), found with works(side), small sides first. None when no side up to LIMIT
    works."""
    minimum = smallest_multiple(works, multiple)
    return None if minimum is None else SizeRule(minimum, multiple)
