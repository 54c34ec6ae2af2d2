"""ops.latent_conv2d: conv2d(pad(cat[x, z broadcast]), weight, bias, stride) without the
concatenation, on every backend that can run here (cpu; triton in the interpreter), against the
reference (the concatenation materialised): values and the gradients of x, z, weight and bias in
float64 and per dtype, odd sizes, strides 1 and 2, paddings 0..k/2 (and beyond) with zeros and
reflect, channels-last and non-contiguous inputs, opcheck, gradcheck, torch.compile (fullgraph,
dynamic), no_grad / inference mode, bad inputs named on every entry point.
"""

from __future__ import annotations

import pytest
import torch

import i2i_fast.ops as ops
from helpers import TOLERANCE, channels_last, compiled_matches_eager, rel_err, strided_view
from i2i_fast.ops import triton_support as ts
from i2i_fast.ops.latent_conv import checks as lc_checks
from i2i_fast.ops.latent_conv import fake as lc_fake
from i2i_fast.ops.latent_conv.plan import axis_plan, concatenates

F64 = torch.float64
TRITON = ts.state().unavailable_reason is None
BACKENDS = ["cpu"] + (["triton"] if TRITON else [])


def _randn(*shape, seed, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=F64).to(dtype)


def make_call(n, cx, cz, out, h, w, k, seed=0, dtype=F64, bias=True):
    x = _randn(n, cx, h, w, seed=seed, dtype=dtype)
    z = _randn(n, cz, seed=seed + 1, dtype=dtype)
    weight = _randn(out, cx + cz, *((k, k) if isinstance(k, int) else k), seed=seed + 2,
                    dtype=dtype) * 0.3
    b = _randn(out, seed=seed + 3, dtype=dtype) if bias else None
    return x, z, weight, b


def values_and_grads(fn, x, z, weight, bias, *args, grad_layout=None):
    leaves = [t.detach().clone().requires_grad_() if t is not None else None
              for t in (x, z, weight, bias)]
    out = fn(*leaves, *args)
    upstream = _randn(*out.shape, seed=99, dtype=out.dtype)
    if grad_layout is not None:
        upstream = grad_layout(upstream)
    grads = torch.autograd.grad(out, [t for t in leaves if t is not None], upstream)
    return out, grads


# (N, C_x, C_z, C_out, H, W, k, stride, padding): odd sizes, both strides, paddings 0..k/2 and
# past it, a kernel as large as the padded input, a 1x1 kernel.
SHAPES = [
    (2, 3, 8, 5, 9, 7, 4, 2, 1),     # BicycleGAN's k4 s2 p1, odd H and W
    (2, 5, 3, 4, 8, 8, 4, 2, 1),
    (1, 2, 3, 3, 7, 6, 3, 1, 1),
    (3, 2, 2, 4, 6, 9, 3, 2, 0),
    (2, 3, 4, 2, 5, 5, 5, 1, 2),
    (2, 1, 3, 3, 4, 3, 3, 2, 3),     # padding past k/2 (zeros only): rows with few taps
    (2, 4, 2, 3, 5, 7, (3, 2), 1, 1),  # non-square kernel
    (1, 2, 2, 2, 2, 2, 4, 1, 1),     # kernel as large as the padded input
    (2, 3, 4, 5, 6, 5, 1, 1, 0),
    (2, 16, 8, 12, 2, 3, 4, 2, 1),   # weight larger than the concatenation: convolves that
]


def _ids(shape):
    return "x".join(str(v) for v in shape).replace(" ", "")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("padding_mode", ["zeros", "reflect"])
@pytest.mark.parametrize("shape", SHAPES, ids=_ids)
def test_float64_values_and_gradients(shape, padding_mode, backend):
    n, cx, cz, o, h, w, k, stride, padding = shape
    if padding_mode == "reflect" and padding >= min(h, w):
        pytest.skip("reflect padding needs padding < H, W")
    call = make_call(n, cx, cz, o, h, w, k, seed=sum(shape[:6]))
    args = (stride, padding, padding_mode)
    expected, expected_grads = values_and_grads(ops.reference.latent_conv2d, *call, *args)
    with ops.use_backend(backend):
        out, grads = values_and_grads(ops.latent_conv2d, *call, *args)
    assert out.shape == expected.shape and out.dtype == expected.dtype
    assert rel_err(out, expected) <= TOLERANCE[F64]
    for name, g, e in zip(("x", "z", "weight", "bias"), grads, expected_grads):
        assert g.shape == e.shape, name
        assert rel_err(g, e) <= TOLERANCE[F64], name


def matches_reference(name: str, call, arranged, args, backend: str, grad_layout=None):
    """ops.<name> on `arranged` (the inputs of `call` in other layouts) under `backend` gives the
    values and gradients of the reference on `call`, to float64 tolerance; returns the output."""
    expected, expected_grads = values_and_grads(getattr(ops.reference, name), *call, *args)
    with ops.use_backend(backend):
        out, grads = values_and_grads(getattr(ops, name), *arranged, *args,
                                      grad_layout=grad_layout)
    assert rel_err(out, expected) <= TOLERANCE[F64]
    for g, e in zip(grads, expected_grads):
        assert g.shape == e.shape
        assert g.numel() == 0 or rel_err(g, e) <= TOLERANCE[F64]  # z may have no channels
    return out


def check_input_layout(name: str, call, args, layout: str, backend: str) -> None:
    """ops.<name> with x (and the upstream gradient) channels-last or strided and z
    non-contiguous; a channels-last x gives a channels-last output, as PyTorch's convolutions."""
    to_layout = channels_last if layout == "channels_last" else strided_view
    x, z, *rest = call
    arranged = [to_layout(x), z.t().contiguous().t(), *rest]  # z non-contiguous too
    out = matches_reference(name, call, arranged, args, backend, grad_layout=to_layout)
    if layout == "channels_last":
        assert out.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", ["channels_last", "strided"])
def test_layouts(layout, backend):
    check_input_layout("latent_conv2d", make_call(2, 5, 3, 6, 9, 7, 4, seed=5), (2, 1, "zeros"),
                       layout, backend)


def check_weight_layout(name: str, call, args, layout: str, backend: str) -> None:
    """ops.<name> with a weight that is not contiguous (channels-last, as in a model moved to
    channels-last, or its kernel axes swapped in memory) against the reference with a contiguous
    one: the CPU kernels read the weight's z channels by its strides."""
    arranged = list(call)
    arranged[2] = (channels_last(call[2]) if layout == "channels_last"
                   else call[2].transpose(2, 3).contiguous().transpose(2, 3))
    assert not arranged[2].is_contiguous()  # dense: values_and_grads' clone keeps the layout
    matches_reference(name, call, arranged, args, backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", ["channels_last", "kernel_axes_swapped"])
def test_weight_layouts(layout, backend):
    check_weight_layout("latent_conv2d", make_call(2, 5, 3, 6, 9, 7, 4, seed=6), (2, 1, "zeros"),
                        layout, backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_low_precision_against_the_float64_reference(dtype, backend):
    """In dtype, the fused operator is as close to the float64 truth as the reference computed
    in dtype (which rounds the concatenation and the convolution in dtype)."""
    check_low_precision("latent_conv2d", make_call(2, 6, 8, 5, 9, 8, 4, seed=11), (2, 1, "zeros"),
                        dtype, backend)


def check_low_precision(op, call, args, dtype, backend):
    """ops.<op> on `call` cast to dtype, through `backend`: values and every gradient in dtype,
    within twice the error of the reference computed in dtype (or twice the dtype's tolerance)
    of the float64 reference."""
    truth, truth_grads = values_and_grads(getattr(ops.reference, op), *call, *args)
    low = [t.to(dtype) for t in call]
    ref, ref_grads = values_and_grads(getattr(ops.reference, op), *low, *args)
    with ops.use_backend(backend):
        out, grads = values_and_grads(getattr(ops, op), *low, *args)
    assert out.dtype == dtype and all(g.dtype == dtype for g in grads)
    slack = 2 * TOLERANCE[dtype]
    assert rel_err(out, truth) <= max(slack, 2 * rel_err(ref, truth))
    for g, r, t in zip(grads, ref_grads, truth_grads):
        assert rel_err(g, t) <= max(slack, 2 * rel_err(r, t))


@pytest.mark.parametrize("backend", BACKENDS)
def test_z_of_another_dtype_is_cast_as_the_reference_does(backend):
    x, z, weight, bias = make_call(2, 3, 4, 2, 6, 6, 3, seed=3, dtype=torch.float32)
    z = z.double()
    with ops.use_backend(backend):
        out, grads = values_and_grads(ops.latent_conv2d, x, z, weight, bias, 1, 1, "zeros")
    expected, expected_grads = values_and_grads(ops.reference.latent_conv2d, x, z, weight, bias,
                                                1, 1, "zeros")
    assert rel_err(out, expected) <= TOLERANCE[torch.float32]
    assert grads[1].dtype == torch.float64
    for g, e in zip(grads, expected_grads):
        assert rel_err(g, e) <= TOLERANCE[torch.float32]


@pytest.mark.parametrize("backend", BACKENDS)
def test_without_bias_and_only_some_inputs_requiring_grad(backend):
    x, z, weight, _ = make_call(2, 3, 4, 3, 7, 7, 4, seed=8)
    z_leaf = z.clone().requires_grad_()
    with ops.use_backend(backend):
        out = ops.latent_conv2d(x, z_leaf, weight, None, 2, 1, "zeros")
        (gz,) = torch.autograd.grad(out.sum(), z_leaf)  # an expanded (stride 0) gradient
    z_ref = z.clone().requires_grad_()
    ref = ops.reference.latent_conv2d(x, z_ref, weight, None, 2, 1, "zeros")
    (ez,) = torch.autograd.grad(ref.sum(), z_ref)
    assert rel_err(out, ref) <= TOLERANCE[F64] and rel_err(gz, ez) <= TOLERANCE[F64]


def test_inference_mode_and_no_grad():
    call = make_call(2, 3, 4, 3, 7, 7, 4, seed=9)
    expected = ops.reference.latent_conv2d(*call, 2, 1, "zeros")
    with torch.inference_mode():
        assert rel_err(ops.latent_conv2d(*call, 2, 1, "zeros"), expected) <= TOLERANCE[F64]
    with torch.no_grad():
        leaves = [t.clone().requires_grad_() for t in call]
        out = ops.latent_conv2d(*leaves, 2, 1, "zeros")
    assert out.grad_fn is None and rel_err(out, expected) <= TOLERANCE[F64]


def test_gradcheck_float64():
    call = [t.requires_grad_() for t in make_call(2, 2, 3, 2, 5, 6, 4, seed=21)]
    for args in ((2, 1, "zeros"), (1, 1, "reflect"), (2, 2, "zeros")):
        assert torch.autograd.gradcheck(lambda *t: ops.latent_conv2d(*t, *args), call)


def test_double_backward_is_refused_by_name():
    call = [t.requires_grad_() for t in make_call(1, 2, 2, 2, 4, 4, 3, seed=22)]
    out = ops.latent_conv2d(*call, 1, 1, "zeros")
    (gx,) = torch.autograd.grad(out.sum(), call[0], create_graph=True)
    with pytest.raises(RuntimeError, match="latent_conv2d_backward"):
        gx.sum().backward()


def _opcheck_samples():
    x, z, weight, bias = make_call(2, 3, 4, 3, 7, 6, 4, seed=30, dtype=torch.float32)
    w = weight.requires_grad_()
    yield (x.requires_grad_(), z.requires_grad_(), w, bias.requires_grad_(), 2, 1, "zeros")
    yield (channels_last(x.detach()), z.detach(), weight.detach(), None, 1, 1, "reflect")
    # the deep-level path (plan.concatenates): the convolution of the concatenation
    x, z, weight, bias = make_call(2, 16, 4, 8, 2, 3, 4, seed=31, dtype=torch.float32)
    assert concatenates(x, z, weight)
    yield (channels_last(x).requires_grad_(), z.requires_grad_(), weight.requires_grad_(),
           bias.requires_grad_(), 2, 1, "zeros")
    yield (x, z, weight, None, 1, 1, "reflect")


@pytest.mark.parametrize("sample", range(4))
def test_opcheck_compiled_operators(sample):
    args = list(_opcheck_samples())[sample]
    torch.library.opcheck(torch.ops.i2i_fast.latent_conv2d.default, args)
    torch.library.opcheck(torch.ops.i2i_fast.latent_conv2d_forward.default,
                          tuple(t.detach() if isinstance(t, torch.Tensor) else t for t in args))
    x, z, weight, _, stride, padding, mode = args
    out = ops.reference.latent_conv2d(x.detach(), z.detach(), weight.detach(), None, stride,
                                      padding, mode)
    for mask in ([True, True, True, True], [False, True, False, True], [True, False, True, False]):
        torch.library.opcheck(torch.ops.i2i_fast.latent_conv2d_backward.default,
                              (torch.randn_like(out), x.detach(), z.detach(), weight.detach(),
                               stride, padding, mode, mask))


@pytest.mark.skipif(not TRITON, reason="triton is not usable here")
def test_opcheck_triton_operators():
    from i2i_fast.ops.latent_conv import triton as lc_triton

    x, z, weight, bias, stride, padding, mode = next(_opcheck_samples())
    torch.library.opcheck(lc_triton.conv2d_forward_op, (x, z, weight, bias, stride, padding, mode))


@pytest.mark.parametrize("dynamic", [None, True], ids=["default", "dynamic"])
def test_fullgraph_compile_forward_and_backward(dynamic):
    def fn(x, z, weight, bias):
        return ops.latent_conv2d(torch.relu(x), z, weight, bias, 2, 1, "zeros") * 2

    compiled_matches_eager(fn, dynamic, [make_call(2, 3, 4, 3, h, w, 4, seed=40 + i,
                                                   dtype=torch.float32)
                                         for i, (h, w) in enumerate([(8, 8), (10, 7), (12, 9)])],
                           values_and_grads)


# ----- bad inputs: the same error from the public function, the compiled operator, the fake and
# the Triton operator ----------------------------------------------------------------------------

_X = torch.randn(2, 3, 6, 6)
_Z = torch.randn(2, 4)
_W = torch.randn(5, 7, 4, 4)
BAD_CALLS = [
    ((_X.long(), _Z, _W, None, 1, 1, "zeros"), TypeError, r"x: expected a floating tensor \(float16, bfloat16, float32 or float64\), got torch.int64"),
    ((_X[0], _Z, _W, None, 1, 1, "zeros"), ValueError, r"x: expected shape \(N, C_x, H, W\), got \(3, 6, 6\)"),
    ((_X, _Z[:1], _W, None, 1, 1, "zeros"), ValueError, r"z: expected shape \(2, C_z\) \(one code per sample of x\), got \(1, 4\)"),
    ((_X, _Z, _W[:, :6], None, 1, 1, "zeros"), ValueError, r"weight: expected shape \(C_out, 7, k_h, k_w\) \(C_x 3 \+ C_z 4 input channels\), got \(5, 6, 4, 4\)"),
    ((_X, _Z, _W, torch.randn(4), 1, 1, "zeros"), ValueError, r"bias: expected None or shape \(5,\), got \(4,\)"),
    ((_X, _Z, _W, None, 0, 1, "zeros"), ValueError, "stride: expected an int >= 1, got 0"),
    ((_X, _Z, _W, None, 1, -1, "zeros"), ValueError, "padding: expected an int >= 0, got -1"),
    ((_X, _Z, _W, None, 1, 1, "circular"), ValueError, "padding_mode: expected one of 'zeros', 'reflect', got 'circular'"),
    ((_X, _Z, _W, None, 1, 6, "reflect"), ValueError, r"padding: reflect padding needs padding < H and < W, got padding 6 for x of shape \(2, 3, 6, 6\)"),
    ((_X, _Z, _W.double(), None, 1, 1, "zeros"), TypeError, r"weight: expected dtype torch.float32 \(the dtype of x\), got torch.float64"),
    ((_X, _Z, _W, torch.randn(5).half(), 1, 1, "zeros"), TypeError, r"bias: expected dtype torch.float32 \(the dtype of x\), got torch.float16"),
    ((_X[:, :, :2, :2], _Z, _W, None, 1, 0, "zeros"), ValueError, r"weight: expected a kernel no larger than the padded input \(2, 2\), got \(4, 4\)"),
    ((_X[:, :, :0], _Z, _W, None, 1, 2, "zeros"), ValueError, r"x: expected a non-empty tensor, got shape \(2, 3, 0, 6\)"),
]


def entry_points(op: str) -> dict:
    """Every way to call `op` (latent_conv2d or latent_conv_transpose2d) that checks its
    arguments."""
    entries = {"public": getattr(ops, op),
               "compiled operator": getattr(torch.ops.i2i_fast, op),
               "compiled forward operator": getattr(torch.ops.i2i_fast, f"{op}_forward"),
               "fake": getattr(lc_fake, f"{op}_forward"),
               "checks": getattr(lc_checks, op)}
    if TRITON:
        from i2i_fast.ops.latent_conv import triton  # noqa: F401 - registers the operators

        entries["triton operator"] = getattr(torch.ops.i2i_fast_triton, f"{op}_forward")
    return entries


@pytest.mark.parametrize("entry", sorted(entry_points("latent_conv2d")))
@pytest.mark.parametrize("case", range(len(BAD_CALLS)))
def test_bad_inputs_are_named_on_every_entry_point(case, entry):
    args, error, message = BAD_CALLS[case]
    with pytest.raises(error, match="^latent_conv2d: " + message):
        entry_points("latent_conv2d")[entry](*args)


def test_bad_gradient_of_the_backward_operator_is_named():
    x, z, w = _X, _Z, _W
    with pytest.raises(ValueError, match=r"^latent_conv2d_backward: grad: expected shape "
                                         r"\(2, 5, 5, 5\) \(the output's\), got \(2, 5, 4, 5\)"):
        torch.ops.i2i_fast.latent_conv2d_backward(torch.randn(2, 5, 4, 5), x, z, w, 1, 1,
                                                  "zeros", [True] * 4)
    with pytest.raises(TypeError, match=r"^latent_conv2d_backward: grad: expected dtype"):
        torch.ops.i2i_fast.latent_conv2d_backward(torch.randn(2, 5, 5, 5).double(), x, z, w, 1,
                                                  1, "zeros", [True] * 4)


# ----- the plan ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size,taps,stride,padding", [(9, 4, 2, 1), (8, 4, 2, 1), (5, 5, 1, 2),
                                                      (3, 3, 2, 3), (2, 4, 1, 1), (6, 1, 1, 0)])
def test_row_classes_share_their_valid_taps(size, taps, stride, padding):
    """Every row of a class has the same valid taps (what the z term relies on), and rows of
    different border classes are listed once each."""
    plan = axis_plan(size, taps, stride, padding, reflect=False)
    assert plan.out == (size + 2 * padding - taps) // stride + 1

    def taps_of(i):
        return tuple(0 <= i * stride - padding + a < size for a in range(taps))

    covered = []
    for r in range(plan.classes):
        rows = plan.rows_of(r)
        assert rows.step == 1  # a conv2d's classes are runs of rows
        covered += rows
        assert len({taps_of(i) for i in rows}) <= 1
    assert covered == list(range(plan.out))


@pytest.mark.parametrize("backend", ["reference", *BACKENDS])
@pytest.mark.parametrize("transposed", [False, True], ids=["conv2d", "transpose2d"])
@pytest.mark.parametrize("x_dtype", [torch.float32, torch.bfloat16])
def test_under_autocast_runs_in_the_lower_precision_as_the_conv_it_replaces(backend, transposed,
                                                                            x_dtype):
    """Under CPU autocast (bfloat16) the operators cast their float32 arguments as autocast casts
    those of the Conv2d / ConvTranspose2d over the concatenation, whether x comes in float32 or
    already in bfloat16 (the output of an earlier autocast layer); the gradients reach the
    float32 parameters. (Before the cast, a bfloat16 x with float32 parameters was refused.)"""
    g = torch.Generator().manual_seed(3)
    if transposed:
        layer = torch.nn.ConvTranspose2d(6 + 3, 5, 3, stride=2, padding=1, output_padding=1)
        fn, args = ops.latent_conv_transpose2d, (2, 1, 1)
        plain = torch.nn.functional.conv_transpose2d
    else:
        layer = torch.nn.Conv2d(6 + 3, 5, 3, padding=1)
        fn, args = ops.latent_conv2d, (1, 1, "zeros")
        plain = torch.nn.functional.conv2d
    x = torch.randn(2, 6, 9, 8, generator=g).to(x_dtype)
    z = torch.randn(2, 3, generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cat = torch.cat([x.float(), z[:, :, None, None].expand(2, 3, 9, 8)], 1)
        expected = plain(cat, layer.weight, layer.bias, *args[:2],
                         *((args[2],) if transposed else ()))
        with ops.use_backend(backend):
            out = fn(x, z, layer.weight, layer.bias, *args)
    assert out.dtype == expected.dtype == torch.bfloat16
    assert rel_err(out.float(), expected.float()) <= TOLERANCE[torch.bfloat16]
    out.float().sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.dtype == torch.float32
    assert layer.bias.grad.dtype == torch.float32
