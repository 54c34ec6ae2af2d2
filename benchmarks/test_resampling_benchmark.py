"""pytest-benchmark of the resampling operators: eager PyTorch, torch.compile of it, fused.

    python -m pytest benchmarks/test_resampling_benchmark.py --benchmark-group-by=group

The cases and providers are those of `i2i-fast bench resampling` (i2i_fast/bench/
resampling_bench.py), which times the providers in turn and prints the speedups; this file gives
the same measurements pytest-benchmark's statistics and storage.
"""

from __future__ import annotations

import pytest
import torch

from i2i_fast.bench import resampling_bench


@pytest.mark.parametrize("mode", resampling_bench.MODES)
@pytest.mark.parametrize("provider", resampling_bench.PROVIDERS)
@pytest.mark.parametrize("channels_last", (False, True), ids=("contiguous", "channels_last"))
@pytest.mark.parametrize("case", resampling_bench.CASES,
                         ids=lambda c: f"{c.op}-{c.amount}-{'x'.join(map(str, c.shape))}")
def test_resampling(benchmark, case, channels_last, provider, mode):
    x = torch.randn(case.shape)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    step = resampling_bench.step_fn(resampling_bench.make_fn(case.op, provider), x, case.amount,
                                    mode)
    for _ in range(3):  # warm-up; torch.compile compiles here
        step()
    layout = "channels_last" if channels_last else "contiguous"
    benchmark.group = f"{case.op} {case.amount} {case.shape} {layout} {mode}"
    benchmark.extra_info.update(op=case.op, layer=case.where, provider=provider, mode=mode,
                                layout=layout, threads=torch.get_num_threads())
    benchmark(step)
    if provider == "compile":
        torch._dynamo.reset()
