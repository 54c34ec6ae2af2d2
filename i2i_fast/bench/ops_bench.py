"""Per-operator benchmark: eager reference vs torch.compile(reference) vs the fused backend.

Used by `i2i-fast bench ops` and by benchmarks/test_ops_benchmark.py (pytest-benchmark). Every
figure of a table comes from one process: the providers of one case run back to back on the same
inputs.

Providers:
  eager         the reference definition (i2i_fast.ops.reference), plain PyTorch
  compile       torch.compile of that same reference function
  fused         i2i_fast.ops (the backend it chooses: cpu here, cuda on a GPU)
  cuda, triton  i2i_fast.ops forced onto that backend (use_backend); skipped, with the reason,
                where the backend cannot run the case. Default providers on a CUDA device.
  torch_native  what the official implementations run, built from stock PyTorch operators
                (MUNIT's AdaIN through F.batch_norm, F.instance_norm, F.layer_norm); where the
                official code is the explicit formula (MUNIT's LayerNorm) it is the reference
Shapes: "method" (the layers of the methods, METHODS.md), "large" (the issue's large shapes
(32, 256, 64, 64) and (8, 64, 256, 256) for every operator), "all".
On a GPU every timed run starts with a cold L2 cache (a buffer twice its size is overwritten
first, outside the timed region), so inputs that fit in L2 do not measure the cache.
Modes:
  forward           inputs without requires_grad
  forward_backward  forward, then torch.autograd.grad of all inputs with a random upstream grad
Bytes: forward reads x and writes y; backward reads x and dy and writes dx; parameters are small
and not counted (the same for filter_response_norm, whose parameters are weight, bias and tau). GB/s = bytes / median time; "of copy" divides by the bandwidth of a copy of
x measured in the same run (bytes read + written).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16,
          "float64": torch.float64}
PROVIDERS = ("eager", "compile", "fused", "torch_native")
BACKEND_PROVIDERS = ("cuda", "triton")  # i2i_fast.ops forced onto one backend
MODES = ("forward", "forward_backward")


@dataclasses.dataclass(frozen=True)
class Case:
    op: str
    shape: tuple[int, ...]
    activation: str | None
    where: str  # which layer of which method uses it
    style: str = "munit"  # layer_norm only

    @property
    def name(self) -> str:
        extra = f"/{self.style}" if self.op == "layer_norm" else ""
        return f"{self.op}{extra} {'x'.join(map(str, self.shape))}"


# Shapes the methods use (METHODS.md), batch 8.
METHOD_CASES = (
    Case("adain", (8, 256, 64, 64), "relu", "MUNIT decoder AdaIN ResBlocks (8 per G pass)"),
    Case("adain", (8, 512, 16, 16), "leaky_relu", "StarGAN v2 decoder AdaIN ResBlk, 16x16"),
    Case("adain", (8, 256, 64, 64), "leaky_relu", "StarGAN v2 decoder AdaIN ResBlk, 64x64"),
    Case("instance_norm", (8, 64, 256, 256), "relu", "MUNIT/DRIT content encoder, first conv"),
    Case("instance_norm", (8, 64, 128, 128), "relu", "IN at 64x128x128 (floor shape)"),
    Case("instance_norm", (8, 512, 16, 16), "leaky_relu", "StarGAN v2 encoder bottleneck"),
    Case("layer_norm", (8, 128, 128, 128), "relu", "MUNIT decoder upsampling LN (floor shape)"),
    Case("layer_norm", (8, 64, 256, 256), "relu", "MUNIT decoder upsampling LN, last"),
    Case("layer_norm", (8, 136, 108, 108), "relu", "DRIT generator LN", style="standard"),
) + tuple(
    # TUNIT's discriminator at 128² (batch 32): 20 FRN + TLU, four per stage, three at the
    # stage's resolution and one at half of it (widths 64 → 1024); each stage's first.
    Case("filter_response_norm", (32, c, r, r), None, f"TUNIT discriminator, {where}")
    for c, r, where in ((64, 128, "stage 1 (3 of 20 FRNs)"), (128, 64, "stage 2 (3 of 20)"),
                        (256, 32, "stage 3 (3 of 20)"), (512, 16, "stage 4 (3 of 20)"),
                        (1024, 8, "stage 5 (3 of 20)"), (1024, 4, "stage 5, last (1 of 20)"))
) + tuple(
    # TUNIT's guiding network (VGG11: BatchNorm2d + ReLU after each conv): the demo config's
    # levels (batch 16, 64²) and the official one's first (batch 32, 128²). Not in --ops' default.
    Case("batch_norm", shape, "relu", f"TUNIT guiding network, {where}")
    for shape, where in (((16, 16, 64, 64), "demo, level 1"), ((16, 32, 32, 32), "demo, level 2"),
                         ((16, 64, 16, 16), "demo, level 3"), ((16, 128, 8, 8), "demo, level 4"),
                         ((32, 64, 128, 128), "official, level 1"))
)

# The CPU floors (2 threads, float32) at the floor shapes, per operator and allocator setting
# (see i2i_fast.bench.allocation): fused over eager and over compile, and the fraction of the
# copy bandwidth of the same setting. "caching": every provider under the caching allocator;
# "default": torch's allocator, measured after churn (--after-churn), in every round.
FLOOR_SHAPES = (("adain", (8, 256, 64, 64)), ("instance_norm", (8, 64, 128, 128)),
                ("layer_norm", (8, 128, 128, 128)),
                ("filter_response_norm", (32, 128, 64, 64)),
                ("filter_response_norm", (32, 1024, 8, 8)))
NORMALIZATION_FLOORS = {
    "caching": {"forward": {"vs_eager": 5.0, "vs_compile": 1.4, "of_copy": 0.8},
                "forward_backward": {"vs_eager": 3.0, "vs_compile": 1.5, "of_copy": 0.5}},
    "default": {"forward": {"vs_eager": 5.0, "vs_compile": 2.0},
                "forward_backward": {"vs_eager": 3.0, "vs_compile": 1.3}},
}
FRN_FLOORS = {setting: {"forward_backward": {"vs_eager": 3.0, "vs_compile": 1.5}}
              for setting in ("caching", "default")}
FLOORS = {"adain": NORMALIZATION_FLOORS, "instance_norm": NORMALIZATION_FLOORS,
          "layer_norm": NORMALIZATION_FLOORS, "filter_response_norm": FRN_FLOORS}
QUICK_CASES = tuple(c for c in METHOD_CASES if (c.op, c.shape) in FLOOR_SHAPES
                    and c.style == "munit" and not (c.op == "adain" and c.activation != "relu"))

# What identifies one case in the "after churn" stability check (i2i_fast.bench.allocation).
STABILITY_KEYS = ("op", "style", "shape", "dtype", "layout", "mode")

# The large shapes (GPU floors), every operator.
LARGE_SHAPES = ((32, 256, 64, 64), (8, 64, 256, 256))
LARGE_CASES = tuple(
    case
    for shape in LARGE_SHAPES
    for case in (
        Case("adain", shape, "relu", "large shape"),
        Case("instance_norm", shape, "relu", "large shape"),
        Case("layer_norm", shape, "relu", "large shape"),
        Case("layer_norm", shape, "relu", "large shape", style="standard"),
    )
)
SHAPE_SETS = {"method": METHOD_CASES, "large": LARGE_CASES, "all": METHOD_CASES + LARGE_CASES}

# The floors on an H100 at the large shapes (bf16 and fp32), for the CUDA kernels:
# fraction of the copy bandwidth per mode, and speedups over eager and torch.compile.
GPU_FLOORS = {"of_copy": {"forward": 0.8, "forward_backward": 0.5}, "vs_eager": 3.0,
              "vs_compile": 1.2}


# ----- inputs and providers -----------------------------------------------------------------


def make_inputs(case: Case, dtype: torch.dtype, device: str, channels_last: bool,
                seed: int = 0) -> dict:
    """The operator's tensor arguments by name, in call order: x, weight, bias (and tau)."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    n, c = case.shape[:2]
    x = torch.randn(case.shape, generator=g).to(device=device, dtype=dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    param_shape = (n, c) if case.op == "adain" else (c,)
    param_dtype = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    w = (torch.rand(param_shape, generator=g) + 0.5).to(device=device, dtype=param_dtype)
    b = torch.randn(param_shape, generator=g).to(device=device, dtype=param_dtype)
    if case.op == "filter_response_norm":
        tau = (torch.randn(param_shape, generator=g) * 0.3).to(device=device, dtype=param_dtype)
        return {"x": x, "weight": w, "bias": b * 0.3, "tau": tau}
    return {"x": x, "weight": w, "bias": b}


def _native(case: Case) -> Callable | None:
    """The official implementations' own way of computing the op with stock PyTorch
    (i2i_fast.bench.torch_native), or None where that is the explicit formula of the reference
    (MUNIT's LayerNorm, TUNIT's FRN)."""
    from i2i_fast.bench import torch_native

    if ((case.op == "layer_norm" and case.style != "standard")
            or case.op in ("filter_response_norm", "batch_norm")):  # batch_norm's is F.batch_norm
        return None
    fn = getattr(torch_native, case.op)
    kwargs = {"activation": case.activation}
    if case.op == "layer_norm":
        kwargs["style"] = case.style
    return lambda x, weight, bias: fn(x, weight, bias, **kwargs)


def provider_fn(case: Case, provider: str) -> Callable | None:
    """fn(*tensors) for a provider (the tensors of make_inputs, in order), or None where the
    provider does not apply."""
    import i2i_fast.ops as ops

    kwargs = {} if case.op == "filter_response_norm" else {"activation": case.activation}
    if case.op == "layer_norm":
        kwargs["style"] = case.style
    if provider == "eager":
        ref = getattr(ops.reference, case.op)
        return lambda *tensors: ref(*tensors, **kwargs)
    if provider == "compile":
        ref = getattr(ops.reference, case.op)
        return torch.compile(lambda *tensors: ref(*tensors, **kwargs))
    if provider == "fused":
        fused = getattr(ops, case.op)
        return lambda *tensors: fused(*tensors, **kwargs)
    if provider == "torch_native":
        return _native(case)
    if provider in BACKEND_PROVIDERS:
        fused = getattr(ops, case.op)

        def forced(*tensors):
            with ops.use_backend(provider):
                return fused(*tensors, **kwargs)

        return forced
    raise ValueError(f"provider: expected one of {PROVIDERS + BACKEND_PROVIDERS}, got "
                     f"{provider!r}")


def backend_skip_reason(provider: str, case: Case, x: torch.Tensor) -> str | None:
    """Why a backend provider cannot run this case (None: it can, or not a backend provider)."""
    if provider not in BACKEND_PROVIDERS:
        return None
    import i2i_fast.ops as ops

    if provider not in ops.backend_names():
        return f"no {provider!r} backend is registered"
    return ops.get_backend(provider).reason(case.op, x)


def step_fn(fn: Callable, inputs: dict, mode: str) -> Callable[[], object]:
    """A no-argument callable running one measured step (backward: to every tensor input). An
    operator with several outputs (batch_norm's y, mean, var) is differentiated in its first."""
    tensors = tuple(inputs.values())
    if mode == "forward":
        return lambda: fn(*tensors)
    leaves = tuple(t.detach().clone().requires_grad_() for t in tensors)
    gy = torch.randn_like(inputs["x"])

    def fwd_bwd():
        y = fn(*leaves)
        return torch.autograd.grad(y[0] if isinstance(y, tuple) else y, leaves, gy)

    return fwd_bwd


# ----- timing ----------------------------------------------------------------------------------


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


_l2_flush_buffers: dict[str, torch.Tensor] = {}


def flush_l2(device: str) -> None:
    """Overwrite a buffer twice the size of the GPU's L2 cache (evicts the inputs)."""
    buf = _l2_flush_buffers.get(device)
    if buf is None:
        l2 = getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 0) or (64 << 20)
        buf = _l2_flush_buffers[device] = torch.empty(2 * l2, dtype=torch.uint8, device=device)
    buf.zero_()


def _time_once(step: Callable, device: str, clock: Callable[[], float]) -> float:
    """Time (ms) of one run of step: CUDA events on a GPU (after an L2 flush, outside the timed
    region), `clock` on the CPU."""
    if device.startswith("cuda"):
        flush_l2(device)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)
    t0 = clock()
    step()
    return (clock() - t0) * 1e3


def time_step(step: Callable, device: str, repeats: int, warmup: int = 3,
              max_seconds: float = 20.0,
              clock: Callable[[], float] = time.perf_counter) -> list[float]:
    """Times (ms) of `repeats` runs after `warmup` runs (compilation happens there).

    CPU: measured with `clock`, wall time by default (time.process_time gives the CPU time of
    the whole process instead, which other processes' load does not inflate). CUDA: events.
    """
    for _ in range(warmup):
        step()
    _sync(device)
    times: list[float] = []
    budget_end = time.perf_counter() + max_seconds
    while len(times) < repeats:
        times.append(_time_once(step, device, clock))
        if len(times) >= 3 and time.perf_counter() > budget_end:
            break
    return times


def time_steps_interleaved(steps: dict[str, Callable], device: str, repeats: int,
                           warmup: int = 3, max_seconds: float = 60.0,
                           clock: Callable[[], float] = time.perf_counter
                           ) -> dict[str, list[float]]:
    """time_step for several steps at once, timed in turn (a, b, c, a, b, c, ...).

    On a machine whose background load changes during the run, every step then sees the same
    conditions, so their ratios stay meaningful where back-to-back blocks would not. Each timed
    run follows an untimed run of the same step, so that what the previous step left behind
    (OpenMP threads still spinning after torch.compile's parallel loops, other data in the
    caches) is not charged to it.
    """
    for step in steps.values():
        for _ in range(warmup):
            step()
    _sync(device)
    times: dict[str, list[float]] = {name: [] for name in steps}
    budget_end = time.perf_counter() + max_seconds
    for i in range(repeats):
        for name, step in steps.items():
            step()
            _sync(device)
            times[name].append(_time_once(step, device, clock))
        if i >= 2 and time.perf_counter() > budget_end:
            break
    return times


def timed_providers(steps: dict[str, Callable], device: str, repeats: int,
                    base: Callable[[str], dict], label: str) -> list[dict]:
    """`steps` (provider -> step) timed interleaved: one record per provider, base(provider)
    plus the timing summary, the fused one with its speed-ups vs_eager / vs_compile over the
    providers present; prints one line, `label` then each provider's median and the speed-ups."""
    by = {p: summarize(t) for p, t in time_steps_interleaved(steps, device, repeats).items()}
    records, line = [], [label]
    for p in steps:
        r = {**base(p), **by[p]}
        if p == "fused":
            for b in ("eager", "compile"):
                if b in by:
                    r[f"vs_{b}"] = by[b]["median_ms"] / by[p]["median_ms"]
        records.append(r)
        line.append(f"{p} {by[p]['median_ms']:8.3f} ms")
    if "fused" in by:
        line += [f"x{by[b]['median_ms'] / by['fused']['median_ms']:.2f} vs {b}"
                 for b in ("eager", "compile") if b in by]
    print("  ".join(line), flush=True)
    return records


def summarize(times: list[float]) -> dict:
    ordered = sorted(times)
    k = len(ordered)
    return {"median_ms": statistics.median(ordered), "p20_ms": ordered[int(0.2 * (k - 1))],
            "p80_ms": ordered[int(0.8 * (k - 1))], "runs": k}


def copy_bandwidth_gbps(numel: int, dtype: torch.dtype, device: str, repeats: int) -> float:
    """Bandwidth of dst.copy_(src) into preallocated memory, bytes read + written."""
    src = torch.randn(numel, device=device).to(dtype)
    dst = torch.empty_like(src)
    times = time_step(lambda: dst.copy_(src), device, repeats)
    return 2 * src.numel() * src.element_size() / (statistics.median(times) * 1e-3) / 1e9


def bytes_moved(case: Case, dtype: torch.dtype, mode: str) -> int:
    numel = 1
    for s in case.shape:
        numel *= s
    esize = torch.empty((), dtype=dtype).element_size()
    return (2 if mode == "forward" else 5) * numel * esize


# ----- host overhead ---------------------------------------------------------------------------


def per_call_us(fn: Callable, arg, calls: int = 2000, rounds: int = 5,
                device: str = "cpu") -> float:
    """Median over `rounds` of the mean wall time (µs) of `calls` back-to-back calls fn(arg).

    On a GPU the calls are queued without synchronising (one synchronisation per round), so the
    figure is the host's time per call as long as the GPU keeps up."""
    means = []
    for _ in range(rounds):
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(calls):
            fn(arg)
        _sync(device)
        means.append((time.perf_counter() - t0) / calls * 1e6)
    return statistics.median(means)


def host_overhead_us(calls: int = 2000, rounds: int = 5, device: str = "cpu") -> list[dict]:
    """µs per call on a tiny tensor of `device`: eager reference, i2i_fast.ops, the raw torch op.

    On a GPU the calls are queued without synchronising (one synchronisation per round), so the
    figure is the host's time per call as long as the GPU keeps up with these tiny kernels."""
    import i2i_fast.ops as ops

    rows = []
    x = torch.randn(1, 4, 4, 4, device=device)
    w2, b2 = torch.rand(1, 4, device=device) + 0.5, torch.randn(1, 4, device=device)
    w1, b1 = torch.rand(4, device=device) + 0.5, torch.randn(4, device=device)
    t1 = torch.randn(4, device=device) * 0.3
    backend = "cuda" if device.startswith("cuda") else "cpu"
    ext = torch.ops.i2i_fast if ops.get_backend(backend).unavailable_reason() is None else None
    table = {
        "adain": (lambda t: ops.reference.adain(t, w2, b2, activation="relu"),
                  lambda t: ops.adain(t, w2, b2, activation="relu"),
                  ext and (lambda t: ext.adain.default(t, w2, b2, 1e-5, "relu", 0.2))),
        "instance_norm": (lambda t: ops.reference.instance_norm(t, w1, b1, activation="relu"),
                          lambda t: ops.instance_norm(t, w1, b1, activation="relu"),
                          ext and (lambda t: ext.instance_norm.default(t, w1, b1, 1e-5, "relu",
                                                                       0.2))),
        "layer_norm": (lambda t: ops.reference.layer_norm(t, w1, b1, activation="relu"),
                       lambda t: ops.layer_norm(t, w1, b1, activation="relu"),
                       ext and (lambda t: ext.layer_norm.default(t, w1, b1, 1e-5, "munit",
                                                                 "relu", 0.2))),
        "filter_response_norm": (
            lambda t: ops.reference.filter_response_norm(t, w1, b1, t1),
            lambda t: ops.filter_response_norm(t, w1, b1, t1),
            ext and (lambda t: ext.filter_response_norm.default(t, w1, b1, t1, 1e-6))),
    }

    def per_call(fn, t):
        return per_call_us(fn, t, calls, rounds, device)

    for op, (eager, fused, raw) in table.items():
        for grad in (False, True):
            t = x.clone().requires_grad_(grad)
            row = {"op": op, "requires_grad": grad, "eager_us": per_call(eager, t),
                   "fused_us": per_call(fused, t)}
            row["raw_op_us"] = per_call(raw, t) if raw else None
            rows.append(row)
    return rows


# ----- the run ---------------------------------------------------------------------------------


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo), else what platform reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(device: str) -> dict:
    info = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "host": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "threads": torch.get_num_threads(),
        "device": device,
        "THP_MEM_ALLOC_ENABLE": os.environ.get("THP_MEM_ALLOC_ENABLE", ""),
        "I2I_FAST_CPU_CACHE": os.environ.get("I2I_FAST_CPU_CACHE", ""),
    }
    info["cpu"] = cpu_name()
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(device)
    try:
        import i2i_fast

        info["i2i_fast"] = i2i_fast.__version__
        root = Path(__file__).resolve().parents[2]
        info["git_commit"] = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
            text=True, check=False).stdout.strip()
    except Exception:  # noqa: BLE001 - provenance only
        pass
    return info


def run(cases, dtype: torch.dtype, device: str, layouts, modes, providers, repeats: int,
        log=print, allocators=("default",), after_churn: bool = False,
        rounds: int = 1) -> list[dict]:
    """Every case under every allocator setting (i2i_fast.bench.allocation), `rounds` times;
    within a setting, the providers of a case are timed in turn (interleaved)."""
    from i2i_fast.bench import allocation

    return allocation.across_settings(
        allocators, device,
        lambda: _run_cases(cases, dtype, device, layouts, modes, providers, repeats, log),
        after_churn, rounds, log)


def _run_cases(cases, dtype: torch.dtype, device: str, layouts, modes, providers, repeats: int,
               log) -> list[dict]:
    records = []
    for case in cases:
        for channels_last in layouts:
            inputs = make_inputs(case, dtype, device, channels_last)
            numel = inputs["x"].numel()
            copy_gbps = copy_bandwidth_gbps(numel, dtype, device, repeats)
            for mode in modes:
                steps = {}
                for provider in providers:
                    why = backend_skip_reason(provider, case, inputs["x"])
                    if why is not None:
                        log(f"  {provider}: skipped ({why})")
                        continue
                    fn = provider_fn(case, provider)
                    if fn is not None:
                        steps[provider] = step_fn(fn, inputs, mode)
                times = time_steps_interleaved(steps, device, repeats)
                by_provider = {provider: summarize(t) for provider, t in times.items()}
                if "compile" in steps:
                    torch._dynamo.reset()
                for provider, stats in by_provider.items():
                    nbytes = bytes_moved(case, dtype, mode)
                    gbps = nbytes / (stats["median_ms"] * 1e-3) / 1e9
                    rec = {
                        "op": case.op, "style": case.style if case.op == "layer_norm" else "",
                        "shape": "x".join(map(str, case.shape)), "where": case.where,
                        "activation": case.activation or "none", "dtype": str(dtype)[6:],
                        "layout": "channels_last" if channels_last else "contiguous",
                        "mode": mode, "provider": provider, **stats, "bytes": nbytes,
                        "gbps": gbps, "copy_gbps": copy_gbps, "of_copy": gbps / copy_gbps,
                    }
                    for base in ("eager", "compile"):
                        if base in by_provider:
                            rec[f"speedup_vs_{base}"] = (by_provider[base]["median_ms"]
                                                         / stats["median_ms"])
                    records.append(rec)
                log(format_case_line(case, channels_last, mode, by_provider))
    return records


def format_case_line(case: Case, channels_last: bool, mode: str, by_provider: dict) -> str:
    parts = [f"{case.name:34s} {'CL ' if channels_last else '   '}{mode:16s}"]
    for provider, stats in by_provider.items():
        parts.append(f"{provider} {stats['median_ms']:8.3f} ms")
    for provider in ("fused", *BACKEND_PROVIDERS):
        if provider not in by_provider:
            continue
        ms = by_provider[provider]["median_ms"]
        for base in ("eager", "compile"):
            if base in by_provider:
                parts.append(f"{provider} x{by_provider[base]['median_ms'] / ms:5.2f} vs {base}")
    return " | ".join(parts)


def check_gpu_floors(records: list[dict]) -> list[str]:
    """The issue's GPU floors at the large shapes: one PASS/FAIL line per case, for the "cuda"
    provider (forced CUDA kernels) where measured, else "fused" (the automatic choice)."""
    lines = []
    large = {"x".join(map(str, s)) for s in LARGE_SHAPES}
    case_keys = ("op", "style", "shape", "dtype", "layout", "mode")
    for rec in records:
        if rec["shape"] not in large or rec["provider"] not in ("cuda", "fused"):
            continue
        if rec["provider"] == "fused" and any(
                r["provider"] == "cuda" and all(r[k] == rec[k] for k in case_keys)
                for r in records):
            continue  # the cuda row of the same case is the one judged
        checks = [(rec["of_copy"], GPU_FLOORS["of_copy"][rec["mode"]], "of copy")]
        for base in ("eager", "compile"):
            if f"speedup_vs_{base}" in rec:
                checks.append((rec[f"speedup_vs_{base}"], GPU_FLOORS[f"vs_{base}"], f"vs {base}"))
        ok = all(value >= floor for value, floor, _ in checks)
        name = f"{rec['op']}/{rec['style']}" if rec["style"] else rec["op"]
        detail = ", ".join(f"{value:.2f} {what} (floor {floor})" for value, floor, what in checks)
        lines.append(f"{'PASS' if ok else 'FAIL'} {name} {rec['shape']} {rec['dtype']} "
                     f"{rec['layout']} {rec['mode']} [{rec['provider']}]: {detail}")
    return lines


def check_floors(records: list[dict]) -> list[str]:
    """One line per floor case, allocator setting, layout and round: PASS/FAIL with the measured
    ratios (the floors of FLOORS for that setting)."""
    lines = []
    names = {"vs_eager": "vs eager", "vs_compile": "vs compile", "of_copy": "of copy"}
    for rec in records:
        if rec["provider"] != "fused" or rec["dtype"] != "float32":
            continue
        if (rec["op"], tuple(int(v) for v in rec["shape"].split("x"))) not in FLOOR_SHAPES:
            continue
        if rec.get("style") == "standard":
            continue
        floors = FLOORS[rec["op"]].get(rec.get("allocator", "default"), {}).get(rec["mode"])
        if not floors:
            continue
        values = {"vs_eager": rec.get("speedup_vs_eager"),
                  "vs_compile": rec.get("speedup_vs_compile"), "of_copy": rec["of_copy"]}
        checks = [(key, values[key], floor) for key, floor in floors.items()
                  if values[key] is not None]
        ok = all(value >= floor for _, value, floor in checks)
        detail = ", ".join(f"{value:.2f} {names[key]} (floor {floor})"
                           for key, value, floor in checks)
        from i2i_fast.bench.allocation import describe

        where = describe(rec)
        lines.append(f"{'PASS' if ok else 'FAIL'} {rec['op']} {rec['shape']} {rec['layout']} "
                     f"{rec['mode']} [{where}]: {detail}")
    return lines


def markdown_table(records: list[dict]) -> str:
    head = ("| allocator | op | shape | layout | mode | provider | eager ms | compile ms | ms "
            "| GB/s | of copy | vs eager | vs compile |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    index = {(r.get("allocator", "default"), r.get("round", 1), r["op"], r["style"], r["shape"],
              r["layout"], r["mode"], r["provider"]): r for r in records}
    for (alloc, rnd, op, style, shape, layout, mode, provider), r in index.items():
        if provider not in ("fused", *BACKEND_PROVIDERS):
            continue
        get = lambda p: index.get((alloc, rnd, op, style, shape, layout, mode, p))  # noqa: E731
        e, c = get("eager"), get("compile")
        name = f"{op}/{style}" if style else op
        setting = alloc + (" (fresh)" if rnd == 0 else f" (round {rnd})" if rnd > 1 else "")
        rows.append(
            f"| {setting} | {name} | {shape} | {layout} | {mode} | {provider} | "
            f"{e['median_ms']:.2f} | {c['median_ms']:.2f} | {r['median_ms']:.2f} | "
            f"{r['gbps']:.1f} | {r['of_copy']:.0%} | "
            f"{r.get('speedup_vs_eager', float('nan')):.1f}x | "
            f"{r.get('speedup_vs_compile', float('nan')):.2f}x |"
            if e and c else
            f"| {setting} | {name} | {shape} | {layout} | {mode} | {provider} | - | - | "
            f"{r['median_ms']:.2f} | {r['gbps']:.1f} | {r['of_copy']:.0%} | - | - |")
    return "\n".join([head, *rows])


def save(records: list[dict], overhead: list[dict], meta: dict, out_dir: Path,
         kind: str = "ops") -> Path:
    """<out_dir>/<kind>-<device>-<date>.json (machine, results, host overhead) and .csv."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = out_dir / f"{kind}-{meta['device'].split(':')[0]}-{stamp}"
    with open(base.with_suffix(".json"), "w") as f:
        json.dump({"machine": meta, "results": records, "host_overhead": overhead}, f, indent=1)
    if records:
        with open(base.with_suffix(".csv"), "w", newline="") as f:
            fields = sorted({k for r in records for k in r})
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(records)
    return base


def default_out_dir() -> Path:
    root = Path(__file__).resolve().parents[2]
    if (root / "benchmarks").is_dir():
        return root / "benchmarks" / "results"
    return Path.cwd() / "i2i_fast_bench_results"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true",
                   help="the floor shapes only, fewer repeats (a few minutes)")
    p.add_argument("--shapes", default="method", choices=sorted(SHAPE_SETS),
                   help="method: the methods' layers; large: the issue's large shapes; all")
    p.add_argument("--ops", default="adain,instance_norm,layer_norm,filter_response_norm")
    p.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    p.add_argument("--layouts", default="contiguous,channels_last")
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--providers", default=None,
                   help=f"comma-separated, from {','.join(PROVIDERS + BACKEND_PROVIDERS)} "
                        f"(default: {','.join(PROVIDERS)}, plus {','.join(BACKEND_PROVIDERS)} "
                        "on a CUDA device)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--out", type=Path, default=None, help="results directory")
    p.add_argument("--no-save", action="store_true")
    p.add_argument("--no-overhead", action="store_true", help="skip the host-overhead table")
    p.add_argument("--check-floors", action="store_true",
                   help="exit 1 unless every floor is met (the CPU floors of each allocator "
                        "setting on the CPU, the GPU floors at the large shapes on a GPU)")
    p.add_argument("--rounds", type=int, default=1,
                   help="measure everything this many times (floors must hold in every round)")
    from i2i_fast.bench import allocation

    allocation.add_arguments(p)


def main(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    import i2i_fast.ops  # noqa: F401 - builds the kernels before anything is timed

    from i2i_fast.bench import arguments

    arguments.device("--device", args.device)
    all_cases = QUICK_CASES if args.quick else SHAPE_SETS[args.shapes]
    wanted_ops = set(arguments.listed("--ops", args.ops, sorted({c.op for c in all_cases})))
    cases = [c for c in all_cases if c.op in wanted_ops]
    layouts = [{"contiguous": False, "channels_last": True}[s] for s in
               arguments.listed("--layouts", args.layouts, ("contiguous", "channels_last"))]
    modes = arguments.listed("--modes", args.modes, MODES)
    if args.providers:
        providers = arguments.listed("--providers", args.providers, PROVIDERS + BACKEND_PROVIDERS)
    elif args.device.startswith("cuda"):
        providers = list(PROVIDERS + BACKEND_PROVIDERS)
    else:
        providers = list(PROVIDERS)
    repeats = args.repeats or (5 if args.quick else 15)
    meta = machine_info(args.device)
    print(f"# i2i-fast bench ops: {meta.get('gpu') or meta.get('cpu')}, {meta['threads']} threads,"
          f" torch {meta['torch']}, {args.dtype}, {repeats} repeats (median)")
    from i2i_fast.bench import allocation

    allocators = allocation.settings_of(args, args.device.split(":")[0])
    records = run(cases, DTYPES[args.dtype], args.device, layouts, modes, providers, repeats,
                  allocators=allocators, after_churn=args.after_churn, rounds=args.rounds)
    overhead = [] if args.no_overhead else host_overhead_us(device=args.device)
    print()
    print(markdown_table(records))
    if overhead:
        print(f"\nhost time per call on a (1, 4, 4, 4) {args.device} tensor, µs:")
        print("| op | requires_grad | eager reference | i2i_fast.ops | raw torch.ops |")
        print("|---|---|---|---|---|")
        for r in overhead:
            raw = f"{r['raw_op_us']:.1f}" if r["raw_op_us"] is not None else "-"
            print(f"| {r['op']} | {r['requires_grad']} | {r['eager_us']:.1f} | "
                  f"{r['fused_us']:.1f} | {raw} |")
    if not args.no_save:
        base = save(records, overhead, meta, args.out or default_out_dir())
        print(f"\nresults: {base}.json / .csv")
    if args.check_floors:
        on_gpu = args.device.startswith("cuda")
        lines = check_gpu_floors(records) if on_gpu else check_floors(records)
        lines += allocation.check_stability(records, STABILITY_KEYS)
        print("\n" + "\n".join(lines) if lines else "\nno floor case was measured")
        if not lines or any(line.startswith("FAIL") for line in lines):
            return 1
    return 0
