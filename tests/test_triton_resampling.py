"""The triton backend of max pooling (i2i_fast_triton::block_max_forward, _scatter, _gather):
values and gradients equal to aten's F.max_pool2d (ties and NaNs routed as aten routes them), in
every dtype and layout, double backward, opcheck, torch.compile, forward mode refused by name, the
kernels torch finds behind the operators, and compilation of every kernel variant for sm_90.

Without a GPU the kernels run in the Triton interpreter on CPU tensors (tests/conftest.py sets
TRITON_INTERPRET=1); with a GPU the same checks run on CUDA tensors (parameters marked `cuda`).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import i2i_fast.ops as ops
from helpers import in_layout
from triton_test_devices import DEVICES, needs_triton, run_compile_check, triton_kernels_of

DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)


def _tied(shape, dtype, device, seed=0):
    """ReLU of small integers: mostly ties (zeros and ones)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-3, 3, shape, generator=g).clamp_min(0).to(dtype).to(device)


def _pool_and_grad(pool, x, factor, grad_out):
    xr = x.detach().clone().requires_grad_()
    y = pool(xr, factor)
    (g,) = torch.autograd.grad(y, xr, grad_out)
    return y, g


def _triton_pool(x, factor):
    with ops.use_backend("triton"):
        return ops.max_pool(x, factor)


def _aten_pool(x, factor):
    return F.max_pool2d(x, factor, factor)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout", ("contiguous", "channels_last", "strided"))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("factor, shape", [(2, (2, 3, 8, 6)), (2, (2, 5, 7, 9)), (3, (1, 4, 10, 8)),
                                           (1, (1, 2, 3, 3)), (17, (1, 2, 18, 35))])
def test_values_and_gradients_equal_aten(factor, shape, dtype, layout, device):
    x = in_layout(_tied(shape, dtype, device), layout)
    out_shape = (*shape[:2], shape[2] // factor, shape[3] // factor)
    grad_out = in_layout(torch.randn(out_shape, dtype=torch.float64).to(dtype).to(device), layout)
    y, g = _pool_and_grad(_triton_pool, x, factor, grad_out)
    ya, ga = _pool_and_grad(_aten_pool, x, factor, grad_out)
    assert torch.equal(y, ya) and torch.equal(g, ga)
    assert y.stride() == ops.max_pool(x.cpu(), factor).stride()  # the compiled kernels' layout


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", (torch.float32, torch.bfloat16), ids=str)
def test_nan_routes_as_aten(dtype, device):
    nan, inf = float("nan"), float("inf")
    windows = [[nan, 1.0, nan, 2.0], [1.0, nan, nan, 2.0], [3.0, inf, inf, nan],
               [-inf, -inf, -inf, -inf], [0.0, -0.0, 0.0, -0.0]]
    x = torch.tensor(windows).view(1, len(windows), 2, 2).repeat(2, 1, 2, 2).to(dtype).to(device)
    grad_out = torch.randn(2, len(windows), 2, 2).to(dtype).to(device)
    y, g = _pool_and_grad(_triton_pool, x, 2, grad_out)
    ya, ga = _pool_and_grad(_aten_pool, x, 2, grad_out)
    assert torch.equal(y.nan_to_num(), ya.nan_to_num()) and torch.equal(y.isnan(), ya.isnan())
    assert torch.equal(g, ga)


@pytest.mark.parametrize("device", DEVICES)
def test_double_backward_equals_aten(device):
    x = _tied((2, 3, 7, 8), torch.float64, device)
    upstream = torch.randn(2, 3, 3, 4, dtype=torch.float64, device=device)
    results = []
    for pool in (_triton_pool, _aten_pool):
        xr = x.clone().requires_grad_()
        grad_out = upstream.clone().requires_grad_()
        (g,) = torch.autograd.grad(pool(xr, 2), xr, grad_out, create_graph=True)
        (gg,) = torch.autograd.grad((g * torch.arange(g.numel(), device=device).view_as(g)).sum(),
                                    grad_out)
        results.append((g, gg))
    for got, expected in zip(*results):
        assert torch.equal(got, expected)


@pytest.mark.parametrize("device", DEVICES)
def test_gradcheck(device):
    x = torch.randn(1, 2, 6, 5, dtype=torch.float64, device=device).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: _triton_pool(t, 2), (x,))
    assert torch.autograd.gradgradcheck(lambda t: _triton_pool(t, 2), (x,))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_opcheck(device, layout):
    lib = torch.ops.i2i_fast_triton
    x = in_layout(torch.randn(2, 3, 7, 6, device=device), layout)
    torch.library.opcheck(lib.block_max_forward.default, (x.clone().requires_grad_(), 2))
    out, index = lib.block_max_forward(x, 2)
    torch.library.opcheck(lib.block_max_scatter.default,
                          (torch.randn_like(out).requires_grad_(), index, 2, 7, 6))
    torch.library.opcheck(lib.block_max_gather.default,
                          (x.clone().requires_grad_(), index, 2, 3, 3))


@pytest.mark.parametrize("device", DEVICES)
def test_forward_mode_is_refused_by_name(device):
    x = torch.randn(1, 2, 4, 4, device=device)
    with pytest.raises(NotImplementedError, match="max_pool: forward-mode automatic"):
        torch.func.jvp(lambda z: _triton_pool(z, 2), (x,), (torch.ones_like(x),))


@pytest.mark.parametrize("device", DEVICES)
def test_compile_fullgraph_calls_the_triton_operator(device):
    seen = []

    def backend(gm, example_inputs):
        seen.extend(str(node.target) for node in gm.graph.nodes if node.op == "call_function")
        return gm.forward

    x = _tied((2, 3, 6, 6), torch.float32, device)
    torch._dynamo.reset()
    with ops.use_backend("triton"):
        out = torch.compile(lambda t: ops.max_pool(t, 2), fullgraph=True, backend=backend)(x)
    torch._dynamo.reset()
    assert any("i2i_fast_triton.block_max_forward" in s for s in seen), seen
    assert torch.equal(out, _aten_pool(x, 2))


@needs_triton
def test_torch_finds_every_kernel_of_each_operator():
    """torch.library.triton_op finds the kernel behind each operator (its source is part of the
    AOTAutograd cache key). Checked with compiled-mode kernels, in a fresh process."""
    found = triton_kernels_of("i2i_fast.ops.resampling.triton",
                              tuple(f"block_max_{d}" for d in ("forward", "scatter", "gather")))
    assert found == {"block_max_forward": ["block_max_forward_kernel"],
                     "block_max_scatter": ["block_max_route_kernel"],
                     "block_max_gather": ["block_max_route_kernel"]}


@pytest.mark.slow
@needs_triton
def test_every_kernel_compiles_for_sm90():
    """The real Triton compiler builds every kernel variant the operators launch, for an H100."""
    lines = run_compile_check("triton_resampling_compile_check.py", "--arch", "90")
    summary = lines[-1]
    assert summary["failures"] == 0 and summary["compiled"] >= 20, summary
    assert {r["kernel"] for r in lines if "kernel" in r} == {"block_max_forward_kernel",
                                                             "block_max_route_kernel"}
