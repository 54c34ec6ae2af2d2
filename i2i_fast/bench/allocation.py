"""The allocator settings every CPU benchmark compares providers under, and the "after churn"
mode.

A speed comparison is fair only when every provider allocates the same way: on machines where a
page fault is expensive, the cost of a fresh large output can exceed the kernel's own memory
traffic, and whichever provider avoids it wins for that reason alone. So the CPU benchmarks run
each setting in turn, every provider under it, and report them side by side:

- ``default``: torch's CPU allocator (large blocks come from and go back to the system, so they
  fault again on every use);
- ``caching``: i2i_fast's caching CPU allocator installed process-wide (i2i_fast.cpu_allocator):
  large blocks are kept and reused, for every provider alike.

"After churn" (``--after-churn``) first makes thousands of allocations of mixed sizes, keeping a
changing part of them alive, as a long training process does: a speed that holds only in a fresh
process does not hold for users who train for days.
"""

from __future__ import annotations

import argparse
import contextlib
import random
from collections.abc import Callable, Iterator

import torch

SETTINGS = ("default", "caching")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allocators", default=",".join(SETTINGS),
                   help="CPU allocator settings to measure every provider under, in turn "
                        "(default,caching; see i2i_fast.bench.allocation)")
    p.add_argument("--after-churn", action="store_true",
                   help="make thousands of mixed-size allocations before each setting's "
                        "measurements (a long-lived process)")


def settings_of(args: argparse.Namespace, device: str) -> list[str]:
    """The settings asked for (only "default" on a GPU: the CPU allocator does not matter)."""
    names = [s.strip() for s in args.allocators.split(",") if s.strip()]
    unknown = [s for s in names if s not in SETTINGS]
    if unknown or not names:
        raise ValueError(f"--allocators: expected names among {', '.join(SETTINGS)}, got "
                         f"{args.allocators!r}")
    return names if device == "cpu" else ["default"]


@contextlib.contextmanager
def setting(name: str, device: str = "cpu") -> Iterator[None]:
    """Every allocation of the block under allocator setting `name` (CPU only)."""
    if device != "cpu":
        yield
        return
    from i2i_fast import cpu_allocator

    with cpu_allocator.setting(name):
        yield


def churn(allocations: int = 4000, seed: int = 0, max_mib: int = 48) -> None:
    """Allocate and free `allocations` CPU tensors of mixed sizes (4 KiB to max_mib MiB, most of
    them small), touching each, with up to 64 of them alive at a time: the heap and the page
    tables of a process that has run for a while."""
    rng = random.Random(seed)
    alive: list[torch.Tensor] = []
    for _ in range(allocations):
        if rng.random() < 0.7:
            nbytes = rng.randint(4 << 10, 1 << 20)
        else:
            nbytes = rng.randint(1 << 20, max_mib << 20)
        t = torch.empty(nbytes // 4, dtype=torch.float32)
        t[:: max(1, 1024)].fill_(1.0)  # touch one word per 4 KiB page
        alive.append(t)
        if len(alive) > 64:
            alive.pop(rng.randrange(len(alive)))
    alive.clear()


def across_settings(settings: list[str] | tuple[str, ...], device: str,
                    measure: Callable[[], list[dict]], after_churn: bool = False,
                    rounds: int = 1, log: Callable[[str], None] = print) -> list[dict]:
    """The records of ``measure()`` run under each allocator setting in turn (after churn if
    asked), `rounds` times; each record tagged with allocator, after_churn and round."""
    records = []
    for round_index in range(rounds):
        for name in settings:
            with setting(name, device):
                if after_churn:
                    churn(seed=round_index)
                log(f"# allocator {name}" + (", after churn" if after_churn else "")
                    + (f", round {round_index + 1} of {rounds}" if rounds > 1 else ""))
                for rec in measure():
                    rec.update(allocator=name, after_churn=after_churn, round=round_index + 1)
                    records.append(rec)
    return records
