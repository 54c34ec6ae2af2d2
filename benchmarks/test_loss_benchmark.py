"""pytest-benchmark of the GAN losses and R1: eager reference, torch.compile(reference), fused.

    python -m pytest benchmarks/test_loss_benchmark.py --benchmark-group-by=group

The cases, inputs and providers are those of `i2i-fast bench losses` (i2i_fast/bench/
loss_bench.py), which also prints the speedups and checks the issue's floors
(`--check-floors`); this file gives the same measurements pytest-benchmark's statistics and
storage (--benchmark-save, --benchmark-compare). Each case is one step of the method's
discriminator (or generator) loss at its published sizes; see loss_bench's docstring.
"""

from __future__ import annotations

import pytest
import torch

from i2i_fast.bench import loss_bench


@pytest.mark.parametrize("mode", loss_bench.MODES)
@pytest.mark.parametrize("provider", loss_bench.PROVIDERS)
@pytest.mark.parametrize("case", loss_bench.CASES, ids=lambda c: c.name)
def test_loss(benchmark, case, provider, mode):
    tensors = loss_bench.make_inputs(case, torch.float32, "cpu")
    fn = loss_bench.provider_fn(case, provider)
    step = loss_bench.step_fn(fn, tensors, mode, inner=1)
    for _ in range(3):  # warm-up; torch.compile compiles here
        step()
    benchmark.group = f"{case.name} {mode}"
    benchmark.extra_info.update(case=case.name, where=case.where, provider=provider, mode=mode,
                                threads=torch.get_num_threads())
    benchmark(step)
    if provider == "compile":
        torch._dynamo.reset()
