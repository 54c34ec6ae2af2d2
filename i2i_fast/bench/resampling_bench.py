"""The resampling operators (upsample_nearest, avg_pool, max_pool, reflection_pad) at the shapes of
MUNIT's, StarGAN v2's and TUNIT's layers: eager PyTorch (the reference) vs torch.compile of it vs i2i_fast.ops, in
both layouts, forward and forward+backward, timed in turn (`i2i-fast bench resampling`).

The speedup of these operators is in the layout handling and the backward: PyTorch's CPU nearest
upsampling of a contiguous (NCHW) tensor goes through a channels-last copy and back, and its
average-pool and reflection-pad backwards zero a gradient buffer and scatter into it; the fused
kernels are single gather passes. PyTorch's CPU max pooling computes an int64 index per output
(to scatter the gradient into a zeroed buffer); the fused one saves a byte per output and its
backward writes each input gradient once.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable

import torch

from . import arguments, ops_bench

PROVIDERS = ("eager", "compile", "fused")
MODES = ("forward", "forward_backward")


@dataclasses.dataclass(frozen=True)
class Case:
    op: str
    amount: int  # factor or pad
    shape: tuple[int, int, int, int]
    where: str  # the layer it comes from


CASES = (
    Case("upsample_nearest", 2, (8, 64, 32, 32), "StarGAN v2 small, decoder 32->64"),
    Case("upsample_nearest", 2, (4, 32, 32, 32), "MUNIT demo, decoder 32->64"),
    Case("upsample_nearest", 2, (8, 512, 32, 32), "StarGAN v2 256^2, decoder 32->64"),
    Case("avg_pool", 2, (8, 64, 64, 64), "StarGAN v2 small, ResBlk 64->32"),
    Case("avg_pool", 2, (8, 128, 128, 128), "StarGAN v2 256^2, ResBlk 128->64"),
    Case("max_pool", 2, (16, 16, 64, 64), "TUNIT demo, guiding network 64->32"),
    Case("max_pool", 2, (16, 32, 32, 32), "TUNIT demo, guiding network 32->16"),
    Case("max_pool", 2, (16, 64, 16, 16), "TUNIT demo, guiding network 16->8"),
    Case("max_pool", 2, (16, 128, 8, 8), "TUNIT demo, guiding network 8->4"),
    Case("max_pool", 2, (32, 64, 128, 128), "TUNIT official, guiding network 128->64"),
    Case("reflection_pad", 1, (4, 64, 16, 16), "MUNIT demo, residual 3x3 conv"),
    Case("reflection_pad", 2, (4, 32, 64, 64), "MUNIT demo, decoder 5x5 conv"),
    Case("reflection_pad", 3, (4, 16, 64, 64), "MUNIT demo, decoder 7x7 conv"),
    Case("reflection_pad", 1, (8, 256, 64, 64), "MUNIT 256^2, residual 3x3 conv"),
)


def make_fn(op: str, provider: str) -> Callable:
    import i2i_fast.ops as ops

    if provider == "fused":
        return getattr(ops, op)
    reference = getattr(ops.reference, op)
    if provider == "eager":
        return reference
    return torch.compile(reference, dynamic=False)


def step_fn(fn: Callable, x: torch.Tensor, amount: int, mode: str) -> Callable[[], object]:
    if mode == "forward":
        return lambda: fn(x, amount)
    xr = x.detach().clone().requires_grad_()
    gy = torch.randn_like(fn(x, amount))

    def fwd_bwd():
        return torch.autograd.grad(fn(xr, amount), xr, gy)

    return fwd_bwd


def run(cases, layouts, modes, providers, repeats: int, allocators=("default",),
        after_churn: bool = False) -> list[dict]:
    """Every case under every allocator setting (i2i_fast.bench.allocation); within a setting
    the providers of a case are timed in turn."""
    from i2i_fast.bench import allocation

    return allocation.across_settings(
        allocators, "cpu", lambda: _run_cases(cases, layouts, modes, providers, repeats),
        after_churn, log=lambda line: print(line, flush=True))


def _run_cases(cases, layouts, modes, providers, repeats: int) -> list[dict]:
    records = []
    for case in cases:
        for channels_last in layouts:
            x = torch.randn(case.shape)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            for mode in modes:
                steps = {p: step_fn(make_fn(case.op, p), x, case.amount, mode) for p in providers}
                layout = "channels_last" if channels_last else "contiguous"
                records += ops_bench.timed_providers(
                    steps, "cpu", repeats,
                    lambda p: {"op": case.op, "amount": case.amount, "shape": list(case.shape),
                               "layer": case.where, "layout": layout, "mode": mode,
                               "provider": p},
                    f"{case.op:16s} {case.amount} {str(case.shape):18s} {layout:13s} {mode:16s}")
    return records


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ops", default="upsample_nearest,avg_pool,max_pool,reflection_pad")
    p.add_argument("--layouts", default="contiguous,channels_last")
    arguments.add_cpu_timing_arguments(p, MODES, PROVIDERS, repeats=15)


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.threads:
        torch.set_num_threads(args.threads)
    import i2i_fast.ops  # noqa: F401 - builds the kernels before anything is timed


    wanted = set(arguments.listed("--ops", args.ops, sorted({c.op for c in CASES})))
    cases = [c for c in CASES if c.op in wanted]
    layouts = [{"contiguous": False, "channels_last": True}[s] for s in
               arguments.listed("--layouts", args.layouts, ("contiguous", "channels_last"))]
    modes = arguments.listed("--modes", args.modes, MODES)
    providers = arguments.listed("--providers", args.providers, PROVIDERS)
    meta = ops_bench.machine_info("cpu")
    print(f"# i2i-fast bench resampling: {meta.get('cpu')}, {meta['threads']} threads, torch "
          f"{meta['torch']}, float32, {args.repeats} repeats (median ms), cpu")
    from i2i_fast.bench import allocation

    records = run(cases, layouts, modes, providers, args.repeats,
                  allocation.settings_of(args, "cpu"), args.after_churn)
    stability = allocation.check_stability(records, ("op", "amount", "shape", "layout", "mode"))
    if stability:
        print("\n" + "\n".join(stability))
    if not args.no_save:
        out = Path(args.out) if args.out else ops_bench.default_out_dir()
        base = ops_bench.save(records, [], meta, out, kind="resampling")
        print(f"\nresults: {base}.json / .csv")
    return 0
