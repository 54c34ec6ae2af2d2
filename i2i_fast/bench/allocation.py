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
process does not hold for users who train for days. In that mode every setting is also measured
once before any churn (the "fresh" records, round 0), and ``check_stability`` holds the fused
provider to the speed it had then: after churn, its median within 20 % of the fresh median and
its p80/p20 at most 1.3, in every round.
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
    asked), `rounds` times; each record tagged with allocator, after_churn and round. With
    after_churn, each setting is first measured before any churn (round 0, the fresh baseline
    of check_stability)."""
    records = []

    def measure_tagged(name: str, churned: bool, round_number: int) -> None:
        log(f"# {describe({'allocator': name, 'after_churn': churned, 'round': round_number})}")
        for rec in measure():
            rec.update(allocator=name, after_churn=churned, round=round_number)
            records.append(rec)

    if after_churn:
        for name in settings:
            with setting(name, device):
                measure_tagged(name, False, 0)
    for round_index in range(rounds):
        for name in settings:
            with setting(name, device):
                if after_churn:
                    churn(seed=round_index)
                measure_tagged(name, after_churn, round_index + 1)
    return records


def describe(rec: dict) -> str:
    """"allocator caching, after churn, round 2" (or "allocator default, fresh") for a record."""
    text = f"allocator {rec.get('allocator', 'default')}"
    if rec.get("round") == 0:
        return text + ", fresh"
    return (text + (", after churn" if rec.get("after_churn") else "")
            + (f", round {rec['round']}" if rec.get("round", 1) > 1 else ""))


# The "after churn" criteria: the fused provider's median after churn within this fraction of
# its fresh median, and its p80/p20 spread at most this ratio.
STABILITY = {"median_vs_fresh": 0.20, "p80_over_p20": 1.3}


def check_stability(records: list[dict], case_keys: tuple[str, ...], provider: str = "fused",
                    unit: str = "ms") -> list[str]:
    """One PASS/FAIL line per after-churn record of `provider`: its median against the fresh
    record of the same case and setting (identified by `case_keys`), and its p80/p20. Records
    hold median_<unit>, p20_<unit>, p80_<unit>. Empty unless the run was made --after-churn."""
    fresh = {(r.get("allocator"), *(str(r.get(k)) for k in case_keys)): r for r in records
             if r.get("round") == 0 and r.get("provider") == provider}
    lines = []
    for rec in records:
        if not rec.get("after_churn") or rec.get("provider") != provider:
            continue
        base = fresh.get((rec.get("allocator"), *(str(rec.get(k)) for k in case_keys)))
        median, p20, p80 = (rec[f"{q}_{unit}"] for q in ("median", "p20", "p80"))
        spread = p80 / p20 if p20 > 0 else float("inf")
        checks = [spread <= STABILITY["p80_over_p20"]]
        detail = f"p80/p20 {spread:.2f} (at most {STABILITY['p80_over_p20']})"
        if base is not None:
            change = median / base[f"median_{unit}"] - 1.0
            checks.append(abs(change) <= STABILITY["median_vs_fresh"])
            detail = (f"median {median:.3f} {unit} vs fresh {base[f'median_{unit}']:.3f} "
                      f"({change:+.0%}, within {STABILITY['median_vs_fresh']:.0%}), " + detail)
        name = " ".join(str(rec.get(k)) for k in case_keys if rec.get(k) not in (None, ""))
        lines.append(f"{'PASS' if all(checks) else 'FAIL'} stable {name} [{describe(rec)}]: "
                     f"{detail}")
    return lines
