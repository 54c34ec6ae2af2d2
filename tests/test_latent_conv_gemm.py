"""The latent-convolution operators' matrix-product path (csrc/latent_conv/gemm_convolution.h).

On the CPU, in float32 and float64, a convolution with at least 16384 weights per column of the
product (output positions x batch; input positions x batch for a transposed conv) runs as one
matrix product over the batch instead of ATen's convolution: the innermost levels of BicycleGAN's
U-Net, a plain transposed conv (no latent channels) at 1x1 to 4x4. The shapes of the other test
files are too small for it; these are large enough. Checked: values and the gradients of x, z,
weight and bias against the reference in float64 and float32, with and without latent channels
and bias, zero and reflect padding, output padding, odd sizes, a non-square kernel, channels-last
and strided inputs, a non-contiguous weight, and that the path is taken where the rule says (and
not elsewhere).
"""

from __future__ import annotations

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

import i2i_fast.ops as ops
import test_latent_conv2d as conv2d_tests
import test_latent_conv_transpose2d as transpose_tests
from helpers import TOLERANCE, rel_err

F64, F32 = torch.float64, torch.float32
WEIGHT_PER_COLUMN = 16384  # kWeightPerColumn in gemm_convolution.h

# (N, C_x, C_z, C_out, H, W, k, stride, padding, padding_mode): weight >= 16K x columns.
CONV2D = [
    (2, 60, 4, 64, 2, 2, 4, 2, 1, "zeros"),     # BicycleGAN's innermost level (concatenated)
    (2, 128, 0, 64, 2, 2, 4, 2, 1, "zeros"),    # no latent channels: x alone is convolved
    (1, 256, 8, 64, 2, 2, 3, 1, 1, "reflect"),  # reflect padding, stride 1
    (1, 512, 4, 32, 3, 2, (3, 2), 2, 1, "zeros"),  # odd H, non-square kernel
]
# (N, C_x, C_z, C_out, H, W, k, stride, padding, output_padding)
TRANSPOSE2D = [
    (2, 128, 8, 64, 1, 1, 4, 2, 1, 0),   # the U-Net's innermost up conv, with a latent
    (2, 248, 8, 64, 2, 2, 4, 2, 1, 0),   # 2x2 (a 1x1 input has no distinct channels-last layout)
    (2, 256, 0, 64, 2, 2, 4, 2, 1, 0),   # no latent channels (BicycleGAN's up path)
    (1, 512, 0, 32, 2, 3, 3, 2, 1, 1),   # odd W, output padding
    (1, 300, 6, 32, 3, 1, (2, 3), 3, 0, 2),  # stride 3, non-square kernel
]


def _columns(transposed: bool, shape) -> int:
    n, cx, cz, o, h, w, k, stride, padding = shape[:9]
    if transposed:
        return n * h * w
    kh, kw = (k, k) if isinstance(k, int) else k
    return n * ((h + 2 * padding - kh) // stride + 1) * ((w + 2 * padding - kw) // stride + 1)


def _case(transposed: bool, shape, dtype=F64, bias=True):
    n, cx, cz, o, h, w, k = shape[:7]
    tests = transpose_tests if transposed else conv2d_tests
    call = tests.make_call(n, cx, cz, o, h, w, k, seed=sum(shape[:6]), dtype=dtype, bias=bias)
    call = (call[0], call[1], call[2] / (cx + cz) ** 0.5, call[3])  # unit-scale outputs
    name = "latent_conv_transpose2d" if transposed else "latent_conv2d"
    return name, call, tuple(shape[7:])


CASES = [(False, s) for s in CONV2D] + [(True, s) for s in TRANSPOSE2D]
IDS = [("t" if t else "c") + "x".join(map(str, s)).replace(" ", "") for t, s in CASES]


@pytest.mark.parametrize("transposed,shape", CASES, ids=IDS)
def test_cases_are_on_the_matrix_product_path(transposed, shape):
    weight = shape[3] * (shape[1] + shape[2]) * (shape[6] ** 2 if isinstance(shape[6], int)
                                                 else shape[6][0] * shape[6][1])
    assert weight >= WEIGHT_PER_COLUMN * _columns(transposed, shape)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("transposed,shape", CASES, ids=IDS)
def test_float64_values_and_gradients(transposed, shape, bias):
    name, call, args = _case(transposed, shape, bias=bias)
    conv2d_tests.matches_reference(name, call, call, args, "cpu")


@pytest.mark.parametrize("transposed,shape", CASES, ids=IDS)
def test_float32_against_the_float64_reference(transposed, shape):
    name, call, args = _case(transposed, shape)
    expected, expected_grads = conv2d_tests.values_and_grads(getattr(ops.reference, name), *call,
                                                             *args)
    with ops.use_backend("cpu"):
        out, grads = conv2d_tests.values_and_grads(
            getattr(ops, name), *(t.to(F32) for t in call), *args)
    assert out.dtype == F32
    assert rel_err(out.double(), expected) <= TOLERANCE[F32]
    for label, g, e in zip(("x", "z", "weight", "bias"), grads, expected_grads):
        assert g.shape == e.shape, label
        assert g.numel() == 0 or rel_err(g.double(), e) <= TOLERANCE[F32], label


@pytest.mark.parametrize("layout", ["channels_last", "strided"])
@pytest.mark.parametrize("transposed", [False, True], ids=["conv2d", "transpose2d"])
def test_input_layouts(transposed, layout):
    name, call, args = _case(transposed, (TRANSPOSE2D[1] if transposed else CONV2D[0]))
    conv2d_tests.check_input_layout(name, call, args, layout, "cpu")


@pytest.mark.parametrize("layout", ["channels_last", "kernel_axes_swapped"])
@pytest.mark.parametrize("transposed", [False, True], ids=["conv2d", "transpose2d"])
def test_weight_layouts(transposed, layout):
    name, call, args = _case(transposed, (TRANSPOSE2D if transposed else CONV2D)[1])
    conv2d_tests.check_weight_layout(name, call, args, layout, "cpu")


def _aten_ops_of_one_call(name, call, args, dtype=F64) -> set[str]:
    leaves = [t.to(dtype).requires_grad_() if t is not None else None for t in call]
    with ops.use_backend("cpu"), profile(activities=[ProfilerActivity.CPU]) as prof:
        getattr(ops, name)(*leaves, *args).sum().backward()
    return {event.key for event in prof.key_averages()}


@pytest.mark.parametrize("transposed", [False, True], ids=["conv2d", "transpose2d"])
def test_the_path_is_taken_where_the_rule_says(transposed):
    shapes = TRANSPOSE2D if transposed else CONV2D
    name, call, args = _case(transposed, shapes[0])
    on_path = _aten_ops_of_one_call(name, call, args)
    assert "aten::mm" in on_path and "aten::im2col" in on_path
    assert not {"aten::convolution", "aten::convolution_backward"} & on_path
    # Half-precision stays on ATen's convolution (the matrix products are float32/float64 only).
    assert "aten::convolution" in _aten_ops_of_one_call(name, call, args, torch.bfloat16)
    # Past the rule (the batch 64 times larger: 64 x the columns), ATen's convolution again.
    many = tuple(t.repeat(64, *[1] * (t.dim() - 1)) if i < 2 else t
                 for i, t in enumerate(call))
    assert "aten::convolution" in _aten_ops_of_one_call(name, many, args)


def _layout(t: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return t.contiguous(memory_format=torch.channels_last) if channels_last else t.contiguous()


@pytest.mark.parametrize("weight_cl", [False, True], ids=["w", "w_cl"])
@pytest.mark.parametrize("x_cl", [False, True], ids=["x", "x_cl"])
@pytest.mark.parametrize("transposed", [False, True], ids=["conv2d", "transpose2d"])
def test_output_and_input_gradient_strides_are_the_fakes(transposed, x_cl, weight_cl):
    """The fakes (what torch.compile plans with) give ATen's layout: channels-last when x or
    the weight is; the matrix-product path must write the same strides."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    name, call, args = _case(transposed, (TRANSPOSE2D[1] if transposed else CONV2D[1]))
    x, z, weight, bias = call
    x, weight = _layout(x, x_cl), _layout(weight, weight_cl)
    forward = getattr(torch.ops.i2i_fast, f"{name}_forward")
    backward = getattr(torch.ops.i2i_fast, f"{name}_backward")
    out = forward(x, z, weight, bias, *args)
    grad = torch.ones_like(out)
    grads = backward(grad, x, z, weight, *args, [True, True, True, True])
    with FakeTensorMode() as mode:
        fake = [mode.from_tensor(t) for t in (x, z, weight, bias, grad)]
        fake_out = forward(*fake[:4], *args)
        fake_grads = backward(fake[4], *fake[:3], *args, [True, True, True, True])
    assert out.stride() == fake_out.stride()
    for label, g, f in zip(("x", "z", "weight", "bias"), grads, fake_grads):
        assert g.shape == f.shape and g.stride() == f.stride(), label
