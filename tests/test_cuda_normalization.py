"""The CUDA kernels of the normalizations, on a GPU (skipped without one).

Eager calls go through ``use_backend("cuda")`` and compiled models check first that the automatic
choice is "cuda", so nothing falls back silently to another backend: an unavailable CUDA backend
fails these tests with its reason. Values and every gradient
are compared with the reference computed in float64 (on the GPU), for each operator, dtype,
layout and activation, on odd shapes, on both ways through the kernels (the fused one-read path
and the split-reduction path, forced with I2I_FAST_CUDA_NORM_PATH), on the shapes that split the
reduction across blocks and on large shapes. Then the operator checks: gradcheck, opcheck,
torch.compile with fullgraph, a compiled module with mode="reduce-overhead" (CUDA graphs, which
fail on any launch outside the current stream), explicit graph capture, a side stream, NaN/Inf,
determinism and bad inputs. Outputs are allocated from memory poisoned with NaN first, so an
element a kernel forgets to write fails the comparison.
"""

from __future__ import annotations

import math

import pytest
import torch

import i2i_fast.ops as ops
from helpers import (
    NORM_OPS,
    TOLERANCE,
    call,
    channels_last,
    in_layout,
    make_args,
    poison_allocator,
    rel_err,
)

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason="no CUDA device (torch.cuda.is_available() is False)"),
]

PATH_ENV = "I2I_FAST_CUDA_NORM_PATH"
PATHS = ("auto", "fused", "split")
ACTIVATIONS = [None, "relu", "leaky_relu"]

SHAPES = [
    (1, 1, 1, 1),  # a single element
    (1, 3, 5, 7),  # N = 1, odd spatial (scalar loads)
    (4, 1, 6, 6),  # C = 1
    (3, 4, 1, 1),  # 1x1 spatial
    (2, 3, 3, 5),  # 3x5 spatial
    (2, 3, 127, 129),  # odd, large rows: fused forward, split backward
    (4, 300, 4, 4),  # many small rows
    (1, 2, 200, 190),  # long rows, few groups: split
    (2, 16, 32, 32),  # 16-byte loads in both layouts
    (2, 5, 17),  # (N, C, L)
    (2, 3, 4, 5, 6),  # (N, C, D, H, W)
]
SPLIT_SHAPES = [(1, 512, 16, 16), (8, 512, 16, 16), (1, 3, 256, 256), (2, 64, 128, 128),
                (1, 8, 300, 301)]
LARGE_SHAPES = [(32, 256, 64, 64), (8, 64, 256, 256)]


@pytest.fixture
def path(request, monkeypatch):
    """Force the kernels' path for the test (read by the C++ code at each call)."""
    value = request.param
    if value == "auto":
        monkeypatch.delenv(PATH_ENV, raising=False)
    else:
        monkeypatch.setenv(PATH_ENV, value)
    return value


def cuda_args(op, shape, dtype, param_dtype=None, seed=0):
    x, w, b = make_args(op, shape, dtype, param_dtype, seed)
    return x.cuda(), w.cuda(), b.cuda()


def cuda_fused_with_grads(op, x, w, b, activation, grad_out, layout):
    """Like helpers.fused_with_grads, on the cuda backend, from poisoned memory."""
    xr = in_layout(x.detach(), layout).requires_grad_()
    wr, br = (t.detach().clone().requires_grad_() for t in (w, b))
    poison_allocator(xr.numel() * xr.element_size())
    with ops.use_backend("cuda"):
        y = call(op, xr, wr, br, activation)
        gx, gw, gb = torch.autograd.grad(y, (xr, wr, br), grad_out)
    return y.detach(), gx, gw, gb, xr


def reference64(op, x, w, b, activation, grad_out):
    x64, w64, b64 = (t.detach().double().requires_grad_() for t in (x, w, b))
    y = call(op, x64, w64, b64, activation, ops.reference)
    gx, gw, gb = torch.autograd.grad(y, (x64, w64, b64), grad_out.double())
    return y.detach(), gx, gw, gb


def check(op, shape, layout, dtype, activation, param_dtype=None, tol=None, seed=0):
    x, w, b = cuda_args(op, shape, dtype, param_dtype, seed)
    x = in_layout(x, layout)
    g = torch.Generator().manual_seed(seed + 1)
    grad_out = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype).cuda()
    y, gx, gw, gb, xr = cuda_fused_with_grads(op, x, w, b, activation, grad_out, layout)
    ry, rgx, rgw, rgb = reference64(op, x, w, b, activation, grad_out)
    tol = tol or TOLERANCE[dtype]
    for name, actual, expected in (("out", y, ry), ("grad_x", gx, rgx), ("grad_weight", gw, rgw),
                                   ("grad_bias", gb, rgb)):
        assert actual.is_cuda
        err = rel_err(actual, expected)
        assert err <= tol, f"{op} {shape} {layout} {dtype} {activation}: {name} error {err:.2e}"
    assert y.dtype == dtype and gx.dtype == dtype
    assert gw.dtype == w.dtype and gw.shape == w.shape
    assert gb.dtype == b.dtype and gb.shape == b.shape
    if layout == "channels_last" and not x.is_contiguous():
        assert y.stride() == xr.stride() and gx.stride() == xr.stride()
    else:
        assert y.is_contiguous()


# ----- values and gradients against the float64 reference -------------------------------------


@pytest.mark.parametrize("path", PATHS, indirect=True)
@pytest.mark.parametrize("op", NORM_OPS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
def test_float32_all_shapes_layouts_and_paths(op, shape, layout, path):
    if op == "layer_norm/munit" and shape == (1, 1, 1, 1):
        pytest.skip("unbiased std of one value is NaN: covered by test_single_value_munit_is_nan")
    check(op, shape, layout, torch.float32, "leaky_relu")


@pytest.mark.parametrize("path", ("auto", "split"), indirect=True)
@pytest.mark.parametrize("op", NORM_OPS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64], ids=str)
@pytest.mark.parametrize("param_dtype", ["same", "float32"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("shape", [(2, 16, 24, 20), (2, 6, 37, 41)], ids=str)
def test_dtypes(op, dtype, param_dtype, layout, shape, path):
    if param_dtype == "float32" and dtype == torch.float64:
        pytest.skip("float32 parameters are for float16/bfloat16 x only")
    pdt = dtype if param_dtype == "same" else torch.float32
    check(op, shape, layout, dtype, "relu", pdt)


@pytest.mark.parametrize("op", NORM_OPS)
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_activations_float64(op, activation, layout):
    check(op, (3, 8, 9, 16), layout, torch.float64, activation)


@pytest.mark.parametrize("path", ("auto", "split"), indirect=True)
@pytest.mark.parametrize("op", NORM_OPS)
@pytest.mark.parametrize("shape", SPLIT_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_split_reduction_shapes(op, shape, layout, dtype, path):
    check(op, shape, layout, dtype, "leaky_relu")


@pytest.mark.slow
@pytest.mark.parametrize("op", NORM_OPS)
@pytest.mark.parametrize("shape", LARGE_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_large_shapes(op, shape, layout, dtype):
    check(op, shape, layout, dtype, "relu")


def test_misaligned_input_takes_the_scalar_path():
    """x starting one element into its storage cannot use 16-byte loads; same results."""
    shape = (2, 8, 16, 16)
    x, w, b = cuda_args("adain", shape, torch.float32)
    storage = torch.empty(x.numel() + 1, device="cuda")
    shifted = storage[1:].view(shape)
    shifted.copy_(x)
    assert shifted.data_ptr() % 16 != 0
    gy = torch.randn(shape, device="cuda")
    expected = cuda_fused_with_grads("adain", x, w, b, "relu", gy, "contiguous")
    xr = shifted.detach().requires_grad_()
    wr, br = (t.clone().requires_grad_() for t in (w, b))
    with ops.use_backend("cuda"):
        y = ops.adain(xr, wr, br, activation="relu")
        grads = torch.autograd.grad(y, (xr, wr, br), gy)
    for a, e in zip((y, *grads), expected[:4]):
        assert rel_err(a, e) < 1e-5


def test_large_offset_stays_accurate_in_float32():
    x = torch.randn(1, 1, 1024, 1024, dtype=torch.float64, device="cuda") + 1000.0
    w = torch.ones(1, 1, dtype=torch.float64, device="cuda")
    b = torch.zeros(1, 1, dtype=torch.float64, device="cuda")
    expected = ops.reference.adain(x, w, b)
    with ops.use_backend("cuda"):
        actual = ops.adain(x.float(), w.float(), b.float())
    assert rel_err(actual, expected) < 1e-3


def test_single_value_munit_is_nan():
    x = torch.randn(1, 1, 1, 1, device="cuda")
    with ops.use_backend("cuda"):
        y = ops.layer_norm(x, style="munit")
    assert torch.isnan(y).all()


def test_instance_norm_without_affine_and_partial_affine():
    x = torch.randn(2, 3, 8, 9, dtype=torch.float64, device="cuda", requires_grad=True)
    w = torch.rand(3, dtype=torch.float64, device="cuda", requires_grad=True)
    for weight, bias in ((None, None), (w, None), (None, w)):
        with ops.use_backend("cuda"):
            y = ops.instance_norm(x, weight, bias, activation="relu")
        y_ref = ops.reference.instance_norm(x, weight, bias, activation="relu")
        assert rel_err(y, y_ref) < 1e-10
        inputs = [t for t in (x, weight, bias) if t is not None]
        for a, e in zip(torch.autograd.grad(y.sum(), inputs),
                        torch.autograd.grad(y_ref.sum(), inputs)):
            assert rel_err(a, e) < 1e-10


# ----- the operator checks ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ("fused", "split"), indirect=True)
@pytest.mark.parametrize("op", NORM_OPS)
@pytest.mark.parametrize("activation", [None, "leaky_relu"], ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_gradcheck_float64(op, activation, layout, path):
    x, w, b = cuda_args(op, (2, 3, 4, 5), torch.float64)
    if layout == "channels_last":
        x = channels_last(x)
    inputs = tuple(t.detach().clone().requires_grad_() for t in (x, w, b))
    with ops.use_backend("cuda"):
        assert torch.autograd.gradcheck(lambda x_, w_, b_: call(op, x_, w_, b_, activation),
                                        inputs)


def _cuda_op_samples():
    lib = torch.ops.i2i_fast
    samples = []
    for layout in ("contiguous", "channels_last"):
        x, w2, b2 = cuda_args("adain", (2, 3, 5, 4), torch.float32)
        _, w1, b1 = cuda_args("instance_norm", (2, 3, 5, 4), torch.float32)
        if layout == "channels_last":
            x = channels_last(x)
        for act in ("none", "relu", "leaky_relu"):
            samples += [
                (lib.adain.default, (x, w2, b2, 1e-5, act, 0.2)),
                (lib.instance_norm.default, (x, w1, b1, 1e-5, act, 0.2)),
                (lib.instance_norm.default, (x, None, None, 1e-5, act, 0.2)),
                (lib.layer_norm.default, (x, w1, b1, 1e-5, "munit", act, 0.2)),
                (lib.layer_norm.default, (x, w1, b1, 1e-5, "standard", act, 0.2)),
            ]
    return samples


@pytest.mark.parametrize("sample", range(30))
def test_opcheck_public_operators(sample):
    samples = _cuda_op_samples()
    assert len(samples) == 30
    op, args = samples[sample]
    args = tuple(a.clone().requires_grad_() if isinstance(a, torch.Tensor) else a for a in args)
    torch.library.opcheck(op, args)


def test_opcheck_forward_and_backward_operators():
    lib = torch.ops.i2i_fast
    x, w2, b2 = cuda_args("adain", (2, 3, 5, 4), torch.float32)
    _, w1, b1 = cuda_args("instance_norm", (2, 3, 5, 4), torch.float32)
    gy = torch.randn_like(x)
    _, m, r = lib.adain_forward(x, w2, b2, 1e-5, "relu", 0.2)
    torch.library.opcheck(lib.adain_forward.default, (x, w2, b2, 1e-5, "relu", 0.2))
    torch.library.opcheck(lib.adain_backward.default, (gy, x, w2, b2, m, r, 1e-5, "relu", 0.2))
    _, m, r = lib.instance_norm_forward(x, w1, b1, 1e-5, "none", 0.2)
    torch.library.opcheck(lib.instance_norm_forward.default, (x, w1, b1, 1e-5, "none", 0.2))
    torch.library.opcheck(lib.instance_norm_backward.default,
                          (gy, x, None, None, m, r, 1e-5, "none", 0.2))
    _, m, r = lib.layer_norm_forward(x, w1, b1, 1e-5, "munit", "leaky_relu", 0.2)
    torch.library.opcheck(lib.layer_norm_forward.default,
                          (x, w1, b1, 1e-5, "munit", "leaky_relu", 0.2))
    torch.library.opcheck(lib.layer_norm_backward.default,
                          (gy, x, w1, b1, m, r, 1e-5, "munit", "leaky_relu", 0.2))


def _norm_stack():
    """The CPU tests' module (conv, AdaIN+ReLU, conv, IN+LReLU, conv, MUNIT LN+ReLU) on the GPU.
    Compiled models run with the automatic backend choice (dynamo traces the dispatch), so this
    first checks that the choice is the CUDA kernels."""
    from test_normalization_operators import NormStack

    probe = torch.empty(1, 1, 1, 1, device="cuda")
    for op in ops.OPS:
        assert ops.chosen_backend(op, probe) == "cuda", ops.get_backend("cuda").reason(op, probe)
    torch.manual_seed(0)
    return NormStack().cuda()


def test_compile_fullgraph_matches_eager_and_calls_the_fused_operators():
    model = _norm_stack()
    x, s = torch.randn(2, 3, 12, 10, device="cuda"), torch.randn(2, 4, device="cuda")
    eager_out = model(x, s)
    eager_grads = torch.autograd.grad(eager_out.square().sum(), list(model.parameters()))
    seen = []

    def backend(gm, example_inputs):
        seen.extend(str(n.target) for n in gm.graph.nodes if n.op == "call_function")
        return gm.forward

    torch.compile(model, fullgraph=True, backend=backend)(x, s)
    assert any("i2i_fast.adain" in t for t in seen), seen
    assert any("i2i_fast.instance_norm" in t for t in seen), seen
    assert any("i2i_fast.layer_norm" in t for t in seen), seen
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True)
    out = compiled(x, s)
    grads = torch.autograd.grad(out.square().sum(), list(model.parameters()))
    assert rel_err(out, eager_out) < 1e-5
    for g, e in zip(grads, eager_grads):
        assert rel_err(g, e) < 1e-4
    torch._dynamo.reset()


def test_compiled_module_reduce_overhead_cuda_graphs():
    """mode="reduce-overhead" records CUDA graphs: any kernel launched outside the current
    stream, or any synchronising call, breaks the capture. Several steps with new inputs must
    match eager, gradients included."""
    model = _norm_stack()
    compiled = torch.compile(model, mode="reduce-overhead", fullgraph=True)
    for step in range(4):
        g = torch.Generator().manual_seed(step)
        x = torch.randn(2, 3, 16, 16, generator=g).cuda()
        s = torch.randn(2, 4, generator=g).cuda()
        expected = model(x, s)
        expected_grads = torch.autograd.grad(expected.sum(), list(model.parameters()))
        out = compiled(x, s)
        grads = torch.autograd.grad(out.sum(), list(model.parameters()))
        assert rel_err(out, expected) < 1e-5, step
        for a, e in zip(grads, expected_grads):
            assert rel_err(a, e) < 1e-4, step
    torch._dynamo.reset()


@pytest.mark.parametrize("path", ("fused", "split"), indirect=True)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_explicit_cuda_graph_capture_and_replay(layout, path):
    x, w, b = cuda_args("adain", (2, 16, 24, 24), torch.float32)
    static_x = in_layout(x, layout).clone()  # clone keeps the memory format
    with ops.use_backend("cuda"):
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):  # warm up outside the capture
                ops.adain(static_x, w, b, activation="relu")
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_y = ops.adain(static_x, w, b, activation="relu")
    for seed in range(3):
        new_x = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed)).cuda()
        static_x.copy_(new_x)
        graph.replay()
        torch.cuda.synchronize()
        expected = ops.reference.adain(new_x.double(), w.double(), b.double(), activation="relu")
        assert rel_err(static_y, expected) < 3e-5


def test_side_stream_results_match():
    x, w, b = cuda_args("instance_norm", (4, 32, 40, 40), torch.float32)
    x = channels_last(x).requires_grad_()
    gy = torch.randn_like(x)
    with ops.use_backend("cuda"):
        y0 = ops.instance_norm(x, w, b, activation="leaky_relu")
        (g0,) = torch.autograd.grad(y0, x, gy)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            y1 = ops.instance_norm(x, w, b, activation="leaky_relu")
            (g1,) = torch.autograd.grad(y1, x, gy)
        torch.cuda.current_stream().wait_stream(side)
    assert torch.equal(y0, y1) and torch.equal(g0, g1)


@pytest.mark.parametrize("path", ("fused", "split"), indirect=True)
@pytest.mark.parametrize("op", NORM_OPS)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=str)
def test_nan_and_inf_propagate_like_the_reference(op, bad, activation, path):
    x, w, b = cuda_args(op, (2, 3, 5, 5), torch.float32)
    x[1, 2, 3, 1] = bad
    with ops.use_backend("cuda"):
        y = call(op, x, w, b, activation)
    y_ref = call(op, x, w, b, activation, ops.reference)
    assert torch.equal(torch.isnan(y), torch.isnan(y_ref))
    assert torch.equal(torch.isinf(y), torch.isinf(y_ref))
    finite = torch.isfinite(y_ref)
    assert torch.allclose(y[finite], y_ref[finite], atol=1e-5)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_results_are_deterministic(layout):
    x, w, b = cuda_args("adain", (2, 64, 96, 96), torch.bfloat16, torch.float32)
    gy = torch.randn(x.shape, device="cuda").bfloat16()
    first = cuda_fused_with_grads("adain", x, w, b, "relu", gy, layout)[:4]
    for _ in range(3):
        again = cuda_fused_with_grads("adain", x, w, b, "relu", gy, layout)[:4]
        for a, e in zip(again, first):
            assert torch.equal(a, e)


def test_inference_mode_and_backend_choice():
    x, w, b = cuda_args("adain", (2, 3, 6, 6), torch.float32)
    assert ops.chosen_backend("adain", x) == "cuda"
    assert ops.chosen_backend("adain", x.cpu()) == "cpu"
    with torch.inference_mode():
        y = ops.adain(x, w, b, activation="relu")
    assert y.is_cuda
    assert rel_err(y, ops.reference.adain(x, w, b, activation="relu")) < 1e-5


def test_autocast_bfloat16():
    model = _norm_stack()
    x, s = torch.randn(2, 3, 16, 16, device="cuda"), torch.randn(2, 4, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        with ops.use_backend("cuda"):
            out = model(x, s)
        with ops.use_backend("reference"):
            ref = model(x, s)
    assert out.dtype == torch.bfloat16
    assert rel_err(out, ref) < 3e-2
    grads = torch.autograd.grad(out.float().sum(), list(model.parameters()))
    assert all(torch.isfinite(g).all() for g in grads)


def test_bad_inputs_are_clear_errors():
    x = torch.randn(2, 3, 4, 4, device="cuda")
    w, b = torch.ones(2, 3, device="cuda"), torch.zeros(2, 3, device="cuda")
    with pytest.raises(ValueError, match=r"adain: weight: expected device cuda:0 \(the device of "
                                         r"x\), got cpu"):
        ops.adain(x, w.cpu(), b)
    lib = torch.ops.i2i_fast
    with pytest.raises((ValueError, RuntimeError), match=r"adain: bias: expected device cuda:0"):
        lib.adain(x, w, b.cpu(), 1e-5, "none", 0.2)
    _, mean, rstd = lib.adain_forward(x, w, b, 1e-5, "none", 0.2)
    with pytest.raises((ValueError, RuntimeError),
                       match=r"adain: grad_out: expected shape \[2, 3, 4, 4\] \(the shape of x\), "
                             r"got \[2, 3, 4, 3\]"):
        lib.adain_backward(torch.randn(2, 3, 4, 3, device="cuda"), x, w, b, mean, rstd, 1e-5,
                           "none", 0.2)
    with pytest.raises((ValueError, RuntimeError), match=r"adain: mean: expected shape \[2, 3\]"):
        lib.adain_backward(torch.randn_like(x), x, w, b, mean[:1], rstd, 1e-5, "none", 0.2)
    with pytest.raises((ValueError, RuntimeError), match=r"layer_norm: rstd: expected device"):
        _, m1, r1 = lib.layer_norm_forward(x, None, None, 1e-5, "munit", "none", 0.2)
        lib.layer_norm_backward(torch.randn_like(x), x, None, None, m1, r1.cpu(), 1e-5, "munit",
                                "none", 0.2)
