"""GPU checks of the kernel defects of issue 23 (skipped without CUDA; benchmarks/gpu_check.sh
runs this file first).

1. Several teams in one block: the CUDA row kernels put 2 to 8 teams in a 256-thread block for
   rows of up to 2048 elements (32x32, 37x41, 1517 elements, ...), and team_sum used the first
   team's partial sums for all of them; rows past the last one leave teams idle, which must still
   reach the block barriers. Shapes here give multi-team blocks with idle teams on both the fused
   and the split path (tests/test_cuda_row_plan.py checks on the CPU that they do).
2. Constant samples and channels: MUNIT's LayerNorm backward was 0/0 = NaN (CUDA here; the
   Triton kernels in tests/test_triton_normalization.py, which runs them on the GPU too).
3. Inputs on a second GPU while the first is current: the Triton operators launched on the
   current device (needs two GPUs; the CUDA kernels already guard the device).
Register spills (4) are checked where nvcc is, without a GPU (tests/test_cuda_build.py).
"""

from __future__ import annotations

import pytest
import torch

import i2i_fast.ops as ops
from helpers import (
    EXACT_CONSTANTS,
    NORM_OPS,
    TOLERANCE,
    call,
    check_against_reference,
    in_layout,
    make_args,
    rel_err,
    with_constant_groups,
)
from i2i_fast.ops import triton_support as ts

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason="no CUDA device (torch.cuda.is_available() is False)"),
]

PATH_ENV = "I2I_FAST_CUDA_NORM_PATH"

# (N, C, spatial...): rows = N * C of S elements (contiguous: the row kernels).
MULTI_TEAM_SHAPES = [
    (2, 16, 32, 32),  # S = 1024: 4 teams of 64 per block (16-byte packs)
    (3, 11, 32, 32),  # 33 rows: the last block has idle teams
    (2, 3, 40, 38),  # S = 1520: 2 teams of 128 per block, 6 rows
    (1, 3, 37, 41),  # S = 1517: scalar loads
    (2, 5, 1517),  # (N, C, L), S = 1517
    (3, 11, 599),  # scalar loads, S = 599: 2 teams of 128, 33 rows
    (1, 11, 13, 23),  # scalar loads, S = 299: 4 teams of 64, 11 rows
    (2, 4, 24, 24),  # S = 576, 8 rows
    (2, 3, 91, 99),  # S = 9009, scalar: split since issue 23 (fused held up to 16384 before)
]
DTYPES = [torch.float32, torch.bfloat16, torch.float16, torch.float64]


@pytest.fixture(params=["auto", "fused", "split"])
def path(request, monkeypatch):
    """The CUDA kernels' path (read by the C++ code at each call)."""
    if request.param == "auto":
        monkeypatch.delenv(PATH_ENV, raising=False)
    else:
        monkeypatch.setenv(PATH_ENV, request.param)
    return request.param


def _cuda_args(op, shape, dtype, seed=0):
    return tuple(t.cuda() for t in make_args(op, shape, dtype, seed=seed))


def _grad_out(shape, dtype, device="cuda", seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)


@pytest.mark.parametrize("op", NORM_OPS)
@pytest.mark.parametrize("shape", MULTI_TEAM_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cuda_rows_with_several_teams_per_block(op, shape, dtype, path):
    x, w, b = _cuda_args(op, shape, dtype)
    check_against_reference(op, x, w, b, "leaky_relu", _grad_out(shape, dtype), TOLERANCE[dtype],
                            "cuda")


@pytest.mark.parametrize("op", NORM_OPS)
@pytest.mark.parametrize("shape", [(2, 16, 32, 32), (3, 11, 599)], ids=str)
def test_cuda_channels_last_at_the_same_shapes(op, shape):
    x, w, b = _cuda_args(op, shape, torch.float32)
    x = in_layout(x, "channels_last")
    check_against_reference(op, x, w, b, "relu", _grad_out(shape, torch.float32),
                            TOLERANCE[torch.float32], "cuda")


@pytest.mark.parametrize("op", NORM_OPS)
@pytest.mark.parametrize("value", EXACT_CONSTANTS)
@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (2, 16, 32, 32), (3, 11, 599), (2, 5, 1517)],
                         ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64], ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_cuda_constant_groups(op, value, shape, dtype, layout, path):
    x, w, b = _cuda_args(op, shape, dtype)
    x = with_constant_groups(in_layout(x, layout), value)
    check_against_reference(op, x, w, b, "leaky_relu", _grad_out(shape, dtype), TOLERANCE[dtype],
                            "cuda")


@pytest.mark.parametrize("backend", ["cuda", "triton"])
@pytest.mark.parametrize("fill", [0.0, 0.1])
def test_munit_layer_norm_of_a_constant_tensor_backpropagates(backend, fill):
    """The issue's reproduction on the GPU backends: finite values and gradients. (0.1 is not a
    sum-exact constant: float32 sums on the GPU may leave its mean one rounding off, so only
    finiteness is asserted for it; exact constants are compared with the reference above.)"""
    if backend == "triton" and ts.state().unavailable_reason is not None:
        pytest.skip(ts.state().describe())
    x = torch.full((2, 3, 4, 4), fill, device="cuda", requires_grad=True)
    w = torch.rand(3, device="cuda") + 0.5
    b = torch.randn(3, device="cuda")
    with ops.use_backend(backend):
        y = ops.layer_norm(x, w, b, style="munit")
        y.sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("spread", [1e-3, 1e-9, 1e-13, 1e-15])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_cuda_munit_layer_norm_of_a_tiny_spread(spread, dtype):
    shape = (2, 3, 5, 6)
    g = torch.Generator().manual_seed(3)
    x, w, b, grad_out = ((torch.randn(shape, generator=g, dtype=torch.float64) * spread),
                         torch.rand(3, generator=g, dtype=torch.float64) + 0.5,
                         torch.randn(3, generator=g, dtype=torch.float64),
                         torch.randn(shape, generator=g, dtype=torch.float64))
    x, w, b, grad_out = (t.to(device="cuda", dtype=dtype) for t in (x, w, b, grad_out))
    check_against_reference("layer_norm/munit", x, w, b, None, grad_out, TOLERANCE[dtype], "cuda")


# ----- inputs on a second GPU -------------------------------------------------------------------

needs_two_gpus = pytest.mark.skipif(torch.cuda.device_count() < 2,
                                    reason=f"needs two GPUs, found {torch.cuda.device_count()}")


def _backend_or_skip(backend: str):
    reason = ops.get_backend(backend).unavailable_reason()
    if reason is not None:
        pytest.skip(f"{backend}: {reason}")


@needs_two_gpus
@pytest.mark.parametrize("backend", ["cuda", "triton"])
@pytest.mark.parametrize("op", NORM_OPS)
def test_normalization_on_the_second_gpu(backend, op):
    _backend_or_skip(backend)
    shape = (3, 11, 32, 32)
    x, w, b = (t.to("cuda:1") for t in make_args(op, shape, torch.float32))
    grad_out = _grad_out(shape, torch.float32, device="cuda:1")
    with torch.cuda.device(0):
        assert torch.cuda.current_device() == 0
        check_against_reference(op, x, w, b, "relu", grad_out, TOLERANCE[torch.float32], backend)
        with ops.use_backend(backend):
            y = call(op, x, w, b, "relu")
    assert y.device == torch.device("cuda:1")


@needs_two_gpus
@pytest.mark.parametrize("backend", ["cuda", "triton"])
def test_losses_on_the_second_gpu(backend):
    _backend_or_skip(backend)
    g = torch.Generator().manual_seed(0)
    outputs = [torch.randn(s, generator=g).to("cuda:1").requires_grad_()
               for s in ((4, 1, 16, 16), (4, 1, 8, 8))]
    grads = torch.randn(4, 3, 32, 32, generator=g).to("cuda:1").requires_grad_()
    with torch.cuda.device(0):
        with ops.use_backend(backend):
            loss = ops.gan_loss(outputs, "real", "lsgan")
            r1 = ops.r1_penalty(grads, 0.5)
            d_outputs = torch.autograd.grad(loss, outputs)
            d_grads, = torch.autograd.grad(r1, grads)
        ref_loss = ops.reference.gan_loss(outputs, "real", "lsgan")
        ref_r1 = ops.reference.r1_penalty(grads, 0.5)
        ref_d_outputs = torch.autograd.grad(ref_loss, outputs)
        ref_d_grads, = torch.autograd.grad(ref_r1, grads)
    for actual, expected in ((loss, ref_loss), (r1, ref_r1), *zip(d_outputs, ref_d_outputs),
                             (d_grads, ref_d_grads)):
        assert actual.device == torch.device("cuda:1")
        assert rel_err(actual, expected) <= 1e-5
