"""ops.latent_conv_transpose2d: conv_transpose2d(cat[x, z broadcast], weight, bias, stride,
padding, output_padding) without the concatenation, on every backend that can run here (cpu;
triton in the interpreter), against the reference (the concatenation materialised): values and
the gradients of x, z, weight and bias in float64 and per dtype, odd sizes, DRIT's layers (3x3
stride 2 padding 1 output_padding 1; 1x1) and other strides, paddings and output paddings,
channels-last and non-contiguous inputs, opcheck, gradcheck, torch.compile (fullgraph, dynamic),
no_grad / inference mode, bad inputs named on every entry point, and the row classes of the plan.
"""

from __future__ import annotations

import pytest
import torch

import i2i_fast.ops as ops
from helpers import TOLERANCE, channels_last, rel_err
from triton_test_devices import run_compile_check
from i2i_fast.ops import triton_support as ts
from i2i_fast.ops.latent_conv.plan import tap_reaches, transposed_axis_plan
from helpers import compiled_matches_eager
from test_latent_conv2d import (_randn, check_input_layout, check_low_precision,
                                check_weight_layout, entry_points, values_and_grads)

F64 = torch.float64
TRITON = ts.state().unavailable_reason is None
BACKENDS = ["cpu"] + (["triton"] if TRITON else [])


def make_call(n, cx, cz, out, h, w, k, seed=0, dtype=F64, bias=True):
    x = _randn(n, cx, h, w, seed=seed, dtype=dtype)
    z = _randn(n, cz, seed=seed + 1, dtype=dtype)
    weight = _randn(cx + cz, out, *((k, k) if isinstance(k, int) else k), seed=seed + 2,
                    dtype=dtype) * 0.3
    b = _randn(out, seed=seed + 3, dtype=dtype) if bias else None
    return x, z, weight, b


# (N, C_x, C_z, C_out, H, W, k, stride, padding, output_padding)
SHAPES = [
    (2, 5, 3, 4, 5, 7, 3, 2, 1, 1),       # DRIT's up1 / up2, odd H and W
    (2, 6, 8, 3, 4, 4, 1, 1, 0, 0),       # DRIT's to_image (1x1: a per-sample bias)
    (1, 3, 2, 2, 1, 1, 3, 2, 1, 1),       # a 1 x 1 input
    (2, 2, 3, 3, 6, 5, 4, 2, 1, 0),       # k4 s2 p1 (pix2pix-style upsampling)
    (2, 3, 2, 4, 5, 4, 3, 1, 1, 0),       # stride 1
    (1, 2, 3, 2, 4, 5, 5, 3, 2, 2),       # stride 3, output_padding 2
    (2, 3, 2, 3, 6, 6, 3, 2, 0, 1),       # padding 0: every border row clipped
    (2, 2, 2, 2, 5, 4, 3, 2, 3, 0),       # padding past k - 1: rows cropped off
    (2, 4, 2, 3, 5, 6, (3, 2), 2, 1, 1),  # non-square kernel
    (2, 3, 4, 5, 3, 3, 2, 4, 0, 3),       # stride past the kernel: rows no tap reaches
]


def _ids(shape):
    return "x".join(str(v) for v in shape).replace(" ", "")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", SHAPES, ids=_ids)
def test_float64_values_and_gradients(shape, backend):
    n, cx, cz, o, h, w, k, stride, padding, output_padding = shape
    call = make_call(n, cx, cz, o, h, w, k, seed=sum(shape[:6]))
    args = (stride, padding, output_padding)
    expected, expected_grads = values_and_grads(ops.reference.latent_conv_transpose2d, *call,
                                                *args)
    with ops.use_backend(backend):
        out, grads = values_and_grads(ops.latent_conv_transpose2d, *call, *args)
    assert out.shape == expected.shape and out.dtype == expected.dtype
    assert rel_err(out, expected) <= TOLERANCE[F64]
    for name, g, e in zip(("x", "z", "weight", "bias"), grads, expected_grads):
        assert g.shape == e.shape, name
        assert rel_err(g, e) <= TOLERANCE[F64], name


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", ["channels_last", "strided"])
def test_layouts(layout, backend):
    check_input_layout("latent_conv_transpose2d", make_call(2, 5, 3, 6, 5, 7, 3, seed=5),
                       (2, 1, 1), layout, backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", ["channels_last", "kernel_axes_swapped"])
def test_weight_layouts(layout, backend):
    check_weight_layout("latent_conv_transpose2d", make_call(2, 5, 3, 6, 5, 7, 3, seed=6),
                        (2, 1, 1), layout, backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_low_precision_against_the_float64_reference(dtype, backend):
    """In dtype, the fused operator is as close to the float64 truth as the reference computed
    in dtype (which rounds the concatenation and the convolution in dtype)."""
    check_low_precision("latent_conv_transpose2d", make_call(2, 6, 8, 5, 7, 6, 3, seed=11),
                        (2, 1, 1), dtype, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_z_of_another_dtype_without_bias_and_some_inputs_requiring_grad(backend):
    x, z, weight, _ = make_call(2, 3, 4, 3, 5, 5, 3, seed=8, dtype=torch.float32)
    z = z.double()
    z_leaf = z.clone().requires_grad_()
    with ops.use_backend(backend):
        out = ops.latent_conv_transpose2d(x, z_leaf, weight, None, 2, 1, 1)
        (gz,) = torch.autograd.grad(out.sum(), z_leaf)  # an expanded (stride 0) gradient
    z_ref = z.clone().requires_grad_()
    ref = ops.reference.latent_conv_transpose2d(x, z_ref, weight, None, 2, 1, 1)
    (ez,) = torch.autograd.grad(ref.sum(), z_ref)
    assert gz.dtype == torch.float64
    assert rel_err(out, ref) <= TOLERANCE[torch.float32]
    assert rel_err(gz, ez) <= TOLERANCE[torch.float32]


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_latent_channels(backend):
    call = make_call(2, 3, 0, 2, 4, 4, 3, seed=12)
    expected, expected_grads = values_and_grads(ops.reference.latent_conv_transpose2d, *call,
                                                2, 1, 1)
    with ops.use_backend(backend):
        out, grads = values_and_grads(ops.latent_conv_transpose2d, *call, 2, 1, 1)
    assert rel_err(out, expected) <= TOLERANCE[F64]
    for g, e in zip(grads, expected_grads):
        assert g.shape == e.shape and (g.numel() == 0 or rel_err(g, e) <= TOLERANCE[F64])


def test_inference_mode_and_no_grad():
    call = make_call(2, 3, 4, 3, 5, 5, 3, seed=9)
    expected = ops.reference.latent_conv_transpose2d(*call, 2, 1, 1)
    with torch.inference_mode():
        assert rel_err(ops.latent_conv_transpose2d(*call, 2, 1, 1), expected) <= TOLERANCE[F64]
    with torch.no_grad():
        leaves = [t.clone().requires_grad_() for t in call]
        out = ops.latent_conv_transpose2d(*leaves, 2, 1, 1)
    assert out.grad_fn is None and rel_err(out, expected) <= TOLERANCE[F64]


def test_gradcheck_float64():
    call = [t.requires_grad_() for t in make_call(2, 2, 3, 2, 4, 3, 3, seed=21)]
    for args in ((2, 1, 1), (1, 0, 0), (3, 2, 1)):
        assert torch.autograd.gradcheck(lambda *t: ops.latent_conv_transpose2d(*t, *args), call)


def test_double_backward_is_refused_by_name():
    call = [t.requires_grad_() for t in make_call(1, 2, 2, 2, 4, 4, 3, seed=22)]
    out = ops.latent_conv_transpose2d(*call, 2, 1, 1)
    (gx,) = torch.autograd.grad(out.sum(), call[0], create_graph=True)
    with pytest.raises(RuntimeError, match="latent_conv_transpose2d_backward"):
        gx.sum().backward()


def _opcheck_samples():
    x, z, weight, bias = make_call(2, 3, 4, 3, 5, 6, 3, seed=30, dtype=torch.float32)
    yield (x.requires_grad_(), z.requires_grad_(), weight.requires_grad_(),
           bias.requires_grad_(), 2, 1, 1)
    yield (channels_last(x.detach()), z.detach(), weight.detach(), None, 1, 0, 0)


@pytest.mark.parametrize("sample", range(2))
def test_opcheck_compiled_operators(sample):
    args = list(_opcheck_samples())[sample]
    torch.library.opcheck(torch.ops.i2i_fast.latent_conv_transpose2d.default, args)
    detached = tuple(t.detach() if isinstance(t, torch.Tensor) else t for t in args)
    torch.library.opcheck(torch.ops.i2i_fast.latent_conv_transpose2d_forward.default, detached)
    x, z, weight, _, stride, padding, output_padding = detached
    out = ops.reference.latent_conv_transpose2d(x, z, weight, None, stride, padding,
                                                output_padding)
    for mask in ([True, True, True, True], [False, True, False, True], [True, False, True, False]):
        torch.library.opcheck(torch.ops.i2i_fast.latent_conv_transpose2d_backward.default,
                              (torch.randn_like(out), x, z, weight, stride, padding,
                               output_padding, mask))


@pytest.mark.skipif(not TRITON, reason="triton is not usable here")
def test_opcheck_triton_operators():
    from i2i_fast.ops.latent_conv import triton as lc_triton

    for args in _opcheck_samples():
        torch.library.opcheck(lc_triton.transpose2d_forward_op, args)


@pytest.mark.parametrize("dynamic", [None, True], ids=["default", "dynamic"])
def test_fullgraph_compile_forward_and_backward(dynamic):
    def fn(x, z, weight, bias):
        return ops.latent_conv_transpose2d(torch.relu(x), z, weight, bias, 2, 1, 1) * 2

    compiled_matches_eager(fn, dynamic, [make_call(2, 3, 4, 3, h, w, 3, seed=40 + i,
                                                   dtype=torch.float32)
                                         for i, (h, w) in enumerate([(4, 4), (6, 5), (7, 9)])],
                           values_and_grads)


# ----- bad inputs: the same error from the public function, the compiled operator, the fake and
# the Triton operator ----------------------------------------------------------------------------

_X = torch.randn(2, 3, 4, 4)
_Z = torch.randn(2, 4)
_W = torch.randn(7, 5, 3, 3)
BAD_CALLS = [
    ((_X.long(), _Z, _W, None, 2, 1, 1), TypeError, r"x: expected a floating tensor \(float16, bfloat16, float32 or float64\), got torch.int64"),
    ((_X[0], _Z, _W, None, 2, 1, 1), ValueError, r"x: expected shape \(N, C_x, H, W\), got \(3, 4, 4\)"),
    ((_X, _Z[:1], _W, None, 2, 1, 1), ValueError, r"z: expected shape \(2, C_z\) \(one code per sample of x\), got \(1, 4\)"),
    ((_X, _Z, _W[:6], None, 2, 1, 1), ValueError, r"weight: expected shape \(7, C_out, k_h, k_w\) \(C_x 3 \+ C_z 4 input channels\), got \(6, 5, 3, 3\)"),
    ((_X, _Z, _W, torch.randn(7), 2, 1, 1), ValueError, r"bias: expected None or shape \(5,\), got \(7,\)"),
    ((_X, _Z, _W, None, 0, 1, 0), ValueError, "stride: expected an int >= 1, got 0"),
    ((_X, _Z, _W, None, 2, -1, 1), ValueError, "padding: expected an int >= 0, got -1"),
    ((_X, _Z, _W, None, 2, 1, 2), ValueError, r"output_padding: expected an int in \[0, stride 2\), got 2"),
    ((_X, _Z, _W, None, 1, 1, -1), ValueError, r"output_padding: expected an int in \[0, stride 1\), got -1"),
    ((_X, _Z, _W.double(), None, 2, 1, 1), TypeError, r"weight: expected dtype torch.float32 \(the dtype of x\), got torch.float64"),
    ((_X, _Z, _W, torch.randn(5).half(), 2, 1, 1), TypeError, r"bias: expected dtype torch.float32 \(the dtype of x\), got torch.float16"),
    ((_X[:, :, :1, :1], _Z, _W, None, 1, 2, 0), ValueError, r"padding: expected an output of at least 1 x 1 \(\(H - 1\) \* stride - 2 \* padding \+ k \+ output_padding\), got \(-1, -1\)"),
    ((_X[:0], _Z[:0], _W, None, 2, 1, 1), ValueError, r"x: expected a non-empty tensor, got shape \(0, 3, 4, 4\)"),
]


@pytest.mark.parametrize("entry", sorted(entry_points("latent_conv_transpose2d")))
@pytest.mark.parametrize("case", range(len(BAD_CALLS)))
def test_bad_inputs_are_named_on_every_entry_point(case, entry):
    args, error, message = BAD_CALLS[case]
    with pytest.raises(error, match="^latent_conv_transpose2d: " + message):
        entry_points("latent_conv_transpose2d")[entry](*args)


def test_bad_gradient_of_the_backward_operator_is_named():
    op = torch.ops.i2i_fast.latent_conv_transpose2d_backward
    with pytest.raises(ValueError, match=r"^latent_conv_transpose2d_backward: grad: expected "
                                         r"shape \(2, 5, 8, 8\) \(the output's\), got "
                                         r"\(2, 5, 7, 8\)"):
        op(torch.randn(2, 5, 7, 8), _X, _Z, _W, 2, 1, 1, [True] * 4)
    with pytest.raises(TypeError, match=r"^latent_conv_transpose2d_backward: grad: expected "
                                        r"dtype"):
        op(torch.randn(2, 5, 8, 8).double(), _X, _Z, _W, 2, 1, 1, [True] * 4)


# ----- the plan ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size,taps,stride,padding,output_padding", [
    (9, 3, 2, 1, 1), (8, 4, 2, 1, 0), (5, 5, 3, 2, 2), (1, 3, 2, 1, 1), (6, 1, 1, 0, 0),
    (5, 3, 2, 3, 0), (3, 2, 4, 0, 3), (4, 3, 1, 1, 0)])
def test_row_classes_share_their_taps_and_cover_every_row_once(size, taps, stride, padding,
                                                               output_padding):
    plan = transposed_axis_plan(size, taps, stride, padding, output_padding)
    assert plan.out == (size - 1) * stride - 2 * padding + taps + output_padding

    def taps_of(i):
        return tuple(tap_reaches(i, a, size, stride, padding, False, True) for a in range(taps))

    covered = []
    for r in range(plan.classes):
        rows = plan.rows_of(r)
        covered += rows
        assert len({taps_of(i) for i in rows}) <= 1
        assert all(plan_class == r for plan_class in (_class_of(plan, i) for i in rows))
    assert sorted(covered) == list(range(plan.out))


def _class_of(plan, i):
    if i < plan.head:
        return i
    if i >= plan.tail:
        return plan.head + plan.period + (i - plan.tail)
    return plan.head + (i - plan.head) % plan.period


@pytest.mark.slow
@pytest.mark.skipif(not TRITON, reason="triton is not usable here")
def test_every_triton_kernel_compiles_for_sm90():
    """The real Triton compiler builds every kernel variant the latent_conv operators launch
    (both operators, every dtype, both layouts), for an H100 (sm_90)."""
    lines = run_compile_check("triton_latent_conv_compile_check.py", "--arch", "90")
    summary, kernels = lines[-1], [r for r in lines if "kernel" in r]
    assert summary["failures"] == 0 and summary["compiled"] >= 8, summary
    assert {r["kernel"] for r in kernels} == {"add_table_kernel", "sum_by_class_kernel"}
