"""ops.output_conv2d: activation(conv2d(pad(x), weight) + bias), stride 1, a generator's output
layer, on the compiled CPU kernel against the reference computed in float64 from the same inputs:
values and the gradients of x, weight and bias in float64 and per dtype, widths around the
kernel's vector passes (64 floats), kernel sizes 1 to 7 (odd, even, non-square), paddings 0..k/2
(and beyond with zeros), few and more output channels, one and many input channels, every
padding_mode x activation x bias kind, channels-last and non-contiguous inputs, gradcheck and
forward-mode AD, thread-count independence, opcheck, torch.compile (fullgraph, dynamic), the
refused double backward, autocast, bad inputs named on every entry point.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import i2i_fast.ops as ops
from helpers import TOLERANCE, channels_last, compiled_matches_eager, rel_err, strided_view, threads
from i2i_fast.ops.output_conv import checks as oc_checks
from i2i_fast.ops.output_conv import fake as oc_fake

F64 = torch.float64
BIAS_KINDS = (None, "channel", "sample")

# Low precision against the float64 truth from the same (rounded) inputs, on rel_err's scale:
# (values, gradients) per dtype. Measured worst over the configurations of
# test_low_precision_against_the_float64_reference: float32 1.4e-6 and 7.7e-7; float16 4.3e-4 and
# 5.9e-4; bfloat16 3.3e-3 (one rounding) and 2.6e-2, the per-sample bias gradient of DRIT-like
# 1x1 conv through a saturated tanh: a sum of 1040 products g (1 - y^2) whose y is the output
# rounded to bfloat16 (as autograd saves it for torch.tanh too), each off by about 1.5e-3, about
# 0.05 in all on a sum of 2.2 (the bfloat16 reference is off by 1.2e-2 on the same draw).
LOW_PRECISION_TOLERANCE = {torch.float32: (1e-5, 1e-5), torch.float16: (1.5e-3, 1.5e-3),
                           torch.bfloat16: (8e-3, 4e-2)}


def _randn(*shape, seed, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=F64).to(dtype)


def make_call(n, c, o, h, w, k, bias="channel", seed=0, dtype=F64):
    """x (n, c, h, w), weight (o, c, k_h, k_w) scaled to keep the outputs near 1 (tanh not all
    saturated), bias None, (o,) or (n, o)."""
    kh, kw = (k, k) if isinstance(k, int) else k
    x = _randn(n, c, h, w, seed=seed, dtype=dtype)
    weight = (_randn(o, c, kh, kw, seed=seed + 1) * (c * kh * kw) ** -0.5).to(dtype)
    b = {None: None, "channel": (o,), "sample": (n, o)}[bias]
    return x, weight, None if b is None else _randn(*b, seed=seed + 2, dtype=dtype)


def values_and_grads(fn, x, weight, bias, *args, upstream_seed=99, grad_layout=None):
    """fn(x, weight, bias, *args) and the gradients of its (non-None) tensors along a fixed
    upstream gradient (in the output's dtype, the same values for every dtype of the inputs that
    round to it)."""
    leaves = [t.detach().clone().requires_grad_() if t is not None else None
              for t in (x, weight, bias)]
    out = fn(*leaves, *args)
    upstream = _randn(*out.shape, seed=upstream_seed, dtype=out.dtype)
    if grad_layout is not None:
        upstream = grad_layout(upstream)
    grads = torch.autograd.grad(out, [t for t in leaves if t is not None], upstream)
    return out, grads


def check_float64(call, padding, padding_mode, activation):
    args = (padding, padding_mode, activation)
    expected, expected_grads = values_and_grads(ops.reference.output_conv2d, *call, *args)
    with ops.use_backend("cpu"):
        out, grads = values_and_grads(ops.output_conv2d, *call, *args)
    assert out.shape == expected.shape and out.dtype == expected.dtype
    assert rel_err(out, expected) <= TOLERANCE[F64]
    assert len(grads) == len(expected_grads)
    for name, g, e in zip(("x", "weight", "bias"), grads, expected_grads):
        assert g.shape == e.shape and g.dtype == e.dtype, name
        assert rel_err(g, e) <= TOLERANCE[F64], name


# (N, C_in, C_out, H, W, k, padding): widths around the vector passes of 64 floats (1, 15, 16,
# 17, 63, 64, 65, 130), kernels 1, 3, 4, 5, 7 and (3, 5), C_out 1..5, 8, 9 (above 4 the outputs
# go in blocks), C_in 1 and 20 (grad x runs blocks of 8 input channels), padding past k/2.
SHAPES = [
    (2, 3, 3, 7, 1, 1, 0),
    (2, 3, 2, 5, 1, 3, 1),        # W = 1: reflect cannot pad it
    (1, 2, 1, 5, 15, 3, 1),
    (2, 1, 2, 4, 16, 5, 2),       # one input channel
    (1, 3, 4, 3, 17, 7, 3),
    (1, 2, 3, 5, 63, 7, 3),
    (1, 2, 5, 3, 64, 3, 1),
    (1, 20, 3, 3, 65, 3, 1),      # 20 input channels: blocks of 8, 8 and 4 in grad x
    (1, 2, 8, 3, 130, 5, 2),
    (2, 20, 9, 5, 17, 3, 0),
    (2, 3, 3, 6, 9, (3, 5), 2),   # non-square kernel
    (2, 3, 3, 7, 8, 4, 1),        # even kernel
    (2, 3, 4, 7, 8, 4, 2),
    (2, 2, 3, 4, 5, 3, 4),        # padding past k/2 (zeros only): rows with few taps
    (2, 4, 3, 2, 2, 1, 3),        # a 1x1 kernel on padding only, around a 2x2 input
    (1, 2, 2, 3, 3, 7, 2),        # the kernel as large as the padded input
    (2, 3, 3, 6, 7, 5, 0),
    (1, 2, 3, 4, 4, 7, 3),        # reflect padding H - 1: every border row and column folds
    (2, 3, 2, 1, 20, 3, 1),       # one row
]


def _ids(shape):
    return "x".join(str(v) for v in shape).replace(" ", "")


@pytest.mark.parametrize("activation", ["none", "tanh"])
@pytest.mark.parametrize("padding_mode", ["zeros", "reflect"])
@pytest.mark.parametrize("shape", SHAPES, ids=_ids)
def test_float64_values_and_gradients(shape, padding_mode, activation):
    n, c, o, h, w, k, padding = shape
    if padding_mode == "reflect" and padding >= min(h, w):
        pytest.skip("reflect padding needs padding < H, W")
    bias = BIAS_KINDS[SHAPES.index(shape) % 3]
    check_float64(make_call(n, c, o, h, w, k, bias, seed=sum(shape[:5])), padding, padding_mode,
                  activation)


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect"])
@pytest.mark.parametrize("k, padding", [(k, p) for k in (1, 3, 5, 7) for p in range(k // 2 + 1)])
def test_every_padding_up_to_half_the_kernel(k, padding, padding_mode):
    check_float64(make_call(2, 3, 3, 8, 19, k, "channel", seed=10 * k + padding), padding,
                  padding_mode, "tanh")


@pytest.mark.parametrize("bias", BIAS_KINDS, ids=str)
@pytest.mark.parametrize("activation", ["none", "tanh"])
@pytest.mark.parametrize("padding_mode", ["zeros", "reflect"])
@pytest.mark.parametrize("out_channels", [3, 5])
def test_every_option(out_channels, padding_mode, activation, bias):
    check_float64(make_call(3, 4, out_channels, 6, 11, 3, bias, seed=out_channels), 1,
                  padding_mode, activation)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("config", [
    ((2, 8, 3, 9, 70, 7), 3, "reflect", "tanh", "channel"),   # MUNIT's output layer, smaller
    ((2, 20, 5, 5, 17, 3), 1, "zeros", "none", "sample"),
    ((1, 3, 1, 8, 130, 1), 0, "zeros", "tanh", "sample"),     # DRIT's 1x1, saturating tanh
    ((2, 3, 9, 7, 65, (3, 5)), 2, "zeros", "tanh", "sample"),
    ((3, 20, 4, 6, 33, 4), 2, "reflect", "none", None),
], ids=lambda c: f"{_ids(c[0])}-{c[2]}-{c[3]}-{c[4]}")
def test_low_precision_against_the_float64_reference(config, dtype):
    """In dtype (accumulated in float32) against the float64 reference of the same rounded
    inputs and upstream gradient; and the gradients, to one rounding, against the float64
    backward of the operator's own output (tanh's derivative 1 - y^2 of the y it returns)."""
    shape, padding, padding_mode, activation, bias = config
    call = make_call(*shape, bias, seed=1, dtype=dtype)
    args = (padding, padding_mode, activation)
    wide = [t.double() if t is not None else None for t in call]
    truth, truth_grads = values_and_grads(ops.reference.output_conv2d, *wide, *args)
    with ops.use_backend("cpu"):
        out, grads = values_and_grads(ops.output_conv2d, *call, *args)
    assert out.dtype == dtype and all(g.dtype == dtype for g in grads)
    value_tolerance, grad_tolerance = LOW_PRECISION_TOLERANCE[dtype]
    assert rel_err(out, truth) <= value_tolerance
    for name, g, t in zip(("x", "weight", "bias"), grads, truth_grads):
        assert rel_err(g, t) <= grad_tolerance, name
    upstream = _randn(*out.shape, seed=99, dtype=dtype).double()
    if activation == "tanh":
        upstream = upstream * (1 - out.double() ** 2)
    leaves = [t.requires_grad_() for t in wide if t is not None]
    linear = ops.reference.output_conv2d(*wide, padding, padding_mode, "none")
    for name, g, t in zip(("x", "weight", "bias"), grads,
                          torch.autograd.grad(linear, leaves, upstream)):
        assert rel_err(g, t) <= value_tolerance, name


# ----- layouts ---------------------------------------------------------------------------------


def _transposed_view(x):
    """Same values, a (N, C, W, H) tensor's transpose: W is the slow spatial axis."""
    return x.transpose(2, 3).contiguous().transpose(2, 3)


LAYOUTS = {"channels_last": channels_last, "strided": strided_view, "transposed": _transposed_view}


@pytest.mark.parametrize("grad_layout", ["contiguous", "channels_last", "strided"])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("padding_mode", ["zeros", "reflect"])
def test_layouts(padding_mode, layout, grad_layout):
    """Any layout of x and of the upstream gradient; the output in x's suggested memory format,
    as F.conv2d gives it."""
    x, weight, bias = make_call(2, 5, 3, 7, 19, 3, "sample", seed=5)
    args = (1, padding_mode, "tanh")
    expected, expected_grads = values_and_grads(ops.reference.output_conv2d, x, weight, bias,
                                                *args)
    x = LAYOUTS[layout](x)
    to_grad = None if grad_layout == "contiguous" else LAYOUTS[grad_layout]
    with ops.use_backend("cpu"):
        out, grads = values_and_grads(ops.output_conv2d, x, weight, bias, *args,
                                      grad_layout=to_grad)
    assert out.stride() == F.conv2d(x, weight, padding=1).stride()
    if layout == "channels_last":
        assert out.is_contiguous(memory_format=torch.channels_last)
    assert rel_err(out, expected) <= TOLERANCE[F64]
    for g, e in zip(grads, expected_grads):
        assert rel_err(g, e) <= TOLERANCE[F64]


@pytest.mark.parametrize("activation", ["none", "tanh"])
@pytest.mark.parametrize("k", [1, 3])
def test_a_transposed_weight_as_drit_passes_it(k, activation):
    """DRIT's last layer is a ConvTranspose2d: its (C_in, C_out, k, k) weight enters transposed
    (non-contiguous); the gradient reaches that weight."""
    x, weight, bias = make_call(2, 6, 3, 9, 13, k, "sample", seed=6)
    grads = {}
    for backend in ("reference", "cpu"):
        w_t = weight.transpose(0, 1).contiguous().requires_grad_()  # (C_in, C_out, k, k)
        x_leaf, b_leaf = x.clone().requires_grad_(), bias.clone().requires_grad_()
        with ops.use_backend(backend):
            out = ops.output_conv2d(x_leaf, w_t.transpose(0, 1), b_leaf, k // 2, "zeros",
                                    activation)
        grads[backend] = (out, *torch.autograd.grad(out, (x_leaf, w_t, b_leaf),
                                                    _randn(*out.shape, seed=7)))
    assert not weight.transpose(0, 1).contiguous().transpose(0, 1).is_contiguous()
    for g, e in zip(grads["cpu"], grads["reference"]):
        assert g.shape == e.shape and rel_err(g, e) <= TOLERANCE[F64]


@pytest.mark.parametrize("bias", ["channel", "sample"])
def test_non_contiguous_bias(bias):
    x, weight, b = make_call(3, 4, 3, 6, 7, 3, bias, seed=8)
    b = b.t().contiguous().t() if b.dim() == 2 else b.repeat(2)[::2]
    assert not b.is_contiguous()
    expected, expected_grads = values_and_grads(ops.reference.output_conv2d, x, weight, b, 1,
                                                "reflect", "tanh")
    with ops.use_backend("cpu"):
        out = ops.output_conv2d(x, weight, b, 1, "reflect", "tanh")
    assert rel_err(out, expected) <= TOLERANCE[F64]


# ----- partial gradients, no_grad, expanded gradients -------------------------------------------


@pytest.mark.parametrize("wanted", [("x",), ("weight",), ("bias",), ("x", "bias"),
                                    ("weight", "bias")], ids="+".join)
@pytest.mark.parametrize("activation", ["none", "tanh"])
def test_only_some_inputs_requiring_grad(wanted, activation):
    call = make_call(2, 3, 4, 6, 9, 3, "sample", seed=9)
    results = {}
    for backend in ("reference", "cpu"):
        leaves = [t.clone().requires_grad_(name in wanted)
                  for name, t in zip(("x", "weight", "bias"), call)]
        with ops.use_backend(backend):
            out = ops.output_conv2d(*leaves, 1, "reflect", activation)
        # out.sum(): an expanded (stride 0) upstream gradient
        results[backend] = (out, *torch.autograd.grad(out.sum(), [t for t in leaves
                                                                  if t.requires_grad]))
    assert len(results["cpu"]) == 1 + len(wanted)
    for g, e in zip(results["cpu"], results["reference"]):
        assert rel_err(g, e) <= TOLERANCE[F64]


def test_inference_mode_and_no_grad():
    call = make_call(2, 3, 3, 7, 7, 3, "channel", seed=10)
    expected = ops.reference.output_conv2d(*call, 1, "reflect", "tanh")
    with ops.use_backend("cpu"):
        with torch.inference_mode():
            out = ops.output_conv2d(*call, 1, "reflect", "tanh")
        assert rel_err(out, expected) <= TOLERANCE[F64]
        with torch.no_grad():
            leaves = [t.clone().requires_grad_() for t in call]
            out = ops.output_conv2d(*leaves, 1, "reflect", "tanh")
    assert out.grad_fn is None and rel_err(out, expected) <= TOLERANCE[F64]


# ----- derivatives: gradcheck, forward mode, double backward ------------------------------------


GRADCHECK_CONFIGS = [
    ((2, 2, 3, 4, 5, 3), "channel", 1, "zeros", "tanh"),
    ((2, 3, 2, 5, 4, 3), "sample", 2, "reflect", "none"),
    ((1, 2, 5, 4, 6, (3, 2)), None, 1, "reflect", "tanh"),
    ((2, 1, 1, 3, 3, 1), "channel", 2, "zeros", "none"),
]


@pytest.mark.parametrize("config", GRADCHECK_CONFIGS,
                         ids=lambda c: f"{_ids(c[0])}-{c[1]}-{c[3]}-{c[4]}")
def test_gradcheck_reverse_and_forward_mode(config):
    shape, bias, padding, padding_mode, activation = config
    call = [t.requires_grad_() for t in make_call(*shape, bias, seed=21) if t is not None]
    with ops.use_backend("cpu"):
        def fn(x, weight, b=None):
            return ops.output_conv2d(x, weight, b, padding, padding_mode, activation)

        assert torch.autograd.gradcheck(fn, call, check_forward_ad=True)


@pytest.mark.parametrize("bias", ["channel", "sample"])
@pytest.mark.parametrize("activation", ["none", "tanh"])
@pytest.mark.parametrize("tangents", [("x",), ("weight",), ("bias",), ("x", "bias"),
                                      ("x", "weight", "bias")], ids="+".join)
def test_jvp_matches_the_reference(tangents, activation, bias):
    """torch.func.jvp with tangents on some of x, weight, bias (the others held fixed): the
    reference's tangent, never a silent zero."""
    call = dict(zip(("x", "weight", "bias"), make_call(2, 3, 3, 6, 9, 3, bias, seed=31)))
    directions = tuple(_randn(*call[name].shape, seed=40 + i) for i, name in enumerate(tangents))

    def along(fn):
        def partial(*moving):
            args = {**call, **dict(zip(tangents, moving))}
            return fn(args["x"], args["weight"], args["bias"], 1, "reflect", activation)
        return partial

    expected = torch.func.jvp(along(ops.reference.output_conv2d),
                              tuple(call[name] for name in tangents), directions)
    with ops.use_backend("cpu"):
        got = torch.func.jvp(along(ops.output_conv2d), tuple(call[name] for name in tangents),
                             directions)
    assert expected[1].abs().max() > 0.01
    for g, e in zip(got, expected):
        assert g.shape == e.shape and rel_err(g, e) <= TOLERANCE[F64]


def test_double_backward_is_refused_by_name():
    call = [t.requires_grad_() for t in make_call(1, 2, 3, 4, 4, 3, "channel", seed=22)]
    with ops.use_backend("cpu"):
        out = ops.output_conv2d(*call, 1, "reflect", "tanh")
    (gx,) = torch.autograd.grad(out.sum(), call[0], create_graph=True)
    with pytest.raises(RuntimeError, match="output_conv2d_backward"):
        gx.sum().backward()


# ----- threads ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_the_same_bits_on_one_and_two_threads(dtype):
    call = make_call(3, 20, 3, 9, 70, 7, "sample", seed=50, dtype=dtype)
    results = []
    for n in (1, 2):
        with threads(n), ops.use_backend("cpu"):
            results.append(values_and_grads(ops.output_conv2d, *call, 3, "reflect", "tanh"))
    (out1, grads1), (out2, grads2) = results
    assert torch.equal(out1, out2)
    for g1, g2 in zip(grads1, grads2):
        assert torch.equal(g1, g2)


# ----- the compiled operators under opcheck and torch.compile -----------------------------------


def _opcheck_samples():
    x, weight, bias = make_call(2, 3, 3, 7, 9, 3, "channel", seed=60, dtype=torch.float32)
    yield (x.requires_grad_(), weight.requires_grad_(), bias.requires_grad_(), 1, "reflect",
           "tanh")
    yield (channels_last(x.detach()), weight.detach(), None, 2, "zeros", "none")
    x, weight, bias = make_call(2, 4, 5, 6, 5, (3, 2), "sample", seed=61, dtype=torch.float32)
    yield (channels_last(x).requires_grad_(), weight.requires_grad_(), bias.requires_grad_(), 1,
           "zeros", "tanh")
    yield (strided_view(x), weight, bias, 0, "reflect", "none")


@pytest.mark.parametrize("sample", range(4))
def test_opcheck_compiled_operators(sample):
    args = list(_opcheck_samples())[sample]
    torch.library.opcheck(torch.ops.i2i_fast.output_conv2d.default, args)
    detached = tuple(t.detach() if isinstance(t, torch.Tensor) else t for t in args)
    torch.library.opcheck(torch.ops.i2i_fast.output_conv2d_forward.default, detached)
    x, weight, bias, padding, mode, activation = detached
    out = ops.reference.output_conv2d(x, weight, bias, padding, mode, activation)
    saved = out if activation == "tanh" else None
    per_sample = bias is not None and bias.dim() == 2
    for mask in ([True, True, True], [False, True, False], [True, False, True]):
        torch.library.opcheck(torch.ops.i2i_fast.output_conv2d_backward.default,
                              (torch.randn_like(out), x, weight, saved, padding, mode, activation,
                               per_sample, mask))


@pytest.mark.parametrize("dynamic", [None, True], ids=["default", "dynamic"])
def test_fullgraph_compile_forward_and_backward(dynamic):
    def fn(x, weight, bias):
        return ops.output_conv2d(torch.relu(x), weight, bias, 3, "reflect", "tanh") * 2

    with ops.use_backend("cpu"):
        compiled_matches_eager(fn, dynamic, [make_call(2, 4, 3, h, w, 7, "sample", seed=70 + i,
                                                       dtype=torch.float32)
                                             for i, (h, w) in enumerate([(8, 8), (10, 7),
                                                                         (12, 19)])],
                               values_and_grads)


# ----- autocast ---------------------------------------------------------------------------------


@pytest.mark.parametrize("x_dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("per_sample_bias", [False, True])
def test_under_autocast_casts_as_the_conv_it_replaces(per_sample_bias, x_dtype):
    """Under CPU autocast (bfloat16) the operator casts its float32 arguments as autocast casts
    F.conv2d's (whether x comes in float32 or already in bfloat16), a per-sample bias too (as the
    convolution over x and the code broadcast, which it stands for, would cast it); the gradients
    reach the float32 parameters in float32."""
    g = torch.Generator().manual_seed(3)
    layer = torch.nn.Conv2d(6, 3, 7, padding=3, padding_mode="reflect")
    x = torch.randn(2, 6, 9, 8, generator=g).to(x_dtype)
    bias = (torch.randn(2, 3, generator=g).requires_grad_() if per_sample_bias
            else layer.bias)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = F.conv2d(F.pad(x.float(), (3,) * 4, mode="reflect"), layer.weight,
                     None if per_sample_bias else bias)
        expected = torch.tanh(y + bias.bfloat16()[:, :, None, None] if per_sample_bias else y)
        with ops.use_backend("cpu"):
            out = ops.output_conv2d(x, layer.weight, bias, 3, "reflect", "tanh")
    assert out.dtype == expected.dtype == torch.bfloat16
    assert rel_err(out.float(), expected.float()) <= TOLERANCE[torch.bfloat16]
    out.float().sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.dtype == torch.float32
    assert bias.grad is not None and bias.grad.dtype == torch.float32


# ----- bad inputs: the same error from the public function, the compiled operators, the fake and
# the checks ---------------------------------------------------------------------------------------

_X = torch.randn(2, 3, 6, 6)
_W = torch.randn(4, 3, 3, 3)
BAD_CALLS = [
    ((_X.long(), _W, None, 1, "zeros", "none"), TypeError,
     r"x: expected a floating tensor \(float16, bfloat16, float32 or float64\), got torch.int64"),
    ((_X, _W.int(), None, 1, "zeros", "none"), TypeError,
     r"weight: expected a floating tensor \(float16, bfloat16, float32 or float64\), got "
     r"torch.int32"),
    ((_X[0], _W, None, 1, "zeros", "none"), ValueError,
     r"x: expected shape \(N, C, H, W\), got \(3, 6, 6\)"),
    ((_X, _W[:, :2], None, 1, "zeros", "none"), ValueError,
     r"weight: expected shape \(C_out, 3, k_h, k_w\), got \(4, 2, 3, 3\)"),
    ((_X, _W[0], None, 1, "zeros", "none"), ValueError,
     r"weight: expected shape \(C_out, 3, k_h, k_w\), got \(3, 3, 3\)"),
    ((_X, _W, torch.randn(3), 1, "zeros", "none"), ValueError,
     r"bias: expected None, shape \(4,\) or \(2, 4\), got \(3,\)"),
    ((_X, _W, torch.randn(4, 2), 1, "zeros", "none"), ValueError,
     r"bias: expected None, shape \(4,\) or \(2, 4\), got \(4, 2\)"),
    ((_X, _W, torch.randn(2, 4, 1), 1, "zeros", "none"), ValueError,
     r"bias: expected None, shape \(4,\) or \(2, 4\), got \(2, 4, 1\)"),
    ((_X, _W, None, -1, "zeros", "none"), ValueError, "padding: expected an int >= 0, got -1"),
    ((_X, _W, None, 1, "circular", "none"), ValueError,
     "padding_mode: expected one of 'zeros', 'reflect', got 'circular'"),
    ((_X, _W, None, 1, "zeros", "sigmoid"), ValueError,
     "activation: expected one of 'none', 'tanh', got 'sigmoid'"),
    ((_X, _W, None, 6, "reflect", "none"), ValueError,
     r"padding: reflect padding needs padding < H and < W, got padding 6 for x of shape "
     r"\(2, 3, 6, 6\)"),
    ((_X[:, :, :, :3], _W, None, 3, "reflect", "tanh"), ValueError,
     r"padding: reflect padding needs padding < H and < W, got padding 3 for x of shape "
     r"\(2, 3, 6, 3\)"),
    ((_X, _W.to("meta"), None, 1, "zeros", "none"), ValueError,
     "weight: expected device cpu \\(the device of x\\), got meta"),
    ((_X, _W, torch.randn(4, device="meta"), 1, "zeros", "none"), ValueError,
     "bias: expected device cpu \\(the device of x\\), got meta"),
    ((_X, _W.double(), None, 1, "zeros", "none"), TypeError,
     r"weight: expected dtype torch.float32 \(the dtype of x\), got torch.float64"),
    ((_X, _W, torch.randn(2, 4).half(), 1, "zeros", "none"), TypeError,
     r"bias: expected dtype torch.float32 \(the dtype of x\), got torch.float16"),
    ((_X[:, :, :2, :2], _W, None, 0, "zeros", "none"), ValueError,
     r"weight: expected a kernel no larger than the padded input \(2, 2\), got \(3, 3\)"),
    ((_X, torch.randn(4, 3, 3, 9), None, 1, "reflect", "none"), ValueError,
     r"weight: expected a kernel no larger than the padded input \(8, 8\), got \(3, 9\)"),
    ((_X[:, :, :0], _W, None, 2, "zeros", "none"), ValueError,
     r"x: expected a non-empty tensor, got shape \(2, 3, 0, 6\)"),
    ((_X[:0], _W, None, 1, "zeros", "none"), ValueError,
     r"x: expected a non-empty tensor, got shape \(0, 3, 6, 6\)"),
    ((_X, _W[:0], None, 1, "zeros", "none"), ValueError,
     r"weight: expected a non-empty tensor, got shape \(0, 3, 3, 3\)"),
]


def entry_points() -> dict:
    """Every way to call output_conv2d that checks its arguments."""
    return {"public": ops.output_conv2d,
            "compiled operator": torch.ops.i2i_fast.output_conv2d,
            "compiled forward operator": torch.ops.i2i_fast.output_conv2d_forward,
            "fake": oc_fake.output_conv2d_forward,
            "checks": oc_checks.output_conv2d}


@pytest.mark.parametrize("entry", sorted(entry_points()))
@pytest.mark.parametrize("case", range(len(BAD_CALLS)))
def test_bad_inputs_are_named_on_every_entry_point(case, entry):
    args, error, message = BAD_CALLS[case]
    with pytest.raises(error, match="^output_conv2d: " + message):
        entry_points()[entry](*args)


@pytest.mark.parametrize("padding", [True, 1.0, "1"], ids=repr)
def test_a_padding_that_is_not_an_int_is_named(padding):
    """(The compiled operators' schema takes an int: torch itself refuses a float or a str there
    and reads a bool as an int; the public function and the checks refuse all three by name.)"""
    for fn in (ops.output_conv2d, oc_checks.output_conv2d):
        with pytest.raises(ValueError, match=rf"^output_conv2d: padding: expected an int >= 0, "
                                             rf"got {padding!r}"):
            fn(_X, _W, None, padding, "zeros", "none")


@pytest.mark.parametrize("entry", ["public", "checks"])
def test_inputs_that_are_not_tensors_are_named(entry):
    fn = entry_points()[entry]
    with pytest.raises(TypeError, match=r"^output_conv2d: x: expected a torch.Tensor, got list"):
        fn([[1.0]], _W, None, 1, "zeros", "none")
    with pytest.raises(ValueError, match=r"^output_conv2d: bias: expected None, shape \(4,\) or "
                                         r"\(2, 4\), got \[1.0, 2.0\]"):
        fn(_X, _W, [1.0, 2.0], 1, "zeros", "none")


BAD_BACKWARD_CALLS = [
    ((torch.randn(2, 4, 6, 5), _X, _W, None, 1, "zeros", "none"), ValueError,
     r"grad: expected shape \(2, 4, 6, 6\) \(the output's\), got \(2, 4, 6, 5\)"),
    ((torch.randn(2, 4, 6, 6).double(), _X, _W, None, 1, "zeros", "none"), TypeError,
     r"grad: expected dtype torch.float32 \(the dtype of x\), got torch.float64"),
    ((torch.randn(2, 4, 6, 6, device="meta"), _X, _W, None, 1, "zeros", "none"), ValueError,
     r"grad: expected device cpu \(the device of x\), got meta"),
    ((torch.randn(2, 4, 6, 6), _X, _W, torch.randn(2, 4, 4, 4), 1, "zeros", "tanh"), ValueError,
     r"out: expected shape \(2, 4, 6, 6\) \(the output's\), got \(2, 4, 4, 4\)"),
    ((torch.randn(2, 4, 6, 6), _X, _W, None, 1, "zeros", "tanh"), ValueError,
     r"out: expected the forward's output \(tanh's derivative reads it\), got None"),
    ((torch.randn(2, 4, 6, 6), _X, _W, torch.randn(2, 4, 6, 6), 1, "reflect", "none"),
     ValueError, r"out: expected None \(activation 'none' does not read it\), got a tensor"),
    ((torch.randn(2, 4, 6, 6), _X, _W[:, :1], None, 1, "zeros", "none"), ValueError,
     r"weight: expected shape \(C_out, 3, k_h, k_w\), got \(4, 1, 3, 3\)"),
]


@pytest.mark.parametrize("entry", ["compiled operator", "fake", "checks"])
@pytest.mark.parametrize("case", range(len(BAD_BACKWARD_CALLS)))
def test_bad_calls_of_the_backward_operator_are_named(case, entry):
    args, error, message = BAD_BACKWARD_CALLS[case]
    fn = {"compiled operator": torch.ops.i2i_fast.output_conv2d_backward,
          "fake": oc_fake.output_conv2d_backward,
          "checks": lambda *a: oc_checks.output_conv2d_backward(*a[:7])}[entry]
    with pytest.raises(error, match="^output_conv2d_backward: " + message):
        fn(*args, False, [True] * 3)



def test_output_conv_bench_records_the_decoders_output_layer_and_checks_its_floors():
    from i2i_fast.bench import output_conv_bench as bench
    from i2i_fast.methods import get_method_class, resolve_config

    cfg = resolve_config(get_method_class("munit"), "tiny")
    (call,) = bench.recorded_calls("munit:tiny")
    assert call.x[0] == cfg.batch_size and call.x[2:] == (cfg.image_size, cfg.image_size)
    assert call.weight[:1] == (3,) and call.weight[1] == call.x[1] and call.weight[2:] == (7, 7)
    assert (call.padding, call.padding_mode, call.activation) == (3, "reflect", "tanh")
    records = bench._time_calls([call], ["forward_backward"], ["eager", "fused"], repeats=2)
    fused = [r for r in records if r["provider"] == "fused"]
    assert len(records) == 2 and len(fused) == 1 and fused[0]["vs_eager"] > 0
    slow = {**fused[0], "vs_eager": 1.5, "vs_compile": 1.6, "allocator": "default"}
    fast = {**fused[0], "vs_eager": 2.5, "vs_compile": 1.6, "allocator": "default"}
    assert len(bench.check_floors([slow])) == 1 and bench.check_floors([fast]) == []


def test_output_conv_bench_names_a_method_without_an_adain_decoder(capsys):
    import argparse

    from i2i_fast.bench import output_conv_bench as bench

    args = argparse.Namespace(threads=None, calls="bicyclegan:tiny")
    assert bench.main(args) == 2
    err = capsys.readouterr().err
    assert "i2i-fast bench output-conv: error: --calls bicyclegan: expected a method whose " \
           "generator decodes with an AdaINDecoder" in err
