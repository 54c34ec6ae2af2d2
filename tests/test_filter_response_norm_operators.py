"""filter_response_norm as a torch operator: opcheck, gradcheck and gradgradcheck on every backend
(TUNIT's R1 penalty differentiates through the discriminator twice), torch.compile with and
without dynamic shapes, autocast, no_grad and inference mode."""

from __future__ import annotations

import pytest
import torch

import i2i_fast.ops as ops
from helpers import channels_last, rel_err
from i2i_fast.ops import triton_support

F64 = torch.float64
COMPILED = ops.get_backend("cpu").unavailable_reason() is None
needs_extension = pytest.mark.skipif(not COMPILED, reason="extension not loaded")
BACKENDS = [
    "reference",
    pytest.param("cpu", marks=needs_extension),
    pytest.param("triton", marks=pytest.mark.skipif(
        triton_support.state().unavailable_reason is not None,
        reason=triton_support.state().describe())),
]


def inputs(shape=(2, 3, 4, 5), dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    c = shape[1]
    x = torch.randn(shape, generator=g, dtype=F64).to(dtype)
    w = (torch.rand(c, generator=g, dtype=F64) + 0.5).to(dtype)
    b = torch.randn(c, generator=g, dtype=F64).to(dtype) * 0.5
    t = torch.randn(c, generator=g, dtype=F64).to(dtype) * 0.3
    return x, w, b, t


@needs_extension
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_opcheck(layout):
    lib = torch.ops.i2i_fast
    x, w, b, t = inputs()
    if layout == "channels_last":
        x = channels_last(x)
    torch.library.opcheck(lib.filter_response_norm.default,
                          tuple(a.clone().requires_grad_() for a in (x, w, b, t)) + (1e-6,))
    torch.library.opcheck(lib.filter_response_norm_forward.default, (x, w, b, t, 1e-6))
    _, rstd = lib.filter_response_norm_forward(x, w, b, t, 1e-6)
    torch.library.opcheck(lib.filter_response_norm_backward.default,
                          (torch.randn_like(x), x, w, b, t, rstd, 1e-6))
    torch.library.opcheck(lib.filter_response_norm_double_backward.default,
                          (torch.randn_like(x), torch.randn_like(x), x, w, b, t, rstd, 1e-6))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_gradcheck_and_gradgradcheck(backend, layout):
    x, w, b, t = inputs((2, 3, 3, 4), F64)
    if layout == "channels_last":
        x = channels_last(x)
    leaves = tuple(v.detach().clone().requires_grad_() for v in (x, w, b, t))

    def fn(*args):
        with ops.use_backend(backend):
            return ops.filter_response_norm(*args)

    assert torch.autograd.gradcheck(fn, leaves)
    assert torch.autograd.gradgradcheck(fn, leaves)


@pytest.mark.parametrize("backend", BACKENDS)
def test_r1_style_double_backward_equals_the_reference(backend):
    """The R1 penalty's pattern: the input gradient with create_graph=True, its squared norm
    differentiated again, to x and to every parameter."""
    x, w, b, t = inputs((2, 3, 5, 4), F64, seed=3)

    def penalty_grads(which):
        leaves = [v.detach().clone().requires_grad_() for v in (x, w, b, t)]
        with ops.use_backend(which):
            y = ops.filter_response_norm(*leaves)
        (gx,) = torch.autograd.grad((y * y.detach().cos()).sum(), leaves[0], create_graph=True)
        # grad_x depends on the bias only through which side of the max wins: no gradient.
        return torch.autograd.grad(gx.square().sum(), leaves, allow_unused=True,
                                   materialize_grads=True)

    for got, expected in zip(penalty_grads(backend), penalty_grads("reference")):
        assert rel_err(got, expected) < 1e-10


@needs_extension
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype, tolerance", [(F64, 1e-10), (torch.float32, 1e-5),
                                              (torch.bfloat16, 3e-2)])
def test_the_fused_double_backward_matches_the_reference(layout, dtype, tolerance):
    """The R1 pattern on the compiled backend (the fused backward, then the fused double
    backward) against float64 autograd of the reference, per layout and dtype, on a shape with
    whole and partial channels-last column blocks (C = 70) and ties of z with tau."""
    x, w, b, t = inputs((3, 70, 5, 3), F64, seed=7)
    t[::5] = b[::5]  # z = tau where x = 0
    x[:, ::5, 1, 1] = 0.0
    grad_out = torch.randn(x.shape, generator=torch.Generator().manual_seed(8), dtype=F64)

    def penalty_grads(which, cast):
        leaves = [cast(v).detach().clone().requires_grad_() for v in (x, w, b, t)]
        with ops.use_backend(which):
            y = ops.filter_response_norm(*leaves)
        (gx,) = torch.autograd.grad(y, leaves[0], cast(grad_out), create_graph=True)
        return torch.autograd.grad((gx.float() * gx.detach().float().sin()).sum(), leaves,
                                   allow_unused=True, materialize_grads=True)

    def cast(v):
        v = v.to(dtype if v.dim() == 4 else (F64 if dtype == F64 else torch.float32))
        return channels_last(v) if layout == "channels_last" and v.dim() == 4 else v

    expected = penalty_grads("reference", lambda v: v.double())
    for got, want in zip(penalty_grads("cpu", cast), expected):
        assert rel_err(got, want) < tolerance


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_input_gradient_is_differentiable_twice_more(backend):
    """The gradient built with create_graph=True (the fused backends: the fused backward operator
    with its closed-form gradient) checked by gradcheck and gradgradcheck: the second and third
    derivatives, to x, weight, bias and tau."""
    x, w, b, t = inputs((2, 3, 3, 4), F64, seed=5)
    leaves = tuple(v.detach().clone().requires_grad_() for v in (x, w, b, t))
    grad_out = torch.randn(x.shape, generator=torch.Generator().manual_seed(6), dtype=F64)

    def input_gradient(*args):
        with ops.use_backend(backend):
            y = ops.filter_response_norm(*args)
        (gx,) = torch.autograd.grad(y, args[0], grad_out, create_graph=True)
        return gx

    assert torch.autograd.gradcheck(input_gradient, leaves)
    assert torch.autograd.gradgradcheck(input_gradient, leaves)


@needs_extension
def test_the_backward_operator_itself_is_not_differentiable_and_says_so():
    lib = torch.ops.i2i_fast
    x, w, b, t = (v.requires_grad_() for v in inputs(dtype=F64))
    _, rstd = lib.filter_response_norm_forward(x, w, b, t, 1e-6)
    gx = lib.filter_response_norm_backward(torch.ones_like(x), x, w, b, t, rstd, 1e-6)[0]
    with pytest.raises(RuntimeError, match="filter_response_norm_backward"):
        gx.sum().backward()


class FrnStack(torch.nn.Module):
    """conv → FRN → conv → FRN, TUNIT's pattern, through i2i_fast.ops."""

    def __init__(self, c=6):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, c, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(c, c, 3, padding=1)
        self.params = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.rand(c) + 0.5), torch.nn.Parameter(torch.randn(c) * 0.1),
             torch.nn.Parameter(torch.randn(c) * 0.1)])

    def forward(self, x):
        w, b, t = self.params
        h = ops.filter_response_norm(self.conv1(x), w, b, t)
        return ops.filter_response_norm(self.conv2(h), w, b, t, 1e-5)


@pytest.mark.parametrize("dynamic", [None, True], ids=["default", "dynamic"])
def test_compile_fullgraph_matches_eager_with_gradients(dynamic):
    torch.manual_seed(0)
    model = FrnStack()
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, dynamic=dynamic)
    for shape in [(2, 3, 8, 8), (2, 3, 10, 6)]:
        x = torch.randn(shape)
        eager = model(x)
        eager_grads = torch.autograd.grad(eager.square().sum(), list(model.parameters()))
        out = compiled(x)
        grads = torch.autograd.grad(out.square().sum(), list(model.parameters()))
        assert rel_err(out, eager) < 1e-5
        for g, e in zip(grads, eager_grads):
            assert rel_err(g, e) < 1e-4
    torch._dynamo.reset()


@needs_extension
def test_compiled_graphs_call_the_fused_operators():
    """No graph break; the forward graph calls the operator and AOTAutograd's backward graph its
    backward operator (not a decomposition)."""
    seen = []

    def backend(gm, example_inputs):
        seen.extend(str(node.target) for node in gm.graph.nodes if node.op == "call_function")
        return gm.forward

    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    def boxed(gm, example_inputs):
        backend(gm, example_inputs)
        return make_boxed_func(gm.forward)

    torch._dynamo.reset()
    model = FrnStack()
    out = torch.compile(model, fullgraph=True,
                        backend=aot_autograd(fw_compiler=boxed, bw_compiler=boxed))(
        torch.randn(1, 3, 8, 8))
    out.sum().backward()
    torch._dynamo.reset()
    assert any("i2i_fast.filter_response_norm_forward" in s for s in seen), seen
    assert any("i2i_fast.filter_response_norm_backward" in s for s in seen), seen


@needs_extension
def test_autocast_bfloat16():
    torch.manual_seed(0)
    model = FrnStack()
    x = torch.randn(2, 3, 12, 12)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
        with ops.use_backend("reference"):
            ref = model(x)
    assert out.dtype == torch.bfloat16
    assert rel_err(out, ref) < 3e-2
    grads = torch.autograd.grad(out.float().sum(), list(model.parameters()))
    assert all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("mode", ["no_grad", "inference_mode"])
def test_without_autograd(mode):
    x, w, b, t = inputs()
    context = torch.no_grad() if mode == "no_grad" else torch.inference_mode()
    with context:
        y = ops.filter_response_norm(x, w, b, t)
    assert rel_err(y, ops.reference.filter_response_norm(x, w, b, t)) < 1e-5


def test_only_requested_gradients_flow():
    x, w, b, t = inputs()
    x.requires_grad_()
    (gx,) = torch.autograd.grad(ops.filter_response_norm(x, w, b, t).sum(), x)
    assert gx.shape == x.shape and w.grad is None and t.grad is None
