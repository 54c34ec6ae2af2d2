"""output_conv2d at the methods' output layers (`i2i-fast bench output-conv`): the reflect-padded
7x7 conv to RGB + tanh that ends MUNIT's, MISO's and TUNIT's decoders; the eager reference
(ReflectionPad2d, Conv2d, tanh), torch.compile of it and the fused operator, forward and
forward+backward, timed interleaved under each allocator setting.

The calls are recorded from the decoders the methods build for the named configurations, at the
batch one decoding of their training iteration runs (DRIT's 1x1 output conv reaches the operator
through latent_conv_transpose2d: `i2i-fast bench latent-conv`). Floors (--check-floors): fused
>= 2x eager and >= 1.5x torch.compile forward+backward on every call.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable

import torch

from . import arguments, ops_bench

PROVIDERS = ("eager", "compile", "fused")
MODES = ("forward", "forward_backward")
# method:configuration ("default": the official one) whose decoder output layer is measured
DEFAULT_CALLS = ("munit:default", "munit:demo", "miso:demo", "tunit:demo")
FLOORS = {"eager": 2.0, "compile": 1.5}  # fused forward+backward, per call


@dataclasses.dataclass(frozen=True)
class Call:
    """output_conv2d(x, weight, bias, padding, padding_mode, activation) with x (N, C, H, W) and
    weight (C_out, C, k, k)."""

    name: str
    x: tuple[int, int, int, int]
    weight: tuple[int, int, int, int]
    padding: int
    padding_mode: str
    activation: str


def _decoder_of(method: str, config: str | None):
    """(the first AdaINDecoder of the method built at `config`, the config)."""
    from i2i_fast.methods.registry import get_method_class, resolve_config
    from i2i_fast.nn.decoders import AdaINDecoder
    from i2i_fast.train import TrainError

    cls = get_method_class(method)
    cfg = resolve_config(cls, config)
    decoder = next((m for m in cls(cfg).modules() if isinstance(m, AdaINDecoder)), None)
    if decoder is None:
        raise TrainError(f"--calls {method}: expected a method whose generator decodes with an "
                         f"AdaINDecoder (munit, stargan_v2, tunit, ...); {method} has none "
                         f"(its output-layer calls are in `i2i-fast bench method {method}`)")
    return decoder, cfg


def recorded_calls(spec: str) -> list[Call]:
    """The output-layer calls of one decoding of `method:config`, recorded by running the
    method's decoder on random inputs of its training shape."""
    from i2i_fast import ops
    from i2i_fast.nn.conv import Conv2dBlock

    method, _, config = spec.partition(":")
    config = None if config in ("", "default") else config
    decoder, cfg = _decoder_of(method, config)
    calls: list[Call] = []

    def hook(module, args):
        if module.output_conv is not None:
            padding, mode, activation = module.output_conv
            calls.append(Call(spec, tuple(args[0].shape), tuple(module.conv.weight.shape),
                              padding, mode, activation))

    handles = [m.register_forward_pre_hook(hook) for m in decoder.modules()
               if isinstance(m, Conv2dBlock)]
    content = _content_shape(decoder, cfg.image_size)
    with torch.no_grad(), ops.use_backend("reference"):
        decoder(torch.randn(cfg.batch_size, *content),
                torch.randn(cfg.batch_size, decoder.num_adain_params))
    for h in handles:
        h.remove()
    return calls


def _content_shape(decoder, size: int) -> tuple[int, int, int]:
    from i2i_fast.nn.resampling import UpsampleNearest

    ups = sum(isinstance(m, UpsampleNearest) for m in decoder.upsample)
    channels = decoder.resblocks.adain_channels[0]
    return channels, size >> ups, size >> ups


def make_fn(provider: str) -> Callable:
    from i2i_fast import ops

    if provider == "fused":
        return ops.output_conv2d
    if provider == "eager":
        return ops.reference.output_conv2d
    return torch.compile(ops.reference.output_conv2d, dynamic=False)


def step_fn(fn: Callable, call: Call, mode: str, seed: int = 0) -> Callable:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(call.x, generator=g)
    w = torch.randn(call.weight, generator=g) * 0.02
    b = torch.randn(call.weight[0], generator=g)
    args = (call.padding, call.padding_mode, call.activation)
    if mode == "forward":
        return lambda: fn(x, w, b, *args)
    leaves = [t.requires_grad_() for t in (x, w, b)]
    upstream = torch.randn_like(fn(x, w, b, *args))
    return lambda: torch.autograd.grad(fn(*leaves, *args), leaves, upstream)


def _time_calls(calls: list[Call], modes, providers, repeats: int) -> list[dict]:
    records = []
    fns = {p: make_fn(p) for p in providers}
    for call in calls:
        for mode in modes:
            steps = {p: step_fn(fns[p], call, mode) for p in providers}
            label = (f"{call.name:14s} x {str(call.x):18s} w {str(call.weight):16s} "
                     f"p{call.padding} {call.padding_mode} {call.activation} {mode:16s}")
            records += ops_bench.timed_providers(
                steps, "cpu", repeats,
                lambda p: {"op": "output_conv2d", "call": call.name, "x": list(call.x),
                           "weight": list(call.weight), "padding": call.padding,
                           "padding_mode": call.padding_mode, "activation": call.activation,
                           "mode": mode, "provider": p}, label)
    return records


def check_floors(records: list[dict]) -> list[str]:
    """The floors the fused forward+backward misses, one line each."""
    failures = []
    for r in records:
        if r["provider"] != "fused" or r["mode"] != "forward_backward":
            continue
        for base, floor in FLOORS.items():
            ratio = r.get(f"vs_{base}")
            if ratio is not None and ratio < floor:
                failures.append(f"{r['call']} x {tuple(r['x'])} ({r.get('allocator')}): "
                                f"x{ratio:.2f} vs {base} < {floor}")
    return failures


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--calls", default=",".join(DEFAULT_CALLS),
                   help="method:config whose decoder's output layer is measured "
                        "('default': the official configuration)")
    p.add_argument("--check-floors", action="store_true",
                   help="exit 1 when fused forward+backward is below 2x eager or 1.5x compile")
    arguments.add_cpu_timing_arguments(p, MODES, PROVIDERS, repeats=10)


def main(args: argparse.Namespace) -> int:
    from i2i_fast.train.cli_commands import run_reporting_errors

    return run_reporting_errors("bench output-conv", lambda: _main(args))


def _main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from i2i_fast.bench import allocation

    if args.threads:
        torch.set_num_threads(args.threads)
    import i2i_fast.ops  # noqa: F401 - builds the kernels before anything is timed

    specs = [s.strip() for s in args.calls.split(",") if s.strip()]
    calls = [c for spec in specs for c in recorded_calls(spec)]
    modes = arguments.listed("--modes", args.modes, MODES)
    providers = arguments.listed("--providers", args.providers, PROVIDERS)
    meta = ops_bench.machine_info("cpu")
    print(f"# i2i-fast bench output-conv: {meta.get('cpu')}, {meta['threads']} threads, torch "
          f"{meta['torch']}, float32, {args.repeats} repeats (median ms), cpu")
    records = allocation.across_settings(
        allocation.settings_of(args, "cpu"), "cpu",
        lambda: _time_calls(calls, modes, providers, args.repeats), args.after_churn,
        log=lambda line: print(line, flush=True))
    if not args.no_save:
        out = Path(args.out) if args.out else ops_bench.default_out_dir()
        base = ops_bench.save(records, [], meta, out, kind="output_conv")
        print(f"\nresults: {base}.json / .csv")
    if args.check_floors:
        failures = check_floors(records)
        for line in failures:
            print(f"FLOOR MISSED: {line}")
        print(f"floors: {'all hold' if not failures else f'{len(failures)} missed'}")
        return 1 if failures else 0
    return 0
