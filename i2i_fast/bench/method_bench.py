"""Whole training iterations of a method, in images per second: fused vs the reference.

Used by `i2i-fast bench method METHOD` and by the demo. Providers (each a fresh method built from
the same seed, run on the same preloaded batches, in one process, their iterations timed in turn
so that a background load that changes during the run affects them alike):

  eager_reference     i2i_fast ops on the plain-PyTorch reference backend, no compilation
  eager_torch_native  the same, with the normalizations computed as the official implementations
                      do (PyTorch's fused batch_norm / instance_norm kernels where they use them;
                      i2i_fast.bench.torch_native): the official code's eager speed
  compiled_reference  the reference, with every training network torch.compile'd (mode "default")
  fused               the fused kernels (cpu here, cuda on a GPU), eager
  fused_compiled      the fused kernels inside torch.compile'd networks

A training iteration is whatever the method's ``train_step`` does (MUNIT: one D update and one G
update). A method whose iterations follow a cycle of different kinds (DRIT: d_iter − 1
content-discriminator-only iterations, then a full one) is timed a whole cycle at a time
(``Method.iterations_per_cycle``), each time divided by the cycle's length. Timing starts at the
method's ``first_full_iteration`` (TUNIT: the first GAN iteration, after the phase that trains its
guiding network alone; 0 for the others). Data loading is
excluded: a few batches are drawn once and cycled.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator

import torch

PROVIDERS = ("eager_reference", "eager_torch_native", "compiled_reference", "fused",
             "fused_compiled")


def _batches(method, data: str, count: int, seed: int) -> list[dict]:
    from i2i_fast.data import ResumableLoader, open_dataset

    from i2i_fast.train import TrainError

    kind = "unpaired" if method.data_kind == "unpaired" else method.data_kind
    try:
        dataset = open_dataset(data, kind, resolution=method.config.image_size, seed=seed,
                               **method.dataset_options())
    except (ValueError, TypeError, OSError) as error:
        raise TrainError(f"--data {data}: {error}") from None
    loader = ResumableLoader(dataset, method.config.batch_size, seed=seed)
    return [next(loader) for _ in range(count)]


def _cycle(batches: list[dict]) -> Iterator[dict]:
    while True:
        yield from batches


class Runner:
    """One provider's method (fresh, same seed) and batches; ``step()`` runs and times one
    training iteration (seconds)."""

    def __init__(self, name: str, config, overrides, provider: str, device: str, precision: str,
                 channels_last: bool, data: str, seed: int = 0):
        import i2i_fast.ops as ops
        from i2i_fast.methods import RunContext, create_method

        if provider not in PROVIDERS:
            raise ValueError(f"provider: expected one of {', '.join(PROVIDERS)}, "
                             f"got {provider!r}")
        self.provider, self.precision, self.device = provider, precision, device
        from i2i_fast.train import TrainError

        torch.manual_seed(seed)
        try:
            context = RunContext(device=device, precision=precision, channels_last=channels_last)
        except ValueError as error:
            raise TrainError(f"--precision {precision} --device {device}: {error}") from None
        try:
            self.method = create_method(name, config, overrides, context)
        except ValueError as error:  # a configuration value the method refuses (one line)
            raise TrainError(str(error)) from None
        if provider in ("compiled_reference", "fused_compiled"):
            self.method.compile_networks()
        if provider == "eager_torch_native":
            from i2i_fast.bench.torch_native import eager_torch_native

            self.guard = eager_torch_native
        elif provider.endswith("reference"):
            self.guard = lambda: ops.use_backend("reference")
        else:
            self.guard = _no_backend_forced
        self.batches = _cycle(_batches(self.method, data, 4, seed))
        self.step_index = self.method.first_full_iteration
        self.times: list[float] = []

    def step(self) -> float:
        """Seconds per training iteration over one cycle of the method's schedule
        (``method.iterations_per_cycle`` iterations: 1, or DRIT's d_iter, whose iterations differ
        in cost)."""
        cuda = self.device.startswith("cuda")
        cycle = self.method.iterations_per_cycle
        with self.guard():
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(cycle):
                losses = self.method.train_step(next(self.batches), self.step_index)
                self.method.context.end_iteration()
                self.step_index += 1
            float(next(iter(losses.values())))  # the step is done when its losses are
            if cuda:
                torch.cuda.synchronize()
            elapsed = time.perf_counter() - start
        return elapsed / cycle

    def result(self) -> dict:
        times = sorted(self.times)
        median = statistics.median(times)
        cfg = self.method.config
        return {"provider": self.provider, "precision": self.precision, "median_s": median,
                "p20_s": times[int(0.2 * (len(times) - 1))],
                "p80_s": times[int(0.8 * (len(times) - 1))], "iterations": len(times),
                "images_per_s": cfg.batch_size / median, "batch_size": cfg.batch_size,
                "image_size": cfg.image_size,
                "first_iteration": self.method.first_full_iteration}


def measure_interleaved(runners: list[Runner], iterations: int, warmup: int) -> list[dict]:
    """Median seconds per iteration of each runner, timed in turn (a, b, c, a, b, c, ...) after
    `warmup` untimed iterations each, so that a background load that changes during the run
    affects every provider alike."""
    for runner in runners:
        for _ in range(warmup):
            runner.step()
    for _ in range(iterations):
        for runner in runners:
            runner.times.append(runner.step())
    return [runner.result() for runner in runners]


def measure(name: str, config, overrides, provider: str, device: str, precision: str,
            channels_last: bool, iterations: int, warmup: int, data: str,
            seed: int = 0) -> dict:
    """Median seconds per iteration of one provider (a fresh method, same seed)."""
    runner = Runner(name, config, overrides, provider, device, precision, channels_last, data,
                     seed)
    return measure_interleaved([runner], iterations, warmup)[0]


class _no_backend_forced:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("method", help="registered method name, e.g. munit")
    p.add_argument("--config", default=None, help="named configuration or YAML file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--data", default=None,
                   help="dataset (default: synthetic:shapes, or synthetic:shapes-kK for a method "
                        "whose config has num_domains K > 2)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--reference-precision", default=None, choices=("fp32", "bf16", "fp16"),
                   help="precision of eager_reference (default: --precision); the GPU floor "
                        "compares the fused bf16 run with the eager fp32 reference")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--providers",
                   default="eager_reference,eager_torch_native,compiled_reference,fused")
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None, help="results directory (default benchmarks/results)")
    p.add_argument("--no-save", action="store_true")
    p.add_argument("--check-floors", action="store_true",
                   help="exit 1 unless fused >= 1.3x eager_reference (CPU), or on a GPU >= 2x "
                        "eager_reference and >= 1.2x compiled_reference, under every allocator "
                        "setting measured")
    from i2i_fast.bench import allocation

    allocation.add_arguments(p)


def speedups(results: list[dict]) -> None:
    """Adds speedup_vs_<provider> to each result of one setting; prints fused's (no floor)."""
    base = {r["provider"]: r["images_per_s"] for r in results}
    for r in results:
        for ref in ("eager_reference", "eager_torch_native", "compiled_reference"):
            if ref in base:
                r[f"speedup_vs_{ref}"] = r["images_per_s"] / base[ref]
    if "fused" in base:
        for ref in ("eager_torch_native", "compiled_reference"):
            if ref in base:
                print(f"fused x{base['fused'] / base[ref]:.2f} vs {ref} (no floor)")


# fused >= this x the eager reference for a whole CPU training iteration (the method issues' floor)
CPU_FLOOR = 1.3


def floor_lines(results: list[dict], device: str) -> list[str]:
    """PASS/FAIL of the method floors, per allocator setting measured."""
    from i2i_fast.bench.allocation import check_stability, describe

    lines = []
    settings = list(dict.fromkeys(describe(r) for r in results))
    for setting in settings:
        by = {r["provider"]: r for r in results if describe(r) == setting}
        if "fused" not in by or "eager_reference" not in by:
            continue
        fused = by["fused"]["images_per_s"]
        floors = [("eager_reference", CPU_FLOOR if device == "cpu" else 2.0)]
        if device != "cpu":
            floors.append(("compiled_reference", 1.2))
        for base, floor in floors:
            if base in by:
                ratio = fused / by[base]["images_per_s"]
                lines.append(f"{'PASS' if ratio >= floor else 'FAIL'} fused x{ratio:.2f} vs "
                             f"{base} (floor {floor}) [{setting}]")
    return lines + check_stability(results, ("method",), unit="s")


def default_data(name: str, config, overrides) -> str:
    """synthetic:shapes, or synthetic:shapes-kK for a config with num_domains K > 2."""
    from i2i_fast.methods import get_method_class, resolve_config

    cfg = resolve_config(get_method_class(name), config, overrides)
    k = getattr(cfg, "num_domains", 2)
    return f"synthetic:shapes-k{k}" if k > 2 else "synthetic:shapes"


def main(args: argparse.Namespace) -> int:
    from i2i_fast.train.cli_commands import run_reporting_errors

    return run_reporting_errors("bench method", lambda: _main(args))


def _main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from i2i_fast.bench.ops_bench import default_out_dir, machine_info, save

    if args.threads:
        torch.set_num_threads(args.threads)
    meta = machine_info(args.device)
    print(f"# i2i-fast bench method {args.method} config={args.config} set={args.overrides}: "
          f"{meta.get('gpu') or meta.get('cpu')}, {meta['threads']} threads, torch {meta['torch']},"
          f" {args.precision}{', channels_last' if args.channels_last else ''}")
    data = args.data or default_data(args.method, args.config, args.overrides)
    print(f"# data {data}")
    from i2i_fast.bench import allocation

    def measure_setting() -> list[dict]:
        runners = []
        for provider in args.providers.split(","):
            precision = (args.reference_precision or args.precision) \
                if provider == "eager_reference" else args.precision
            runners.append(Runner(args.method, args.config, args.overrides, provider,
                                  args.device, precision, args.channels_last, data))
        results = measure_interleaved(runners, args.iterations, args.warmup)
        if results[0]["first_iteration"]:
            print(f"# timed from iteration {results[0]['first_iteration']} (the method's first "
                  f"full iteration)")
        for r in results:
            r.update(method=args.method, config=str(args.config),
                     overrides=" ".join(args.overrides), data=data,
                     channels_last=args.channels_last)
            print(f"{r['provider']:19s} {r['precision']:5s} {r['median_s'] * 1e3:9.1f} "
                  f"ms/iteration  {r['images_per_s']:8.2f} images/s  (p20 "
                  f"{r['p20_s'] * 1e3:.1f}, p80 {r['p80_s'] * 1e3:.1f} ms)", flush=True)
        speedups(results)
        return results

    results = allocation.across_settings(
        allocation.settings_of(args, args.device.split(":")[0]), args.device.split(":")[0],
        measure_setting, args.after_churn)
    lines = floor_lines(results, args.device.split(":")[0])
    for line in lines:
        print(line)
    if not args.no_save:
        out = save(results, [], meta, Path(args.out) if args.out else default_out_dir(),
                   kind=f"method-{args.method}")
        print(f"results: {out}.json / .csv")
    if args.check_floors and (not lines or any(line.startswith("FAIL") for line in lines)):
        return 1
    return 0
