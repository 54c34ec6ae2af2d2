"""The resampling operators (upsample_nearest, avg_pool, max_pool, reflection_pad) against PyTorch's
functions: values and gradients in every dtype and layout, odd shapes, higher derivatives,
opcheck, torch.compile, bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import i2i_fast.ops as ops
from helpers import TOLERANCE, in_layout, rel_err

lib = torch.ops.i2i_fast
DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)
LAYOUTS = ("contiguous", "channels_last", "strided")
# (op, amount, shape): odd sizes, remainders for the pool, pads up to H - 1.
CASES = [
    ("upsample_nearest", 2, (2, 3, 5, 7)),
    ("upsample_nearest", 3, (1, 4, 3, 2)),
    ("upsample_nearest", 1, (2, 2, 4, 3)),
    ("avg_pool", 2, (2, 3, 8, 6)),
    ("avg_pool", 2, (2, 5, 7, 9)),
    ("avg_pool", 3, (1, 3, 10, 8)),
    ("max_pool", 2, (2, 3, 8, 6)),
    ("max_pool", 2, (2, 5, 7, 9)),
    ("max_pool", 3, (1, 3, 10, 8)),
    ("max_pool", 1, (1, 2, 3, 3)),
    ("reflection_pad", 1, (2, 3, 5, 7)),
    ("reflection_pad", 3, (2, 4, 8, 4)),
    ("reflection_pad", 2, (1, 2, 3, 3)),
    ("reflection_pad", 0, (1, 2, 3, 3)),
]
REFERENCE = {
    "upsample_nearest": lambda x, f: F.interpolate(x, scale_factor=f, mode="nearest"),
    "avg_pool": lambda x, f: F.avg_pool2d(x, f),
    "max_pool": lambda x, f: F.max_pool2d(x, f, f),
    "reflection_pad": lambda x, p: F.pad(x, (p, p, p, p), mode="reflect"),
}


def _input(shape, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * 3 + 0.5).to(dtype)


def _fused(op, x, amount):
    assert ops.chosen_backend(op, x) == "cpu"
    return getattr(ops, op)(x, amount)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}-{'x'.join(map(str, c[2]))}")
def test_values_and_gradient_match_pytorch(case, dtype, layout):
    op, amount, shape = case
    x64 = _input(shape, torch.float64)
    expected = REFERENCE[op](x64, amount)
    x = in_layout(x64.to(dtype), layout).requires_grad_()
    y = _fused(op, x, amount)
    assert y.shape == expected.shape and y.dtype == dtype
    tol = TOLERANCE[dtype]
    assert rel_err(y, expected) <= tol
    # the layout is kept: channels-last in, channels-last out; otherwise contiguous
    if layout == "channels_last" and not x.is_contiguous():
        assert y.is_contiguous(memory_format=torch.channels_last)
    else:
        assert y.is_contiguous()
    grad_out = in_layout(_input(expected.shape, torch.float64, seed=1), layout)
    x64r = x64.clone().requires_grad_()
    (expected_grad,) = torch.autograd.grad(REFERENCE[op](x64r, amount), x64r, grad_out)
    (grad,) = torch.autograd.grad(y, x, grad_out.to(dtype))
    assert grad.shape == x.shape and grad.dtype == dtype
    # 16-bit: the gradient sums up to 9 values and is rounded once
    assert rel_err(grad, expected_grad) <= tol


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_channels_last_kernels_of_the_compiled_operators(case, dtype):
    """The compiled operators called directly (torch.ops.i2i_fast.*, no backend choice) on
    channels-last inputs: values and gradients."""
    op, amount, shape = case
    x64 = _input(shape, torch.float64)
    x = in_layout(x64.to(dtype), "channels_last").requires_grad_()
    raw = {
        "upsample_nearest": lambda t: lib.block_repeat(t, amount, 1.0, t.shape[2] * amount,
                                                       t.shape[3] * amount),
        "avg_pool": lambda t: lib.block_sum(t, amount, float(amount * amount)),
        "max_pool": lambda t: lib.block_max(t, amount),
        "reflection_pad": lambda t: lib.reflection_pad(t, amount),
    }[op]
    y = raw(x)
    expected = REFERENCE[op](x64, amount)
    assert rel_err(y, expected) <= TOLERANCE[dtype]
    if not x.is_contiguous():
        assert y.is_contiguous(memory_format=torch.channels_last)
    g = in_layout(_input(expected.shape, torch.float64, seed=1), "channels_last")
    x64r = x64.clone().requires_grad_()
    (expected_grad,) = torch.autograd.grad(REFERENCE[op](x64r, amount), x64r, g)
    (grad,) = torch.autograd.grad(y, x, g.to(dtype))
    assert rel_err(grad, expected_grad) <= TOLERANCE[dtype]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_float64_exact_where_pytorch_is_exact(case):
    """Copies are bit-exact; the pool divides like avg_pool2d (sum in row order, then / f^2)."""
    op, amount, shape = case
    x = _input(shape, torch.float32)
    assert torch.equal(_fused(op, x, amount), REFERENCE[op](x, amount))


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_gradcheck_and_gradgradcheck(case):
    op, amount, shape = case
    for layout in ("contiguous", "channels_last"):
        x = in_layout(_input(shape, torch.float64), layout).requires_grad_()
        fn = lambda t: getattr(ops, op)(t, amount)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (x,))
        assert torch.autograd.gradgradcheck(fn, (x,))


def test_third_derivative_through_the_partner_operators():
    """Each operator's backward is its adjoint partner, itself differentiable: any order."""
    x = _input((1, 2, 6, 6), torch.float64).requires_grad_()
    y = ops.avg_pool(ops.reflection_pad(ops.upsample_nearest(x, 2), 2).sin(), 2)
    (g1,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    (g2,) = torch.autograd.grad(g1.square().sum(), x, create_graph=True)
    (g3,) = torch.autograd.grad(g2.sum(), x)
    with ops.use_backend("reference"):
        xr = x.detach().clone().requires_grad_()
        yr = ops.avg_pool(ops.reflection_pad(ops.upsample_nearest(xr, 2), 2).sin(), 2)
        (r1,) = torch.autograd.grad(yr.sum(), xr, create_graph=True)
        (r2,) = torch.autograd.grad(r1.square().sum(), xr, create_graph=True)
        (r3,) = torch.autograd.grad(r2.sum(), xr)
    for got, want in ((g1, r1), (g2, r2), (g3, r3)):
        assert rel_err(got, want) < 1e-12


def test_pool_remainder_gets_zero_gradient():
    x = _input((1, 1, 5, 5), torch.float32).requires_grad_()
    ops.avg_pool(x, 2).sum().backward()
    assert torch.all(x.grad[..., 4, :] == 0) and torch.all(x.grad[..., :, 4] == 0)
    assert torch.all(x.grad[..., :4, :4] == 0.25)


def test_large_tensor_parallel_path_matches():
    """Big enough that the kernels split rows over threads."""
    for layout in ("contiguous", "channels_last"):
        x = in_layout(_input((4, 16, 64, 48), torch.float32), layout)
        for op, amount in (("upsample_nearest", 2), ("avg_pool", 2), ("max_pool", 2),
                           ("reflection_pad", 3)):
            xr = x.clone().requires_grad_()
            xf = x.clone().requires_grad_()
            y = _fused(op, xf, amount)
            yr = REFERENCE[op](xr, amount)
            assert torch.equal(y, yr)
            g = torch.randn_like(yr)
            y.backward(g)
            yr.backward(g)
            assert rel_err(xf.grad, xr.grad) < 1e-6


def _samples():
    x = _input((2, 3, 6, 5), torch.float32)
    g = _input((2, 3, 12, 10), torch.float32)
    samples = []
    for t, gg in ((x, g), (in_layout(x, "channels_last"), in_layout(g, "channels_last"))):
        samples += [
            (lib.block_repeat.default, (t, 2, 1.0, 12, 10)),
            (lib.block_repeat.default, (t, 2, 4.0, 13, 11)),
            (lib.block_sum.default, (gg, 2, 4.0)),
            (lib.block_sum.default, (gg, 3, 1.0)),
            (lib.reflection_pad.default, (t, 2)),
            (lib.reflection_pad_backward.default, (gg, 2)),
        ]
    return samples


@pytest.mark.parametrize("sample", range(len(_samples())))
def test_opcheck(sample):
    op, args = _samples()[sample]
    args = (args[0].clone().requires_grad_(), *args[1:])
    torch.library.opcheck(op, args)


def test_compile_fullgraph_calls_the_operators_and_matches_eager():
    seen = []

    def backend(gm, example_inputs):
        seen.extend(str(n.target) for n in gm.graph.nodes if n.op == "call_function")
        return gm.forward

    def f(x):
        return ops.avg_pool(ops.reflection_pad(ops.upsample_nearest(x, 2), 1), 2)

    x = _input((2, 3, 6, 6), torch.float32).requires_grad_()
    torch.compile(f, fullgraph=True, backend=backend)(x)
    assert {"i2i_fast.block_repeat", "i2i_fast.reflection_pad", "i2i_fast.block_sum"} <= set(
        seen), seen
    torch._dynamo.reset()
    out = torch.compile(f, fullgraph=True)(x)
    (grad,) = torch.autograd.grad(out.square().sum(), x)
    xe = x.detach().clone().requires_grad_()
    eager = f(xe)
    (grad_eager,) = torch.autograd.grad(eager.square().sum(), xe)
    assert rel_err(out, eager) < 1e-6 and rel_err(grad, grad_eager) < 1e-6


def test_inference_mode_and_no_grad():
    x = _input((1, 2, 4, 4), torch.float32)
    with torch.inference_mode():
        assert torch.equal(ops.upsample_nearest(x, 2), REFERENCE["upsample_nearest"](x, 2))
    with torch.no_grad():
        y = ops.reflection_pad(x.requires_grad_(), 1)
    assert not y.requires_grad


def test_empty_batch():
    x = torch.zeros(0, 3, 4, 4)
    assert ops.upsample_nearest(x, 2).shape == (0, 3, 8, 8)
    assert ops.avg_pool(x, 2).shape == (0, 3, 2, 2)
    assert ops.max_pool(x, 2).shape == (0, 3, 2, 2)
    assert ops.reflection_pad(x, 1).shape == (0, 3, 6, 6)


@pytest.mark.parametrize("call, error, message", [
    (lambda: ops.upsample_nearest("x", 2), TypeError, r"upsample_nearest: x: expected a torch"),
    (lambda: ops.upsample_nearest(torch.zeros(2, 3, 4), 2), ValueError,
     r"upsample_nearest: x: expected shape \(N, C, H, W\), got 3 dims"),
    (lambda: ops.upsample_nearest(torch.zeros(1, 1, 2, 2), 0), ValueError,
     r"upsample_nearest: factor: expected an integer >= 1, got 0"),
    (lambda: ops.upsample_nearest(torch.zeros(1, 1, 2, 2), 2.0), ValueError,
     r"factor: expected an integer >= 1, got 2.0"),
    (lambda: ops.avg_pool(torch.zeros(1, 1, 2, 2, dtype=torch.int64), 2), TypeError,
     r"avg_pool: x: expected a floating tensor"),
    (lambda: ops.avg_pool(torch.zeros(1, 1, 1, 4), 2), ValueError,
     r"avg_pool: x: expected H and W >= factor \(2\), got shape \(1, 1, 1, 4\)"),
    (lambda: ops.max_pool(torch.zeros(1, 1, 4, 2), 3), ValueError,
     r"max_pool: x: expected H and W >= factor \(3\), got shape \(1, 1, 4, 2\)"),
    (lambda: ops.max_pool(torch.zeros(1, 1, 4, 4), True), ValueError,
     r"max_pool: factor: expected an integer >= 1, got True"),
    (lambda: lib.block_max_scatter(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2,
                                   dtype=torch.uint8), 2, 6, 4), ValueError,
     r"block_max_scatter: out_h, out_w: expected \[4, 6\) x \[4, 6\) for grad of shape "
     r"\(1, 1, 2, 2\) and factor 2, got 6 x 4"),
    (lambda: lib.block_max_gather(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 2, 2), 2, 2, 2),
     ValueError, r"block_max_gather: index: expected block_max_forward's window positions of "
                 r"shape \(1, 1, 2, 2\) and dtype torch.uint8, got shape \(1, 1, 2, 2\) and "
                 r"dtype torch.float32"),
    (lambda: ops.reflection_pad(torch.zeros(1, 1, 3, 8), 3), ValueError,
     r"reflection_pad: pad: expected pad < H and pad < W .* got pad 3"),
    (lambda: ops.reflection_pad(torch.zeros(1, 1, 3, 8), -1), ValueError,
     r"reflection_pad: pad: expected an integer >= 0, got -1"),
    (lambda: lib.block_repeat(torch.zeros(1, 1, 3, 3), 2, 1.0, 5, 6), RuntimeError,
     r"block_repeat: out_h, out_w: expected \[6, 8\) x \[6, 8\)"),
    (lambda: lib.reflection_pad_backward(torch.zeros(1, 1, 6, 6), 2), RuntimeError,
     r"reflection_pad_backward: grad: expected a padded gradient"),
])
def test_bad_input_is_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_cuda_tensors_go_to_the_reference_backend():
    """No CUDA kernels in this family, and Triton ones for max_pool only: on a GPU the automatic
    choice is PyTorch's for the others."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    x = torch.randn(1, 2, 4, 4, device="cuda")
    assert ops.chosen_backend("avg_pool", x) == "reference"
    triton = ops.get_backend("triton").unavailable_reason() is None
    assert ops.chosen_backend("max_pool", x) == ("triton" if triton else "reference")


def test_benchmark_runs_and_reports_ratios():
    from i2i_fast.bench import resampling_bench as rb

    cases = [rb.Case("avg_pool", 2, (1, 2, 8, 8), "test"),
             rb.Case("reflection_pad", 1, (1, 2, 6, 6), "test")]
    records = rb.run(cases, [False, True], ["forward_backward"], ["eager", "fused"], repeats=2)
    assert len(records) == 2 * 2 * 2
    fused = [r for r in records if r["provider"] == "fused"]
    assert all(r["vs_eager"] > 0 and r["runs"] == 2 for r in fused)
    assert {r["layout"] for r in records} == {"contiguous", "channels_last"}
