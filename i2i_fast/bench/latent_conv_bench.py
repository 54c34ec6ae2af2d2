"""The latent_conv operators at the methods' shapes (`i2i-fast bench latent-conv`):
latent_conv2d at BicycleGAN's U-Net levels, latent_conv_transpose2d at DRIT's G_concat layers;
eager concat + conv (the reference), torch.compile of it, and the fused operator, forward and
forward+backward, timed in turn under each allocator setting, plus the peak memory of one step
of each provider.

The point of the fused operator is the memory: the reference materialises cat[x, z broadcast]
(N x (C_x + C_z) x H x W), and autograd keeps it for the backward; the fused operator keeps x
(which exists anyway). Peak memory here is the largest amount of CPU memory held by allocations
made during one step, above what was held before it (torch.profiler's memory events: every
allocation of the step, the operators' internal ones and torch.compile's buffers included), under
torch's default allocator.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable

import torch

from . import arguments, ops_bench

PROVIDERS = ("eager", "compile", "fused")
MODES = ("forward", "forward_backward")


@dataclasses.dataclass(frozen=True)
class Call:
    """One call of `op`: x (N, C_x, H, W), z (N, C_z), weight (C_out, C_x + C_z, k, k) for
    latent_conv2d (`last`: padding_mode), (C_x + C_z, C_out, k, k) for latent_conv_transpose2d
    (`last`: output_padding)."""

    config: str
    x: tuple[int, int, int, int]
    z: tuple[int, int]
    weight: tuple[int, int, int, int]
    stride: int
    padding: int
    last: str | int
    op: str = "latent_conv2d"

    @property
    def last_name(self) -> str:
        return "padding_mode" if self.op == "latent_conv2d" else "output_padding"


def bicyclegan_calls(config: str | None) -> list[Call]:
    """The LatentConv2d calls of one forward of BicycleGAN's generator at the training batch
    (the two generations of an iteration run as one batch), recorded from the network the method
    builds for the named configuration (None: the official defaults)."""
    from i2i_fast.methods.bicyclegan import BicycleGAN
    from i2i_fast.methods.registry import resolve_config
    from i2i_fast.nn import LatentUNetGenerator
    from i2i_fast.nn.latent_injection import LatentConv2d
    from i2i_fast import ops

    cfg = resolve_config(BicycleGAN, config)
    BicycleGAN.check_config(cfg)
    gen = LatentUNetGenerator(cfg.input_nc, cfg.output_nc, cfg.nz, int(math.log2(cfg.image_size)),
                              cfg.ngf, cfg.use_dropout)
    calls: list[Call] = []

    calls = _recorded_calls(gen, LatentConv2d, config, lambda m: m.padding_mode)
    n = cfg.batch_size
    with torch.no_grad(), ops.use_backend("reference"):
        gen(torch.randn(n, cfg.input_nc, cfg.image_size, cfg.image_size), torch.randn(n, cfg.nz))
    return calls


def drit_calls(config: str | None) -> list[Call]:
    """The LatentConvTranspose2d calls of one G_concat decoding of DRIT's training iteration (the
    fakes of an iteration run as one batch: n_encoded x (2 + the random codes)), recorded from
    the decoder the method builds for the named configuration (None: the official defaults)."""
    from i2i_fast import ops
    from i2i_fast.methods.drit import DRIT
    from i2i_fast.methods.registry import resolve_config
    from i2i_fast.nn.disentangled import AttributeGenerator, SharedContentEncoder
    from i2i_fast.nn.latent_injection import LatentConvTranspose2d

    cfg = resolve_config(DRIT, config)
    DRIT.check_config(cfg)
    content_dim = SharedContentEncoder(cfg.input_dim_a, cfg.input_dim_b, cfg.dim,
                                       cfg.n_res).out_channels
    gen = AttributeGenerator(cfg.input_dim_a, cfg.input_dim_b, content_dim, cfg.nz, cfg.n_res,
                             True, cfg.mlp_dim)
    calls = _recorded_calls(gen.dec_a, LatentConvTranspose2d, config,
                            lambda m: m.output_padding[0], op="latent_conv_transpose2d")
    n = cfg.n_encoded * (3 + int(cfg.mode_seeking))
    side = cfg.image_size // 4
    with torch.no_grad(), ops.use_backend("reference"):
        gen.decode_a(torch.randn(n, content_dim, side, side), torch.randn(n, cfg.nz))
    return calls


def _recorded_calls(net, module_type, config, last, op="latent_conv2d") -> list[Call]:
    """A list that fills with the calls of every `module_type` module of net as it runs."""
    calls: list[Call] = []

    def hook(module, args):
        x, z = args
        calls.append(Call(config or "default", tuple(x.shape), tuple(z.shape),
                          tuple(module.weight.shape), module.stride[0], module.padding[0],
                          last(module), op))

    for m in net.modules():
        if isinstance(m, module_type):
            m.register_forward_pre_hook(hook)
    return calls


METHOD_CALLS = {"bicyclegan": bicyclegan_calls, "drit": drit_calls}


def make_fn(provider: str, op: str) -> Callable:
    import i2i_fast.ops as ops

    if provider == "fused":
        return getattr(ops, op)
    if provider == "eager":
        return getattr(ops.reference, op)
    return torch.compile(getattr(ops.reference, op), dynamic=False)


def make_inputs(call: Call, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out_channels = call.weight[0 if call.op == "latent_conv2d" else 1]
    return [torch.randn(call.x, generator=g), torch.randn(call.z, generator=g),
            torch.randn(call.weight, generator=g) * 0.05, torch.randn(out_channels, generator=g)]


def step_fn(fn: Callable, call: Call, inputs: list[torch.Tensor], mode: str) -> Callable:
    args = (call.stride, call.padding, call.last)
    if mode == "forward":
        return lambda: fn(*inputs, *args)
    leaves = [t.detach().clone().requires_grad_() for t in inputs]
    upstream = torch.randn_like(fn(*inputs, *args))

    def fwd_bwd():
        return torch.autograd.grad(fn(*leaves, *args), leaves, upstream)

    return fwd_bwd


def peak_bytes(step: Callable) -> int:
    """Peak of the bytes held by the allocations made during step(), above the start."""
    step()  # warm (compile, first-call allocations)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU],
                                profile_memory=True) as prof:
        result = step()
        del result
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == "[memory]")
    held = peak = 0
    for _, nbytes in events:
        held += nbytes
        peak = max(peak, held)
    return peak


def run(calls, modes, providers, repeats: int, allocators=("default",),
        after_churn: bool = False, memory: bool = True) -> list[dict]:
    from i2i_fast.bench import allocation

    records = allocation.across_settings(
        allocators, "cpu", lambda: _time_calls(calls, modes, providers, repeats), after_churn,
        log=lambda line: print(line, flush=True))
    if memory:
        print("# peak memory of one step (bytes allocated during it, above the start; torch's "
              "default allocator)", flush=True)
        records += _memory(calls, modes, providers)
    return records


def _describe(call: Call) -> str:
    last = call.last if call.op == "latent_conv2d" else f"op{call.last}"
    kind = "conv " if call.op == "latent_conv2d" else "convT"
    return (f"{call.config:7s} {kind} x {str(call.x):18s} z {str(call.z):7s} "
            f"w {str(call.weight):18s} s{call.stride} p{call.padding} {last}")


def _base(call: Call, mode: str, provider: str) -> dict:
    return {"op": call.op, "config": call.config, "x": list(call.x), "z": list(call.z),
            "weight": list(call.weight), "stride": call.stride, "padding": call.padding,
            call.last_name: call.last, "mode": mode, "provider": provider}


def _time_calls(calls, modes, providers, repeats: int) -> list[dict]:
    records = []
    fns = {(p, op): make_fn(p, op) for p in providers for op in {c.op for c in calls}}
    for call in calls:
        inputs = make_inputs(call)
        for mode in modes:
            steps = {p: step_fn(fns[p, call.op], call, inputs, mode) for p in providers}
            records += ops_bench.timed_providers(
                steps, "cpu", repeats, lambda p: _base(call, mode, p),
                f"{_describe(call)} {mode:16s}")
    return records


def _memory(calls, modes, providers) -> list[dict]:
    records = []
    fns = {(p, op): make_fn(p, op) for p in providers for op in {c.op for c in calls}}
    for call in calls:
        inputs = make_inputs(call)
        for mode in modes:
            line = [f"{_describe(call)} {mode:16s}"]
            peaks = {}
            for p in providers:
                peaks[p] = peak_bytes(step_fn(fns[p, call.op], call, inputs, mode))
                records.append({**_base(call, mode, p), "peak_bytes": peaks[p],
                                "allocator": "default", "kind": "memory"})
                line.append(f"{p} {peaks[p] / 2**20:8.2f} MiB")
            if "fused" in peaks and "eager" in peaks:
                line.append(f"saves {(peaks['eager'] - peaks['fused']) / 2**20:.2f} MiB vs eager")
            print("  ".join(line), flush=True)
    return records


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--methods", default="bicyclegan,drit",
                   help="whose calls are measured: bicyclegan (latent_conv2d in its U-Net), "
                        "drit (latent_conv_transpose2d in G_concat)")
    p.add_argument("--configs", default="default,demo",
                   help="the methods' configurations whose generator's calls are measured "
                        "('default': the official one)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory table")
    arguments.add_cpu_timing_arguments(p, MODES, PROVIDERS, repeats=10)


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from i2i_fast.bench import allocation

    if args.threads:
        torch.set_num_threads(args.threads)
    import i2i_fast.ops  # noqa: F401 - builds the kernels before anything is timed

    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    methods = arguments.listed("--methods", args.methods, tuple(METHOD_CALLS))
    calls = [c for method in methods for config in configs
             for c in METHOD_CALLS[method](None if config == "default" else config)]
    modes = arguments.listed("--modes", args.modes, MODES)
    providers = arguments.listed("--providers", args.providers, PROVIDERS)
    meta = ops_bench.machine_info("cpu")
    print(f"# i2i-fast bench latent-conv: {meta.get('cpu')}, {meta['threads']} threads, torch "
          f"{meta['torch']}, float32, {args.repeats} repeats (median ms), cpu")
    records = run(calls, modes, providers, args.repeats, allocation.settings_of(args, "cpu"),
                  args.after_churn, memory=not args.no_memory)
    if not args.no_save:
        out = Path(args.out) if args.out else ops_bench.default_out_dir()
        base = ops_bench.save(records, [], meta, out, kind="latent_conv")
        print(f"\nresults: {base}.json / .csv")
    return 0
