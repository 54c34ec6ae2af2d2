"""Fused normalization backends against the float64 reference: values and every gradient."""

from __future__ import annotations

import pytest
import torch

import i2i_fast.ops as ops
from helpers import (
    EXACT_CONSTANTS,
    NORM_OPS,
    TOLERANCE,
    channels_last,
    check_against_reference,
    fused_with_grads,
    in_layout,
    make_args,
    reference_with_grads,
    rel_err,
    with_constant_groups,
)

SHAPES = [
    (1, 1, 1, 1),  # a single element: statistics of one value
    (1, 3, 5, 7),  # N = 1
    (4, 1, 6, 6),  # C = 1
    (3, 4, 1, 1),  # 1x1 spatial
    (2, 3, 3, 5),  # 3x5 spatial
    (2, 3, 127, 129),  # odd, large spatial (splits each row across threads)
    (4, 300, 4, 4),  # large N*C, tiny spatial
    (1, 2, 200, 190),  # fewer groups than threads
    (2, 5, 17),  # (N, C, L)
    (2, 3, 4, 5, 6),  # (N, C, D, H, W)
]
ACTIVATIONS = [None, "relu", "leaky_relu"]


def _check(op, shape, layout, dtype, activation, param_dtype=None):
    x, w, b = make_args(op, shape, dtype, param_dtype)
    x = in_layout(x, layout)
    grad_out = torch.randn(shape, generator=torch.Generator().manual_seed(1),
                           dtype=torch.float64).to(dtype)
    y, gx, gw, gb, xr = fused_with_grads(op, x, w, b, activation, grad_out, layout)
    ry, rgx, rgw, rgb = reference_with_grads(op, x, w, b, activation, grad_out)
    tol = TOLERANCE[dtype]
    for name, actual, expected in (("out", y, ry), ("grad_x", gx, rgx), ("grad_weight", gw, rgw),
                                   ("grad_bias", gb, rgb)):
        err = rel_err(actual, expected)
        assert err <= tol, f"{op} {shape} {layout} {dtype} {activation}: {name} error {err:.2e}"
    assert y.dtype == dtype and gx.dtype == dtype
    assert gw.dtype == w.dtype and gw.shape == w.shape
    assert gb.dtype == b.dtype and gb.shape == b.shape
    # The output keeps x's memory format (contiguous or channels-last; others go contiguous).
    if layout == "channels_last" and not x.is_contiguous():
        assert y.stride() == xr.stride()
        assert gx.stride() == xr.stride()
    else:
        assert y.is_contiguous()
    return y


@pytest.mark.parametrize("op", NORM_OPS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
def test_float64_all_shapes_and_layouts(op, shape, layout):
    if op == "layer_norm/munit" and shape == (1, 1, 1, 1):
        pytest.skip("unbiased std of one value is NaN: covered by test_single_value_munit_is_nan")
    _check(op, shape, layout, torch.float64, "leaky_relu")


@pytest.mark.parametrize("op", NORM_OPS)
@pytest.mark.parametrize("shape", [(2, 3, 127, 129), (4, 300, 4, 4), (1, 2, 200, 190),
                                   (2, 5, 17), (2, 3, 4, 5, 6)], ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=str)
def test_float32(op, shape, layout, activation):
    _check(op, shape, layout, torch.float32, activation)


@pytest.mark.parametrize("op", NORM_OPS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("param_dtype", ["same", "float32"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_low_precision(op, dtype, param_dtype, layout):
    pdt = dtype if param_dtype == "same" else torch.float32
    _check(op, (2, 6, 37, 41), layout, dtype, "relu", pdt)


@pytest.mark.parametrize("op", NORM_OPS)
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=str)
def test_float64_activations(op, activation):
    _check(op, (3, 4, 9, 11), "contiguous", torch.float64, activation)


def test_large_spatial_stays_accurate_in_float32():
    """A 1024x1024 plane with a large offset: float32 statistics must not drift."""
    x = torch.randn(1, 1, 1024, 1024, dtype=torch.float64) + 1000.0
    w, b = torch.ones(1, 1, dtype=torch.float64), torch.zeros(1, 1, dtype=torch.float64)
    expected = ops.reference.adain(x, w, b)
    actual = ops.adain(x.float(), w.float(), b.float())
    # The inputs themselves round at ~6e-5 (1000 * 2^-24); the normalised output may not
    # amplify that beyond a few times, whatever the accumulation length.
    assert rel_err(actual, expected) < 1e-3


# Outputs of 16 MiB and more are written with streaming stores (csrc/common/cpu_streaming.h); odd
# sizes put the rows and planes at every alignment, so each stretch has unaligned ends.
STREAMED_SHAPES = [(1, 5, 1023, 821), (2, 3, 1001, 701)]


@pytest.mark.parametrize("op", NORM_OPS)
@pytest.mark.parametrize("shape", STREAMED_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_streamed_outputs(op, shape, layout):
    numel = 1
    for size in shape:
        numel *= size
    assert numel * 4 >= 16 << 20  # float32: above the streaming threshold
    # No activation: among millions of values some fall within rounding of its kink, where the
    # float32 and float64 runs take different branches.
    _check(op, shape, layout, torch.float32, None)


def test_streamed_outputs_low_precision():
    """bfloat16 (2-byte elements, 16 MiB from 8 Mi elements) through the streamed path."""
    _check("instance_norm", (2, 5, 1023, 821), "channels_last", torch.bfloat16, None)


@pytest.mark.parametrize("channels", [16, 64, 256, 300])
def test_channels_last_blocks_stay_accurate_in_float32(channels):
    """Channels-last instance statistics over many row blocks (blocks of up to 1024 rows and
    128 KiB, several column blocks past 256 channels) with a large offset: as accurate as the
    contiguous layout's."""
    x = torch.randn(2, channels, 64, 40, dtype=torch.float64) * 3.0 + 1000.0
    w = torch.rand(2, channels, dtype=torch.float64) + 0.5
    b = torch.randn(2, channels, dtype=torch.float64)
    expected = ops.reference.adain(x, w, b)
    actual = ops.adain(channels_last(x.float()), w.float(), b.float())
    assert actual.is_contiguous(memory_format=torch.channels_last)
    assert rel_err(actual, expected) < 1e-3
    assert rel_err(actual, ops.adain(x.float(), w.float(), b.float())) < 1e-4


def test_single_value_munit_is_nan():
    """MUNIT's LN uses the unbiased std: for one value it is NaN, as torch.std (reference)."""
    x = torch.randn(1, 1, 1, 1)
    y = ops.layer_norm(x, style="munit")
    y_ref = ops.reference.layer_norm(x, style="munit")
    assert torch.isnan(y).all() and torch.isnan(y_ref).all()


@pytest.mark.parametrize("op", NORM_OPS)
@pytest.mark.parametrize("value", EXACT_CONSTANTS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_constant_groups(op, value, dtype, layout):
    """Constant samples and channels: finite values and gradients, equal to the reference (whose
    std backward takes the gradient through a zero std as 0). MUNIT's LayerNorm backward was
    0/0 = NaN there (issue 23)."""
    for shape in ((2, 3, 4, 4), (3, 4, 37, 41)):
        x, w, b = make_args(op, shape, dtype)
        x = with_constant_groups(in_layout(x, layout), value)
        grad_out = torch.randn(shape, generator=torch.Generator().manual_seed(2),
                               dtype=torch.float64).to(dtype)
        check_against_reference(op, x, w, b, "leaky_relu", grad_out, TOLERANCE[dtype])


@pytest.mark.parametrize("fill", [0.0, 0.1])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_munit_layer_norm_of_a_constant_tensor_backpropagates(fill, dtype):
    """The reproduction of issue 23: a constant x through MUNIT's LayerNorm, .sum().backward().
    0.1 is not a sum-exact constant: the CPU kernels' statistics still find its exact mean (the
    forward's M2 once came out negative for it: a NaN std)."""
    x = torch.full((2, 3, 4, 4), fill, dtype=dtype, requires_grad=True)
    w = torch.rand(3, dtype=dtype, generator=torch.Generator().manual_seed(0)) + 0.5
    b = torch.randn(3, dtype=dtype, generator=torch.Generator().manual_seed(1))
    y = ops.layer_norm(x, w, b, style="munit")
    y.sum().backward()
    x64 = x.detach().double().requires_grad_()
    y64 = ops.reference.layer_norm(x64, w.double(), b.double(), style="munit")
    y64.sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(x.grad).all()
    assert rel_err(y, y64) <= TOLERANCE[dtype]
    assert rel_err(x.grad, x64.grad) <= TOLERANCE[dtype]


@pytest.mark.parametrize("spread", [1e-3, 1e-9, 1e-13, 1e-15])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_munit_layer_norm_of_a_tiny_spread(spread, dtype):
    """Samples whose std is far below eps: the backward rebuilds the std from rstd, whose
    rounding leaves nothing (or a sign) of it below ~6e-8 eps; the gradient through the std is
    then negligible and the result still matches the reference (it was inf at 1e-13)."""
    shape = (2, 3, 5, 6)
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(shape, generator=g, dtype=torch.float64) * spread).to(dtype)
    w = (torch.rand(3, generator=g, dtype=torch.float64) + 0.5).to(dtype)
    b = torch.randn(3, generator=g, dtype=torch.float64).to(dtype)
    grad_out = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    check_against_reference("layer_norm/munit", x, w, b, None, grad_out, TOLERANCE[dtype])


def test_instance_norm_without_affine_and_partial_affine():
    x = torch.randn(2, 3, 8, 9, dtype=torch.float64, requires_grad=True)
    w = torch.rand(3, dtype=torch.float64, requires_grad=True)
    for weight, bias in ((None, None), (w, None), (None, w)):
        y = ops.instance_norm(x, weight, bias, activation="relu")
        y_ref = ops.reference.instance_norm(x, weight, bias, activation="relu")
        assert rel_err(y, y_ref) < 1e-10
        grads = torch.autograd.grad(y.sum(), [t for t in (x, weight, bias) if t is not None])
        grads_ref = torch.autograd.grad(y_ref.sum(),
                                        [t for t in (x, weight, bias) if t is not None])
        for a, e in zip(grads, grads_ref):
            assert rel_err(a, e) < 1e-10


def test_strided_helper_gives_a_non_dense_view():
    from i2i_fast.ops.normalization.fake import is_channels_last_dense

    v = in_layout(torch.randn(2, 3, 4, 5), "strided")
    assert not v.is_contiguous() and not is_channels_last_dense(v)


def test_channels_last_helper_preserves_values():
    x = torch.randn(2, 3, 4, 5)
    y = channels_last(x)
    assert torch.equal(x, y) and y.is_contiguous(memory_format=torch.channels_last)


def test_results_are_deterministic():
    x, w, b = make_args("adain", (1, 2, 300, 300), torch.float32)
    gy = torch.randn(1, 2, 300, 300)
    first = fused_with_grads("adain", x, w, b, "relu", gy, "channels_last")[:4]
    for _ in range(3):
        again = fused_with_grads("adain", x, w, b, "relu", gy, "channels_last")[:4]
        for a, e in zip(again, first):
            assert torch.equal(a, e)
