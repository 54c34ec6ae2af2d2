"""The caching CPU allocator of the compiled extension (csrc/common/cpu_caching_allocator.cpp).

Installed, it becomes the process's CPU allocator: every CPU tensor of at least 1 MiB (every
provider's, torch's own operators and optimizers included) comes from a cache of blocks that
were freed earlier, so a training loop stops paying the page faults of fresh large tensors on
every iteration. Idle cached memory is bounded (``max_cached_bytes``); a failed allocation
releases the cache first. See the C++ file for the rules.

    from i2i_fast import cpu_allocator
    cpu_allocator.install()          # the default bound; returns the stats
    cpu_allocator.stats()            # installed, in use, cached, hits, misses, ...
    with cpu_allocator.setting("caching"): ...   # benchmarks: a setting for a block

The ``i2i-fast`` commands that train on the CPU (train, demo, compare) install it unless
``I2I_FAST_CPU_CACHE=0``; ``I2I_FAST_CPU_CACHE=<MiB>`` sets the bound. ``i2i-fast info`` reports
it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator

ENV = "I2I_FAST_CPU_CACHE"
GiB = 1 << 30
MiB = 1 << 20
SETTINGS = ("default", "caching")


@dataclasses.dataclass
class CacheStats:
    installed: bool
    in_use_bytes: int  # bytes of live tensors served by the cache
    cached_bytes: int  # idle blocks kept for reuse
    max_cached_bytes: int
    hits: int  # large allocations served from the cache
    misses: int  # large allocations that mapped a new block
    evicted_bytes: int  # cached bytes given back to the system to respect the bound
    huge_pages: bool

    def describe(self) -> str:
        if not self.installed:
            return "not installed (torch's CPU allocator)"
        return (f"installed: {self.in_use_bytes / MiB:.0f} MiB in use, {self.cached_bytes / MiB:.0f}"
                f" MiB cached (bound {self.max_cached_bytes / MiB:.0f} MiB), {self.hits} hits, "
                f"{self.misses} misses, {self.evicted_bytes / MiB:.0f} MiB given back"
                + (", huge pages advised" if self.huge_pages else ""))


class AllocatorUnavailable(RuntimeError):
    """The compiled extension (which holds the allocator) is not loaded."""


def _ops():
    from . import extension

    state = extension.load()
    if not state.loaded:
        raise AllocatorUnavailable(f"the caching CPU allocator is part of the compiled "
                                   f"extension, which failed to build or load: {state.error}")
    import torch

    return torch.ops.i2i_fast


def default_max_cached_bytes() -> int:
    """A quarter of the physical memory, at most 8 GiB."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 16 * GiB
    return min(total // 4, 8 * GiB)


def install(max_cached_bytes: int | None = None, huge_pages: bool = False) -> CacheStats:
    """Make the caching allocator the process's CPU allocator (again: updates its settings)."""
    if max_cached_bytes is None:
        max_cached_bytes = default_max_cached_bytes()
    if isinstance(max_cached_bytes, bool) or not isinstance(max_cached_bytes, int) \
            or max_cached_bytes < 0:
        raise ValueError(f"cpu_allocator.install: max_cached_bytes: expected an int >= 0, got "
                         f"{max_cached_bytes!r}")
    _ops().cpu_cache_install(max_cached_bytes, bool(huge_pages))
    return stats()


def uninstall() -> None:
    """Back to the allocator it replaced (tensors it served stay valid); the cache is released."""
    _ops().cpu_cache_uninstall()


def empty_cache() -> None:
    """Give every idle cached block back to the system."""
    _ops().cpu_cache_empty()


def stats() -> CacheStats:
    values = list(_ops().cpu_cache_stats())
    return CacheStats(bool(values[0]), *values[1:7], bool(values[7]))


@contextlib.contextmanager
def setting(name: str) -> Iterator[None]:
    """Inside the block, the process runs under allocator setting `name`: "default" (torch's
    CPU allocator) or "caching" (this one, default bound). The previous state is restored."""
    if name not in SETTINGS:
        raise ValueError(f"cpu_allocator.setting: name: expected one of {SETTINGS}, got {name!r}")
    before = stats()
    if name == "caching":
        install(before.max_cached_bytes or None, before.huge_pages)
    else:
        uninstall()
    try:
        yield
    finally:
        if before.installed:
            install(before.max_cached_bytes, before.huge_pages)
        else:
            uninstall()


def install_for_command() -> str:
    """What the training commands call: install unless I2I_FAST_CPU_CACHE=0 (a number sets the
    bound in MiB). Returns one line saying what was done."""
    value = os.environ.get(ENV, "").strip()
    if value == "0":
        return f"CPU allocator: torch's ({ENV}=0)"
    try:
        bound = int(value) * MiB if value else None
    except ValueError:
        raise ValueError(f"{ENV}: expected 0 (off) or a bound in MiB, got {value!r}") from None
    try:
        return f"CPU allocator: caching, {install(bound).describe()}"
    except AllocatorUnavailable as error:
        return f"CPU allocator: torch's ({error})"
