"""ops.filter_response_norm: every fused backend against the float64 reference (values and the
gradients of x, weight, bias and tau), odd shapes, layouts, dtypes, ties at the threshold, NaN and
Inf; the written-out gradient (reference.filter_response_norm_backward) against autograd."""

from __future__ import annotations

import pytest
import torch

import i2i_fast.ops as ops
from helpers import TOLERANCE, in_layout, rel_err, threads
from i2i_fast.ops import triton_support
from i2i_fast.ops.filter_response_norm import reference

F64 = torch.float64
BACKENDS = [
    pytest.param("cpu", marks=pytest.mark.skipif(
        ops.get_backend("cpu").unavailable_reason() is not None, reason="extension not loaded")),
    pytest.param("triton", marks=pytest.mark.skipif(
        triton_support.state().unavailable_reason is not None,
        reason=triton_support.state().describe())),
]
SHAPES = [
    (1, 1, 1, 1),  # a single element
    (1, 3, 5, 7),  # N = 1
    (4, 1, 6, 6),  # C = 1
    (3, 4, 1, 1),  # 1x1 spatial
    (2, 3, 3, 5),
    (2, 70, 3, 5),  # channels-last: more channels than one task's block
    (2, 3, 33, 37),  # rows longer than one summation block
]
NAMES = ("out", "grad_x", "grad_weight", "grad_bias", "grad_tau")


def make_inputs(shape, dtype, param_dtype=None, seed=0):
    """x, weight, bias, tau (tau around the normalised values, so both sides of the max occur)."""
    g = torch.Generator().manual_seed(seed)
    c = shape[1]
    x = (torch.randn(shape, generator=g, dtype=F64) * 2 + 0.3).to(dtype)
    pdt = param_dtype or dtype
    w = (torch.rand(c, generator=g, dtype=F64) * 1.5 - 0.25).to(pdt)
    b = (torch.randn(c, generator=g, dtype=F64) * 0.5).to(pdt)
    t = (torch.randn(c, generator=g, dtype=F64) * 0.5).to(pdt)
    return x, w, b, t


def with_grads(fn, x, w, b, t, grad_out, eps=1e-6):
    leaves = [v.detach().clone().requires_grad_() for v in (x, w, b, t)]
    y = fn(*leaves, eps)
    return (y.detach(), *torch.autograd.grad(y, leaves, grad_out))


def reference_results(x, w, b, t, grad_out, eps=1e-6):
    return with_grads(reference.filter_response_norm, *(v.double() for v in (x, w, b, t)),
                      grad_out.double(), eps)


def backend_results(backend, x, w, b, t, grad_out, eps=1e-6):
    with ops.use_backend(backend):
        return with_grads(ops.filter_response_norm, x, w, b, t, grad_out, eps)


def check(backend, shape, layout, dtype, param_dtype=None, eps=1e-6, tol=None):
    x, w, b, t = make_inputs(shape, dtype, param_dtype)
    x = in_layout(x, layout)
    grad_out = torch.randn(shape, generator=torch.Generator().manual_seed(1),
                           dtype=F64).to(dtype)
    got = backend_results(backend, x, w, b, t, grad_out, eps)
    expected = reference_results(x, w, b, t, grad_out, eps)
    for name, a, e in zip(NAMES, got, expected):
        err = rel_err(a, e)
        assert err <= (tol or TOLERANCE[dtype]), f"{backend} {shape} {layout} {dtype}: {name} {err}"
    y, gx, gw, gb, gt = got
    assert y.dtype == dtype and gx.dtype == dtype
    for grad, param in ((gw, w), (gb, b), (gt, t)):
        assert grad.dtype == param.dtype and grad.shape == param.shape
    if layout == "channels_last" and not x.is_contiguous():
        assert y.stride() == x.stride() and gx.stride() == x.stride()
    else:
        assert y.is_contiguous() and gx.is_contiguous()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
def test_float64_shapes_and_layouts(backend, shape, layout):
    check(backend, shape, layout, F64)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_dtypes(backend, layout, dtype):
    check(backend, (2, 5, 9, 11), layout, dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_float32_parameters_with_a_16_bit_x(backend, dtype):
    """Autocast's case: x in 16 bits, the parameters float32 (and their gradients float32)."""
    check(backend, (2, 4, 6, 5), "contiguous", dtype, param_dtype=torch.float32)


@pytest.mark.parametrize("backend", BACKENDS)
def test_large_eps(backend):
    check(backend, (2, 3, 4, 5), "channels_last", F64, eps=0.5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_ties_split_the_gradient_as_torch_maximum(backend, layout):
    """Where x is 0 the affine value is exactly bias; with tau = bias those elements tie, and
    torch.maximum (the reference, TUNIT's torch.max) gives each side half of the gradient."""
    x, w, b, _ = make_inputs((2, 3, 4, 5), F64)
    x[:, :, ::2] = 0.0
    t = b.clone()
    x = in_layout(x, layout)
    grad_out = torch.randn(x.shape, generator=torch.Generator().manual_seed(2), dtype=F64)
    got = backend_results(backend, x, w, b, t, grad_out)
    expected = reference_results(x, w, b, t, grad_out)
    for name, a, e in zip(NAMES, got, expected):
        assert rel_err(a, e) <= 1e-12, name
    # The tied elements alone: tau gets half their gradient (and the other elements where the
    # normalised value is below tau).
    z = w.view(1, -1, 1, 1) * reference.filter_response_norm(x, torch.ones_like(w),
                                                              torch.zeros_like(b),
                                                              torch.full_like(t, -1e300)) \
        + b.view(1, -1, 1, 1)
    below = (z < t.view(1, -1, 1, 1)).double()
    tied = (z == t.view(1, -1, 1, 1)).double()
    assert tied.sum() >= x.numel() // 2
    torch.testing.assert_close(got[4], (grad_out * (below + 0.5 * tied)).sum((0, 2, 3)),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")], ids=str)
def test_nan_and_inf_propagate_as_in_the_reference(backend, bad):
    x, w, b, t = make_inputs((2, 3, 4, 5), F64)
    x[1, 2, 1, 3] = bad
    grad_out = torch.randn(x.shape, generator=torch.Generator().manual_seed(3), dtype=F64)
    got = backend_results(backend, x, w, b, t, grad_out)
    expected = reference_results(x, w, b, t, grad_out)
    assert torch.isnan(got[0]).any()
    for name, a, e in zip(NAMES, got, expected):
        assert rel_err(a, e) <= 1e-12, name  # rel_err requires the same NaN positions


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_parameters_propagate(backend):
    x, w, b, t = make_inputs((2, 3, 4, 5), F64)
    w[0], t[1] = float("nan"), float("nan")
    grad_out = torch.randn(x.shape, generator=torch.Generator().manual_seed(4), dtype=F64)
    got = backend_results(backend, x, w, b, t, grad_out)
    expected = reference_results(x, w, b, t, grad_out)
    for name, a, e in zip(NAMES, got, expected):
        assert rel_err(a, e) <= 1e-12, name


def test_cpu_results_do_not_depend_on_the_thread_count():
    if ops.get_backend("cpu").unavailable_reason() is not None:
        pytest.skip("extension not loaded")
    results = []
    for n in (1, 2, 3):
        with threads(n):
            for layout in ("contiguous", "channels_last"):
                x, w, b, t = make_inputs((3, 70, 20, 20), torch.float32)
                x = in_layout(x, layout)
                results.append((layout, backend_results("cpu", x, w, b, t, torch.ones_like(x))))
    for layout in ("contiguous", "channels_last"):
        runs = [r for lay, r in results if lay == layout]
        for other in runs[1:]:
            for a, e in zip(other, runs[0]):
                assert torch.equal(a, e)


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 2, 1, 1)])
def test_written_out_gradient_equals_autograd(shape):
    """reference.filter_response_norm_backward (what the fused backends differentiate under
    create_graph=True) against autograd of the reference, ties included."""
    x, w, b, t = make_inputs(shape, F64)
    x[..., 0] = 0.0
    t[0] = b[0]
    grad_out = torch.randn(shape, generator=torch.Generator().manual_seed(5), dtype=F64)
    expected = reference_results(x, w, b, t, grad_out)[1:]
    got = reference.filter_response_norm_backward(grad_out, x, w, b, t, 1e-6)
    for name, a, e in zip(NAMES[1:], got, expected):
        torch.testing.assert_close(a, e, rtol=1e-12, atol=1e-12, msg=name)
