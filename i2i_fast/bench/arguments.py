"""Checks of the benchmarks' command-line arguments: a bad one is one line (``i2i-fast bench
<name>: error: ...``, exit status 2), before anything is measured."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import torch


class BenchArgumentError(ValueError):
    """A bad benchmark argument; the message names the flag, what was expected and what came."""


def listed(flag: str, text: str, allowed: Sequence[str]) -> list[str]:
    """The comma-separated names of `text`, each one of `allowed`."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        got = ", ".join(unknown) if unknown else "nothing"
        raise BenchArgumentError(f"{flag}: expected some of {', '.join(allowed)} "
                                 f"(comma-separated), got {got}")
    return names


def device(flag: str, text: str) -> str:
    """A device string torch reads and this machine has."""
    try:
        parsed = torch.device(text)
    except RuntimeError:
        raise BenchArgumentError(f"{flag}: expected cpu, cuda or cuda:N, got {text!r}") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise BenchArgumentError(f"{flag}: {text} asked for, but CUDA is not available here")
    if parsed.type not in ("cpu", "cuda"):
        raise BenchArgumentError(f"{flag}: expected cpu, cuda or cuda:N, got {text!r}")
    return text


def add_cpu_timing_arguments(p: argparse.ArgumentParser, modes: Sequence[str],
                             providers: Sequence[str], repeats: int) -> None:
    """The flags the per-operator CPU benchmarks share: --modes, --providers, --threads,
    --repeats, --out, --no-save and the allocator settings (i2i_fast.bench.allocation)."""
    p.add_argument("--modes", default=",".join(modes))
    p.add_argument("--providers", default=",".join(providers))
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--repeats", type=int, default=repeats)
    p.add_argument("--out", default=None, help="results directory (default benchmarks/results)")
    p.add_argument("--no-save", action="store_true")
    from i2i_fast.bench import allocation

    allocation.add_arguments(p)
