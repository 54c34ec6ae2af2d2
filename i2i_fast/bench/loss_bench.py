"""GAN loss benchmark: eager reference vs torch.compile(reference) vs the fused operators.

Used by `i2i-fast bench losses` and by benchmarks/test_loss_benchmark.py (pytest-benchmark).
Every figure of a table comes from one process. The providers of one case run on the same inputs
and are timed in turn, sample by sample (eager, compile, fused, eager, ...), so a background load
that changes during the run affects them alike. Timing, summaries, machine description and saving
are ops_bench's.

Cases (the losses of one training step of each method, at its published sizes):
  munit_d       MUNIT D: LSGAN on fake (target 0) and real (target 1) outputs of 3 PatchGAN scales
                (16x16, 8x8, 4x4 at 256x256 input), batch 8: two gan_loss calls
  munit_g       MUNIT G: LSGAN toward 1 on the fake outputs of the 3 scales: one call
  bicyclegan_d  BicycleGAN D: LSGAN on 2 scales (30x30, 14x14), batch 2, fake and real
  stargan_v2_d  StarGAN v2 D: K = 3 heads, batch 8, BCE with logits on real (target 1) and fake
                (target 0) at each sample's domain, + R1 (weight 0.5) on (8, 3, 256, 256) gradients
  tunit_d       TUNIT D: K = 10 heads, batch 32, hinge, + 10 x R1 (weight 1) on (32, 3, 128, 128)
  r1            R1 alone on (8, 3, 256, 256) gradients, weight 0.5
  miso_milo     MISO's MILO: the Gaussian NLL of both domains' (N, 8) style codes under the style
                encoder's (mu, logvar), batch 4: two gaussian_nll calls (reduction batch_sum)
  milo_large    the same two calls on (64, 16384) codes, where memory traffic, not the per-call
                host time, decides
  drit_kl       DRIT's KL term: KL(N(mu, exp(logvar)) || N(0, I)) of the attribute encoder's
                (mu, logvar) of both domains, (1, 8) each (batch 1, the official half_size): two
                gaussian_kl calls (reduction sum)
  bicyclegan_kl BicycleGAN's KL term on the encoder's (2, 8) (mu, logvar): one call (sum)
  miso_kl       MISO's KL term of both domains' (4, 8) posteriors: two calls (batch_sum)
  kl_large      MISO's two calls on (64, 16384) posteriors, where memory traffic decides
  drit_d        DRIT D_A: sigmoid + BCE (mode sigmoid_bce) on real (label 1) and fake (label 0)
                outputs of 3 PatchGAN scales (13x13, 6x6, 3x3 at the 216x216 crop), batch 1 (the
                official half_size): two gan_loss calls
  drit_g        DRIT E/G adversarial losses: D_content's 1x1 map on the contents of A and of B
                toward 0.5, and D_A's 3 scales on fake A toward 1: three calls
Providers:
  eager         the reference definitions (i2i_fast.ops.reference), plain PyTorch
  compile       torch.compile of the same function of the reference definitions
  fused         i2i_fast.ops (the backend it chooses: cpu here, cuda on a GPU)
  cuda, triton  i2i_fast.ops forced onto that backend (use_backend); skipped, with the reason,
                where the backend cannot run the case. Default providers on a CUDA device.
Modes:
  forward           inputs without requires_grad
  forward_backward  forward, then torch.autograd.grad of the loss for every floating input
Clocks: "wall" (default, what the issue's floors are stated in) or "cpu": the CPU time of the
whole process (time.process_time, every thread). On a machine shared with other work, wall times
of these sub-millisecond steps mostly measure the other work; CPU time does not, but it counts
the spin-waiting of idle OpenMP threads.
Tiny cases repeat the step `inner` times per timed sample (the time reported is per step).
Bytes: forward reads every input once; backward reads them again and writes their gradients.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import torch

from . import ops_bench

PROVIDERS = ("eager", "compile", "fused")
BACKEND_PROVIDERS = ("cuda", "triton")  # i2i_fast.ops forced onto one backend
MODES = ("forward", "forward_backward")
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


@dataclasses.dataclass(frozen=True)
class Input:
    name: str
    shape: tuple[int, ...]
    kind: str  # "logits" (a discriminator output), "grads" (an input gradient), "code" (a style
    # code or its Gaussian's mu / logvar) or "domain"
    heads: int = 0  # K, for a domain


@dataclasses.dataclass(frozen=True)
class LossCase:
    name: str
    where: str
    inputs: tuple[Input, ...]
    loss: Callable  # loss(losses, *tensors) with losses = i2i_fast.ops or i2i_fast.ops.reference

    @property
    def numel(self) -> int:
        total = 0
        for i in self.inputs:
            if i.kind != "domain":
                n = 1
                for s in i.shape:
                    n *= s
                total += n
        return total


def _munit_d(L, f0, f1, f2, r0, r1, r2):
    return L.gan_loss([f0, f1, f2], "fake", "lsgan") + L.gan_loss([r0, r1, r2], "real", "lsgan")


def _munit_g(L, f0, f1, f2):
    return L.gan_loss([f0, f1, f2], "generator", "lsgan")


def _bicyclegan_d(L, f0, f1, r0, r1):
    return L.gan_loss([f0, f1], "fake", "lsgan") + L.gan_loss([r0, r1], "real", "lsgan")


def _stargan_v2_d(L, out_real, out_fake, grads, y_real, y_fake):
    return (L.gan_loss(out_real, "real", "nsgan", domain=y_real)
            + L.gan_loss(out_fake, "fake", "nsgan", domain=y_fake)
            + L.r1_penalty(grads, weight=0.5))


def _tunit_d(L, out_real, out_fake, grads, y_real, y_fake):
    return (L.gan_loss(out_real, "real", "hinge", domain=y_real)
            + L.gan_loss(out_fake, "fake", "hinge", domain=y_fake)
            + 10.0 * L.r1_penalty(grads, weight=1.0))


def _r1(L, grads):
    return L.r1_penalty(grads, weight=0.5)


def _milo(L, z_a, mu_a, logvar_a, z_b, mu_b, logvar_b):
    return L.gaussian_nll(z_a, mu_a, logvar_a) + L.gaussian_nll(z_b, mu_b, logvar_b)


def _codes(shape, names=("z", "mu", "logvar"), domains="ab") -> tuple[Input, ...]:
    return tuple(Input(f"{name}_{d}", shape, "code") for d in domains for name in names)


def _kl_sum(L, *posteriors):
    """The KL terms of (mu, logvar) pairs, summed over every element (DRIT, BicycleGAN)."""
    return sum(L.gaussian_kl(posteriors[i], posteriors[i + 1], "sum")
               for i in range(0, len(posteriors), 2))


def _kl_batch_sum(L, mu_a, logvar_a, mu_b, logvar_b):
    return L.gaussian_kl(mu_a, logvar_a, "batch_sum") + L.gaussian_kl(mu_b, logvar_b, "batch_sum")


def _drit_d(L, f0, f1, f2, r0, r1, r2):
    return (L.gan_loss([r0, r1, r2], 1.0, "sigmoid_bce")
            + L.gan_loss([f0, f1, f2], 0.0, "sigmoid_bce"))


def _drit_g(L, content_a, content_b, f0, f1, f2):
    return (L.gan_loss(content_a, 0.5, "sigmoid_bce") + L.gan_loss(content_b, 0.5, "sigmoid_bce")
            + L.gan_loss([f0, f1, f2], 1.0, "sigmoid_bce"))


def _scales(prefix: str, batch: int, sizes) -> tuple[Input, ...]:
    return tuple(Input(f"{prefix}{i}", (batch, 1, s, s), "logits") for i, s in enumerate(sizes))


CASES = (
    LossCase("munit_d", "MUNIT D loss, LSGAN, 3 scales 16/8/4, batch 8 (two calls)",
             _scales("fake", 8, (16, 8, 4)) + _scales("real", 8, (16, 8, 4)), _munit_d),
    LossCase("munit_g", "MUNIT G adversarial loss, LSGAN, 3 scales, batch 8 (one call)",
             _scales("fake", 8, (16, 8, 4)), _munit_g),
    LossCase("bicyclegan_d", "BicycleGAN D loss, LSGAN, 2 scales 30/14, batch 2",
             _scales("fake", 2, (30, 14)) + _scales("real", 2, (30, 14)), _bicyclegan_d),
    LossCase("stargan_v2_d", "StarGAN v2 D loss, K=3 heads, batch 8, BCE + R1 (8x3x256x256)",
             (Input("out_real", (8, 3), "logits"), Input("out_fake", (8, 3), "logits"),
              Input("grads", (8, 3, 256, 256), "grads"), Input("y_real", (8,), "domain", 3),
              Input("y_fake", (8,), "domain", 3)), _stargan_v2_d),
    LossCase("tunit_d", "TUNIT D loss, K=10 heads, batch 32, hinge + 10 R1 (32x3x128x128)",
             (Input("out_real", (32, 10), "logits"), Input("out_fake", (32, 10), "logits"),
              Input("grads", (32, 3, 128, 128), "grads"), Input("y_real", (32,), "domain", 10),
              Input("y_fake", (32,), "domain", 10)), _tunit_d),
    LossCase("r1", "R1 on (8, 3, 256, 256) gradients, weight 0.5 (StarGAN v2)",
             (Input("grads", (8, 3, 256, 256), "grads"),), _r1),
    LossCase("miso_milo", "MISO MILO, two (4, 8) codes under (mu, logvar), batch_sum",
             _codes((4, 8)), _milo),
    LossCase("milo_large", "MILO's two calls on (64, 16384) codes", _codes((64, 16384)), _milo),
    LossCase("drit_kl", "DRIT KL term, (mu, logvar) of A and B, (1, 8) each, sum (two calls)",
             _codes((1, 8), ("mu", "logvar")), _kl_sum),
    LossCase("bicyclegan_kl", "BicycleGAN KL term, (mu, logvar) (2, 8), sum (one call)",
             _codes((2, 8), ("mu", "logvar"), "a"), _kl_sum),
    LossCase("miso_kl", "MISO KL term, (mu, logvar) of A and B, (4, 8) each, batch_sum",
             _codes((4, 8), ("mu", "logvar")), _kl_batch_sum),
    LossCase("kl_large", "MISO's two KL calls on (64, 16384) posteriors",
             _codes((64, 16384), ("mu", "logvar")), _kl_batch_sum),
    LossCase("drit_d", "DRIT D_A loss, sigmoid + BCE, 3 scales 13/6/3, batch 1 (two calls)",
             _scales("fake", 1, (13, 6, 3)) + _scales("real", 1, (13, 6, 3)), _drit_d),
    LossCase("drit_g", "DRIT E/G adversarial losses, sigmoid + BCE: D_content 1x1 toward 0.5 "
             "(A and B), D_A's 3 scales toward 1, batch 1 (three calls)",
             _scales("content_a", 1, (1,)) + _scales("content_b", 1, (1,))
             + _scales("fake", 1, (13, 6, 3)), _drit_g),
)
CASE_NAMES = tuple(c.name for c in CASES)

# The floors (CPU, 2 threads, float32, one run): fused over eager / over compile.
FLOORS = {
    ("munit_d", "forward_backward"): {"eager": 3.0, "compile": 1.5},
    ("r1", "forward_backward"): {"eager": 2.0},
}
QUICK_CASES = ("munit_d", "munit_g", "stargan_v2_d", "r1", "miso_milo", "drit_d", "drit_kl")


# ----- inputs and providers -------------------------------------------------------------------


def make_inputs(case: LossCase, dtype: torch.dtype, device: str, seed: int = 0) -> list:
    g = torch.Generator(device="cpu").manual_seed(seed)
    tensors = []
    for spec in case.inputs:
        if spec.kind == "domain":
            t = torch.randint(0, spec.heads, spec.shape, generator=g)
        elif spec.kind == "grads":
            t = torch.randn(spec.shape, generator=g) * 1e-2
        else:
            t = torch.randn(spec.shape, generator=g)
        tensors.append(t.to(device=device, dtype=dtype if t.is_floating_point() else t.dtype))
    return tensors


def provider_fn(case: LossCase, provider: str) -> Callable:
    """fn(*tensors) -> loss for a provider."""
    import i2i_fast.ops as ops

    if provider == "eager":
        return lambda *t: case.loss(ops.reference, *t)
    if provider == "compile":
        return torch.compile(lambda *t: case.loss(ops.reference, *t))
    if provider == "fused":
        return lambda *t: case.loss(ops, *t)
    if provider in BACKEND_PROVIDERS:
        def forced(*t):
            with ops.use_backend(provider):
                return case.loss(ops, *t)

        return forced
    raise ValueError(f"provider: expected one of {PROVIDERS + BACKEND_PROVIDERS}, got "
                     f"{provider!r}")


def backend_skip_reason(provider: str, tensors: list) -> str | None:
    """Why a backend provider cannot run a case on these inputs (None: it can, or not a backend
    provider). Every loss operator is asked: a case may call any."""
    if provider not in BACKEND_PROVIDERS:
        return None
    import i2i_fast.ops as ops

    if provider not in ops.backend_names():
        return f"no {provider!r} backend is registered"
    x = next(t for t in tensors if t.is_floating_point())
    for op in ("gan_loss", "r1_penalty", "gaussian_nll", "gaussian_kl"):
        why = ops.get_backend(provider).reason(op, x)
        if why is not None:
            return why
    return None


def inner_steps(case: LossCase) -> int:
    """Steps per timed sample: enough to make a sample of a tiny case last ~0.1 ms or more."""
    return min(50, max(1, 200_000 // case.numel))


def step_fn(fn: Callable, tensors: list, mode: str, inner: int) -> Callable[[], object]:
    """A no-argument callable running `inner` measured steps."""
    if mode == "forward":
        def forward():
            for _ in range(inner):
                fn(*tensors)
        return forward
    args = [t.detach().clone().requires_grad_() if t.is_floating_point() else t for t in tensors]
    leaves = [a for a in args if a.is_floating_point()]

    def forward_backward():
        for _ in range(inner):
            torch.autograd.grad(fn(*args), leaves)

    return forward_backward


def bytes_moved(case: LossCase, dtype: torch.dtype, mode: str) -> int:
    esize = torch.empty((), dtype=dtype).element_size()
    return (1 if mode == "forward" else 3) * case.numel * esize


# ----- host overhead ---------------------------------------------------------------------------


def host_overhead_us(calls: int = 2000, rounds: int = 5) -> list[dict]:
    """µs per forward call on MUNIT's 3 scales (8x1x16x16, 8x8, 4x4) and on a tiny R1 input:
    eager reference, i2i_fast.ops, and the raw torch operator."""
    import i2i_fast.ops as ops

    fused_available = ops.get_backend("cpu").unavailable_reason() is None
    lib = torch.ops.i2i_fast if fused_available else None
    table = {
        "gan_loss (3 scales)": (
            lambda xs: ops.reference.gan_loss(xs, "real", "lsgan"),
            lambda xs: ops.gan_loss(xs, "real", "lsgan"),
            lib and (lambda xs: lib.gan_loss.default(xs, "lsgan", "real", 0.0, None, "mean"))),
        "r1_penalty (8x3x4x4)": (
            lambda xs: ops.reference.r1_penalty(xs[0], 0.5),
            lambda xs: ops.r1_penalty(xs[0], 0.5),
            lib and (lambda xs: lib.r1_penalty.default(xs[0], 0.5, "mean"))),
    }
    inputs = {"gan_loss (3 scales)": [(8, 1, 16, 16), (8, 1, 8, 8), (8, 1, 4, 4)],
              "r1_penalty (8x3x4x4)": [(8, 3, 4, 4)]}
    rows = []
    for op, (eager, fused, raw) in table.items():
        for grad in (False, True):
            xs = [torch.randn(s).requires_grad_(grad) for s in inputs[op]]
            row = {"op": op, "requires_grad": grad,
                   "eager_us": ops_bench.per_call_us(eager, xs, calls, rounds),
                   "fused_us": ops_bench.per_call_us(fused, xs, calls, rounds)}
            row["raw_op_us"] = ops_bench.per_call_us(raw, xs, calls, rounds) if raw else None
            rows.append(row)
    return rows


# ----- the run ---------------------------------------------------------------------------------


def run(cases, dtype: torch.dtype, device: str, modes, providers, repeats: int,
        clock: str = "wall", log=print, allocators=("default",), after_churn: bool = False,
        rounds: int = 1) -> list[dict]:
    """Every case under every allocator setting (i2i_fast.bench.allocation); within a setting
    the providers of a case are timed in turn."""
    from i2i_fast.bench import allocation

    return allocation.across_settings(
        allocators, device,
        lambda: _run_cases(cases, dtype, device, modes, providers, repeats, clock, log),
        after_churn, rounds, log)


def _run_cases(cases, dtype: torch.dtype, device: str, modes, providers, repeats: int,
               clock: str, log) -> list[dict]:
    records = []
    for case in cases:
        tensors = make_inputs(case, dtype, device)
        copy_gbps = ops_bench.copy_bandwidth_gbps(case.numel, dtype, device, repeats)
        inner = inner_steps(case)
        runnable = []
        for p in providers:
            why = backend_skip_reason(p, tensors)
            if why is None:
                runnable.append(p)
            else:
                log(f"  {case.name}: {p} skipped ({why})")
        for mode in modes:
            steps = {p: step_fn(provider_fn(case, p), tensors, mode, inner) for p in runnable}
            times = ops_bench.time_steps_interleaved(steps, device, repeats, clock=CLOCKS[clock])
            by_provider = {p: ops_bench.summarize([t / inner for t in times[p]])
                           for p in runnable}
            if "compile" in runnable:
                torch._dynamo.reset()
            nbytes = bytes_moved(case, dtype, mode)
            for provider, stats in by_provider.items():
                gbps = nbytes / (stats["median_ms"] * 1e-3) / 1e9
                rec = {"case": case.name, "where": case.where, "dtype": str(dtype)[6:],
                       "mode": mode, "provider": provider, "clock": clock, **stats,
                       "inner_steps": inner,
                       "bytes": nbytes, "gbps": gbps, "copy_gbps": copy_gbps,
                       "of_copy": gbps / copy_gbps}
                for base in ("eager", "compile"):
                    if base in by_provider:
                        rec[f"speedup_vs_{base}"] = (by_provider[base]["median_ms"]
                                                     / stats["median_ms"])
                records.append(rec)
            log(format_case_line(case, mode, by_provider))
    return records


def format_case_line(case: LossCase, mode: str, by_provider: dict) -> str:
    parts = [f"{case.name:14s} {mode:16s}"]
    for provider, stats in by_provider.items():
        parts.append(f"{provider} {stats['median_ms']:8.4f} ms")
    for provider in ("fused", *BACKEND_PROVIDERS):
        if provider not in by_provider:
            continue
        ms = by_provider[provider]["median_ms"]
        for base in ("eager", "compile"):
            if base in by_provider:
                parts.append(f"{provider} x{by_provider[base]['median_ms'] / ms:5.2f} vs {base}")
    return " | ".join(parts)


def check_floors(records: list[dict]) -> list[str]:
    """One line per floor and allocator setting (and round): PASS/FAIL with the measured
    ratios."""
    lines = []
    for (case, mode), floors in FLOORS.items():
        for rec in records:
            if not (rec["case"] == case and rec["mode"] == mode and rec["provider"] == "fused"
                    and rec["dtype"] == "float32"):
                continue
            if any(f"speedup_vs_{base}" not in rec for base in floors):
                continue
            ok = all(rec[f"speedup_vs_{base}"] >= floor for base, floor in floors.items())
            measured = ", ".join(f"x{rec[f'speedup_vs_{base}']:.2f} vs {base} (floor {floor})"
                                 for base, floor in floors.items())
            lines.append(f"{'PASS' if ok else 'FAIL'} {case} {mode} [{_setting(rec)}]: "
                         f"{measured}")
    return lines


def _setting(rec: dict) -> str:
    from i2i_fast.bench.allocation import describe

    return describe(rec)


def markdown_table(records: list[dict]) -> str:
    """One row per (case, mode, fused kernel provider): fused, and cuda / triton where run."""
    head = ("| allocator | case | mode | provider | eager ms | compile ms | ms | GB/s | of copy "
            "| vs eager | vs compile |\n|---|---|---|---|---|---|---|---|---|---|---|")
    index = {(_setting(r), r["case"], r["mode"], r["provider"]): r for r in records}
    rows = []
    for (setting, case, mode, provider), r in index.items():
        if provider not in ("fused", *BACKEND_PROVIDERS):
            continue
        e = index.get((setting, case, mode, "eager"))
        c = index.get((setting, case, mode, "compile"))
        cell = lambda rec: f"{rec['median_ms']:.4f}" if rec else "-"  # noqa: E731
        ratio = lambda key: f"{r[key]:.2f}x" if key in r else "-"  # noqa: E731
        rows.append(f"| {setting[len('allocator '):]} | {case} | {mode} | {provider} | "
                    f"{cell(e)} | {cell(c)} | "
                    f"{r['median_ms']:.4f} | {r['gbps']:.1f} | {r['of_copy']:.2f} | "
                    f"{ratio('speedup_vs_eager')} | {ratio('speedup_vs_compile')} |")
    return "\n".join([head, *rows])


def _loadavg() -> str:
    """The 1/5/15-minute load averages (how busy the machine was), or '' where unknown."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return ""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true",
                   help=f"cases {', '.join(QUICK_CASES)} only, fewer repeats")
    p.add_argument("--cases", default=",".join(CASE_NAMES))
    p.add_argument("--dtype", default="float32", choices=sorted(ops_bench.DTYPES))
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--providers", default=None,
                   help=f"comma-separated, of {', '.join(PROVIDERS + BACKEND_PROVIDERS)} "
                        f"(default: {', '.join(PROVIDERS)}, plus "
                        f"{', '.join(BACKEND_PROVIDERS)} on a CUDA device)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--clock", default="wall", choices=sorted(CLOCKS),
                   help="wall time, or the CPU time of the process (all threads)")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--out", type=Path, default=None, help="results directory")
    p.add_argument("--no-save", action="store_true")
    p.add_argument("--no-overhead", action="store_true", help="skip the host-overhead table")
    p.add_argument("--check-floors", action="store_true",
                   help="exit 1 unless every floor of the issue is met")
    p.add_argument("--rounds", type=int, default=1, help="measure everything this many times")
    from i2i_fast.bench import allocation

    allocation.add_arguments(p)


def main(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    import i2i_fast.ops  # noqa: F401 - builds the kernels before anything is timed

    from i2i_fast.bench import arguments

    arguments.device("--device", args.device)
    wanted = arguments.listed("--cases", args.cases, CASE_NAMES)
    cases = [c for c in CASES if c.name in wanted and (not args.quick or c.name in QUICK_CASES)]
    modes = arguments.listed("--modes", args.modes, MODES)
    if args.providers:
        providers = arguments.listed("--providers", args.providers, PROVIDERS + BACKEND_PROVIDERS)
    elif args.device.startswith("cuda"):
        providers = list(PROVIDERS + BACKEND_PROVIDERS)
    else:
        providers = list(PROVIDERS)
    repeats = args.repeats or (10 if args.quick else 30)
    meta = ops_bench.machine_info(args.device)
    meta["clock"] = args.clock
    meta["loadavg_before"] = _loadavg()
    print(f"# i2i-fast bench losses: {meta.get('gpu') or meta.get('cpu')}, {meta['threads']} "
          f"threads, torch {meta['torch']}, {args.dtype}, {repeats} repeats (median), "
          f"{args.clock} clock, load average {meta['loadavg_before']}")
    from i2i_fast.bench import allocation

    records = run(cases, ops_bench.DTYPES[args.dtype], args.device, modes, providers, repeats,
                  args.clock, allocators=allocation.settings_of(args, args.device.split(":")[0]),
                  after_churn=args.after_churn, rounds=args.rounds)
    meta["loadavg_after"] = _loadavg()
    overhead = [] if args.no_overhead else host_overhead_us()
    print(f"\n(load average after: {meta['loadavg_after']})")
    print(markdown_table(records))
    if overhead:
        print("\nhost time per forward call, µs:")
        print("| op | requires_grad | eager reference | i2i_fast.ops | raw torch.ops |")
        print("|---|---|---|---|---|")
        for r in overhead:
            raw = f"{r['raw_op_us']:.1f}" if r["raw_op_us"] is not None else "-"
            print(f"| {r['op']} | {r['requires_grad']} | {r['eager_us']:.1f} | "
                  f"{r['fused_us']:.1f} | {raw} |")
    if not args.no_save:
        base = ops_bench.save(records, overhead, meta, args.out or ops_bench.default_out_dir(),
                              kind="losses")
        print(f"\nresults: {base}.json / .csv")
    if args.check_floors:
        lines = check_floors(records) + allocation.check_stability(
            records, ("case", "mode", "dtype"))
        print("\n" + "\n".join(lines) if lines else "\nno floor case was measured")
        if not lines or any(line.startswith("FAIL") for line in lines):
            return 1
    return 0
