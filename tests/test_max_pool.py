"""Max pooling (ops.max_pool, the compiled block_max) against aten's F.max_pool2d, exactly: values
and gradients with ties (ReLU's zeros, repeated values) and NaNs routed to the element aten picks,
in every dtype and layout, the int32 window positions of factors above 16, the double backward
and the forward-mode tangent, opcheck and gradcheck of the compiled operators, torch.compile, and
the nn block (tests/test_resampling.py has the family's common tests, with max_pool cases)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import i2i_fast.nn as inn
import i2i_fast.ops as ops
from helpers import in_layout

lib = torch.ops.i2i_fast
DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)
LAYOUTS = ("contiguous", "channels_last", "strided")
# (factor, shape): TUNIT's factor 2, generic factors with remainders, the int32 index (f > 16).
SHAPES = [(2, (2, 3, 8, 6)), (2, (2, 5, 7, 9)), (3, (1, 4, 10, 8)), (1, (1, 2, 3, 3)),
          (17, (1, 3, 35, 18))]


def _tied(shape, dtype, seed=0):
    """Values with many ties: ReLU of small integers (mostly zeros and ones), a few larger."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-3, 3, shape, generator=g).clamp_min(0).to(dtype)


def _grad_out(shape, dtype, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)


def _both(x, factor, grad_out, backend=None):
    """(values, gradient) of ops.max_pool (the cpu backend) and of aten."""
    xf = x.detach().clone().requires_grad_()
    assert ops.chosen_backend("max_pool", xf) == "cpu"
    y = ops.max_pool(xf, factor)
    (g,) = torch.autograd.grad(y, xf, grad_out)
    xa = x.detach().clone().requires_grad_()
    ya = F.max_pool2d(xa, factor, factor)
    (ga,) = torch.autograd.grad(ya, xa, grad_out)
    return (y, g), (ya, ga)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", SHAPES, ids=lambda c: f"f{c[0]}-{'x'.join(map(str, c[1]))}")
def test_ties_route_the_gradient_as_aten(case, dtype, layout):
    factor, shape = case
    x = in_layout(_tied(shape, dtype), layout)
    out_shape = (*shape[:2], shape[2] // factor, shape[3] // factor)
    grad_out = in_layout(_grad_out(out_shape, dtype), layout)
    (y, g), (ya, ga) = _both(x, factor, grad_out)
    assert y.dtype == dtype and g.dtype == dtype and g.shape == x.shape
    assert torch.equal(y, ya)
    assert torch.equal(g, ga)


@pytest.mark.parametrize("layout", ("contiguous", "channels_last"))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_nan_and_infinities_route_as_aten(dtype, layout):
    """A NaN wins over every number, and aten moves on to each later NaN of the window (the last
    NaN gets the gradient); -inf everywhere routes to the first element."""
    nan, inf = float("nan"), float("inf")
    windows = [
        [nan, 1.0, nan, 2.0], [1.0, nan, nan, 2.0], [nan, nan, nan, nan], [3.0, inf, inf, nan],
        [-inf, -inf, -inf, -inf], [inf, 1.0, inf, 2.0], [0.0, -0.0, 0.0, -0.0],
        [nan, 5.0, 1.0, 1.0],
    ]
    x = torch.tensor(windows, dtype=torch.float64).view(1, len(windows), 2, 2)
    x = x.repeat(2, 1, 2, 3).to(dtype)  # 4 x 6 images: 6 windows each
    x = in_layout(x, layout)
    grad_out = in_layout(_grad_out((2, len(windows), 2, 3), dtype), layout)
    (y, g), (ya, ga) = _both(x, 2, grad_out)
    assert torch.equal(y.isnan(), ya.isnan())
    assert torch.equal(y.nan_to_num(), ya.nan_to_num())
    assert torch.equal(g, ga)


def test_block_max_forward_saves_one_byte_per_output():
    """The backward's memory: the window position as uint8 for factor <= 16 (int32 above), in the
    output's layout; aten's max_pool2d saves an int64 index per output."""
    for x in (torch.randn(2, 3, 8, 8), in_layout(torch.randn(2, 3, 8, 8), "channels_last")):
        out, index = lib.block_max_forward(x, 2)
        assert index.dtype == torch.uint8 and index.shape == out.shape == (2, 3, 4, 4)
        assert index.stride() == out.stride()
        assert int(index.max()) <= 3
    out, index = lib.block_max_forward(torch.randn(1, 2, 34, 40), 17)
    assert index.dtype == torch.int32 and out.shape == (1, 2, 2, 2)
    assert int(index.max()) <= 17 * 17 - 1


@pytest.mark.parametrize("layouts", [("channels_last", "contiguous"),
                                     ("contiguous", "channels_last"),
                                     ("strided", "strided"), ("contiguous", "expanded")])
def test_gradient_in_another_layout_than_the_input(layouts):
    """The backward's upstream gradient may come in any layout (an expanded one from .sum())."""
    x_layout, g_layout = layouts
    x = in_layout(_tied((2, 4, 7, 6), torch.float32), x_layout)
    if g_layout == "expanded":
        grad_out = torch.ones(1, 1, 1, 1).expand(2, 4, 3, 3)
    else:
        grad_out = in_layout(_grad_out((2, 4, 3, 3), torch.float32), g_layout)
    (y, g), (ya, ga) = _both(x, 2, grad_out)
    assert torch.equal(y, ya) and torch.equal(g, ga)


@pytest.mark.parametrize("layout", ("contiguous", "channels_last"))
def test_double_backward_routes_the_incoming_gradient_as_aten(layout):
    """The backward is linear in its incoming gradient: differentiating it routes a gradient of
    the input's shape back to the outputs (the gather), as aten's does; the second derivative
    with respect to x is zero (unused here, zeros in aten)."""
    x = in_layout(_tied((2, 3, 7, 8), torch.float64), layout)
    results = []
    for pool in (ops.max_pool, lambda t, f: F.max_pool2d(t, f, f)):
        xr = x.clone().requires_grad_()
        grad_out = _grad_out((2, 3, 3, 4), torch.float64).requires_grad_()
        (g,) = torch.autograd.grad(pool(xr, 2), xr, grad_out, create_graph=True)
        weight = _grad_out(x.shape, torch.float64, seed=5)
        gg, gx = torch.autograd.grad((g * weight).sum(), (grad_out, xr), allow_unused=True)
        results.append((g, gg, torch.zeros_like(x) if gx is None else gx))
    for got, expected in zip(*results):
        assert torch.equal(got, expected)


@pytest.mark.parametrize("layout", ("contiguous", "channels_last"))
@pytest.mark.parametrize("factor", (2, 3))
def test_forward_mode_tangent_at_the_winner(factor, layout):
    """The tangent is x's tangent at aten's winner (ties included), through torch.func.jvp and
    torch.autograd.forward_ad, never zero."""
    x = in_layout(_tied((2, 3, 7, 8), torch.float64), layout)
    t = in_layout(_grad_out(x.shape, torch.float64, seed=3), layout)
    expected = torch.func.jvp(lambda z: F.max_pool2d(z, factor, factor), (x,), (t,))
    got = torch.func.jvp(lambda z: ops.max_pool(z, factor), (x,), (t,))
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    assert got[1].abs().sum() > 0
    import torch.autograd.forward_ad as fwAD

    with fwAD.dual_level():
        dual = fwAD.make_dual(x.clone().requires_grad_(), t)
        out = ops.max_pool(dual, factor)
        primal, tangent = fwAD.unpack_dual(out)
        assert torch.equal(tangent, expected[1]) and torch.equal(primal, expected[0])
        (g,) = torch.autograd.grad(primal.sum(), dual)  # the reverse graph is kept too
    assert g.sum() == primal.numel()


def _route_samples():
    samples = []
    for factor, shape in ((2, (2, 3, 6, 5)), (3, (1, 2, 7, 9)), (17, (1, 2, 18, 35))):
        for layout in ("contiguous", "channels_last"):
            x = in_layout(torch.randn(shape, dtype=torch.float64), layout)
            _, index = lib.block_max_forward(x, factor)
            pooled = in_layout(torch.randn(index.shape, dtype=torch.float64), layout)
            samples += [
                (lib.block_max.default, (x, factor)),
                (lib.block_max_forward.default, (x, factor)),
                (lib.block_max_scatter.default, (pooled, index, factor, shape[2], shape[3])),
                (lib.block_max_gather.default, (x, index, factor, *index.shape[2:])),
            ]
    return samples


@pytest.mark.parametrize("sample", range(len(_route_samples())))
def test_opcheck(sample):
    """The differentiable operators with an input that requires grad (their autograd checked
    too); block_max_forward, not differentiable, without."""
    op, args = _route_samples()[sample]
    args = (args[0].clone().requires_grad_(op is not lib.block_max_forward.default), *args[1:])
    torch.library.opcheck(op, args)


@pytest.mark.parametrize("sample", range(len(_route_samples())))
def test_gradcheck_of_the_compiled_operators(sample):
    """float64 without ties (randn): first and second derivatives; block_max_forward is not
    differentiable (its outputs are reached through block_max)."""
    op, args = _route_samples()[sample]
    if op is lib.block_max_forward.default:
        x = args[0].clone().requires_grad_()
        with pytest.raises(RuntimeError, match="block_max_forward"):
            op(x, *args[1:])[0].sum().backward()
        return
    fn = lambda t: op(t, *args[1:])  # noqa: E731
    x = args[0].clone().requires_grad_()
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


@pytest.mark.parametrize("dynamic", [None, True], ids=["default", "dynamic"])
def test_compile_fullgraph_calls_block_max_and_matches_eager(dynamic):
    seen = []

    def backend(gm, example_inputs):
        seen.extend(str(n.target) for n in gm.graph.nodes if n.op == "call_function")
        return gm.forward

    def f(x):
        return ops.max_pool(torch.relu(x), 2) * 2

    torch._dynamo.reset()
    torch.compile(f, fullgraph=True, backend=backend, dynamic=dynamic)(torch.randn(2, 3, 6, 6))
    assert "i2i_fast.block_max" in seen, seen
    torch._dynamo.reset()
    compiled = torch.compile(f, fullgraph=True, dynamic=dynamic)
    for shape in ((2, 3, 6, 6), (2, 3, 9, 10), (1, 4, 8, 5)):
        for layout in ("contiguous", "channels_last"):
            x = in_layout(torch.randn(shape), layout).requires_grad_()
            out = compiled(x)
            (grad,) = torch.autograd.grad(out.square().sum(), x)
            xe = x.detach().clone().requires_grad_()
            eager = f(xe)
            (grad_eager,) = torch.autograd.grad(eager.square().sum(), xe)
            assert torch.equal(out, eager) and torch.equal(grad, grad_eager)
    torch._dynamo.reset()


def test_nn_block_is_a_drop_in_for_maxpool2d():
    reference = torch.nn.MaxPool2d(2, 2)
    for block in (inn.MaxPool(2, 2), inn.MaxPool(2), inn.MaxPool((2, 2), stride=(2, 2))):
        assert block.factor == 2
        assert list(block.state_dict()) == [] and list(block.parameters()) == []
        x = _tied((2, 4, 9, 8), torch.float32).requires_grad_()
        xr = x.detach().clone().requires_grad_()
        y, yr = block(x), reference(xr)
        assert torch.equal(y, yr)
        y.backward(torch.ones_like(y))
        yr.backward(torch.ones_like(yr))
        assert torch.equal(x.grad, xr.grad)
    assert repr(inn.MaxPool(2)) == "MaxPool(kernel_size=2, stride=2)"
    # in a Sequential, a guiding network's state dict keys are those of nn.MaxPool2d's
    a = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.MaxPool2d(2, 2))
    b = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), inn.MaxPool(2, 2))
    assert list(a.state_dict()) == list(b.state_dict())


@pytest.mark.parametrize("kwargs, message", [
    ({"kernel_size": 2, "stride": 1}, r"MaxPool: stride: expected the kernel size \(2\) or None, "
                                      r"got 1"),
    ({"kernel_size": (2, 3)}, r"MaxPool: kernel_size: expected an integer >= 1 or a pair of equal "
                              r"ones, got \(2, 3\)"),
    ({"kernel_size": 0}, r"MaxPool: kernel_size: expected an integer >= 1"),
    ({"kernel_size": 2, "padding": 1}, r"MaxPool: padding: expected 0 \(not supported "
                                       r"otherwise\), got 1"),
    ({"kernel_size": 2, "dilation": 2}, r"MaxPool: dilation: expected 1"),
    ({"kernel_size": 2, "ceil_mode": True}, r"MaxPool: ceil_mode: expected False"),
    ({"kernel_size": 2, "return_indices": True}, r"MaxPool: return_indices: expected False"),
])
def test_nn_block_refuses_what_it_does_not_compute(kwargs, message):
    with pytest.raises(ValueError, match=message):
        inn.MaxPool(**kwargs)


def test_reference_backend_is_aten():
    x = _tied((1, 2, 6, 6), torch.float32)
    with ops.use_backend("reference"):
        assert torch.equal(ops.max_pool(x, 2), F.max_pool2d(x, 2, 2))
