"""pytest-benchmark view of the operator benchmark (same cases and providers as
`i2i-fast bench ops`): `pytest benchmarks/test_ops_benchmark.py --benchmark-group-by=group`.

Each case × mode is a group, so pytest-benchmark prints eager reference, torch.compile(reference)
and the fused backend side by side.
"""

from __future__ import annotations

import pytest
import torch

from i2i_fast.bench import ops_bench

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
CASES = [c for c in ops_bench.METHOD_CASES]


@pytest.mark.parametrize("mode", ops_bench.MODES)
@pytest.mark.parametrize("provider", ["eager", "compile", "fused"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name.replace(" ", "_"))
def test_operator(benchmark, case, provider, mode):
    fn = ops_bench.provider_fn(case, provider)
    inputs = ops_bench.make_inputs(case, torch.float32, DEVICE, channels_last=False)
    step = ops_bench.step_fn(fn, inputs, mode)
    benchmark.group = f"{case.name} {mode}"
    benchmark.extra_info.update(op=case.op, shape=case.shape, provider=provider, mode=mode,
                                where=case.where)
    benchmark.pedantic(step, rounds=10, warmup_rounds=3)
    if provider == "compile":
        torch._dynamo.reset()
