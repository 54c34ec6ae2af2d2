"""The triton backend of the normalizations.

Values and every gradient against the float64 reference (ops, activations, layouts, dtypes, odd
shapes, every kernel path), opcheck, gradcheck, torch.compile, autograd details, backend choice,
the launch plans, and compilation of every kernel for sm_90.

Without a GPU the kernels run in the Triton interpreter on CPU tensors: tests/conftest.py sets
TRITON_INTERPRET=1 before i2i_fast is imported, and the tests force the triton backend. With a
GPU the same checks run on CUDA tensors (parameters marked `cuda`), plus GPU-only ones.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
import torch

import i2i_fast.ops as ops
from helpers import (
    EXACT_CONSTANTS,
    NORM_OPS,
    TOLERANCE,
    call,
    channels_last,
    check_against_reference,
    in_layout,
    make_args,
    reference_with_grads,
    rel_err,
    with_constant_groups,
)
from i2i_fast.ops import triton_support as ts
from triton_test_devices import (
    DEVICES,
    INTERPRETER,
    ON_GPU,
    STATE,
    needs_triton,
    run_compile_check,
    triton_kernels_of,
)


def _kernels():
    from i2i_fast.ops.normalization import triton as tk

    return tk


def _check(op, shape, layout, dtype, activation, device, param_dtype=None, seed=0):
    """Triton output and gradients of x, weight, bias vs the float64 reference."""
    x, w, b = (t.to(device) for t in make_args(op, shape, dtype, param_dtype, seed=seed))
    x = in_layout(x, layout)
    grad_out = torch.randn(shape, generator=torch.Generator().manual_seed(seed + 1),
                           dtype=torch.float64).to(device=device, dtype=dtype)
    xr = x.detach().clone() if layout != "strided" else in_layout(x.detach(), layout)
    xr.requires_grad_()
    wr, br = (t.detach().clone().requires_grad_() for t in (w, b))
    with ops.use_backend("triton"):
        y = call(op, xr, wr, br, activation)
    gx, gw, gb = torch.autograd.grad(y, (xr, wr, br), grad_out)
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
    if layout == "channels_last" and not xr.is_contiguous():
        assert y.stride() == xr.stride() and gx.stride() == xr.stride()
    else:
        assert y.is_contiguous() and gx.is_contiguous()


SHAPES = [
    (1, 1, 1, 1),  # a single element
    (1, 3, 5, 7),  # N = 1
    (4, 1, 6, 6),  # C = 1
    (3, 4, 1, 1),  # 1x1 spatial
    (2, 3, 3, 5),  # 3x5 spatial
    (2, 5, 17),  # (N, C, L)
    (2, 3, 4, 5, 6),  # (N, C, D, H, W)
    (1, 1, 96, 96),  # few groups, long rows: the split reduction
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", NORM_OPS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
def test_float64_shapes_and_layouts(device, op, shape, layout):
    if op == "layer_norm/munit" and shape == (1, 1, 1, 1):
        pytest.skip("unbiased std of one value is NaN: test_single_value_munit_is_nan")
    _check(op, shape, layout, torch.float64, "leaky_relu", device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", NORM_OPS)
@pytest.mark.parametrize("activation", [None, "relu", "leaky_relu"], ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
def test_float32_activations(device, op, activation, layout):
    _check(op, (2, 3, 7, 9), layout, torch.float32, activation, device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", NORM_OPS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("param_dtype", ["same", "float32"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_low_precision(device, op, dtype, param_dtype, layout):
    pdt = dtype if param_dtype == "same" else torch.float32
    _check(op, (2, 6, 5, 7), layout, dtype, "relu", device, pdt)


@pytest.fixture
def small_tiles(monkeypatch):
    """Tiles of 256 values: small shapes then take the multi-chunk and split paths."""
    tk = _kernels()
    monkeypatch.setattr(tk, "TILE_ELEMENTS", 256)
    monkeypatch.setattr(tk, "MIN_SPLIT_ELEMENTS", 256)
    monkeypatch.setattr(tk, "CHANNELS_LAST_BLOCK_C", 4)
    monkeypatch.setattr(tk, "CHANNELS_LAST_MIN_BLOCK_C", 2)
    return tk


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", NORM_OPS)
@pytest.mark.parametrize("shape", [(4, 3, 10, 30), (1, 2, 20, 30), (2, 9, 5, 7)],
                         ids=["multi_chunk", "split", "channel_tail"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_multi_chunk_and_split_paths(device, op, shape, layout, small_tiles):
    _check(op, shape, layout, torch.float64, "leaky_relu", device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", NORM_OPS)
def test_64_bit_offsets_path(device, op, monkeypatch):
    """The LONG_INDEX variant (samples of 2**31 values or more) computes the same."""
    monkeypatch.setattr(_kernels(), "LONG_INDEX_ELEMENTS", 1)
    assert _kernels().plan_launch(2, 3, 20, False, 8).long_index
    _check(op, (2, 3, 4, 5), "channels_last", torch.float64, "relu", device)


@pytest.mark.skipif(not INTERPRETER, reason="records launches in the interpreter")
def test_test_shapes_take_every_kernel_path(small_tiles, monkeypatch):
    """The shapes above launch every kernel, with one chunk and with several (no silent gaps)."""
    tk = small_tiles
    launched = set()
    real = tk.wrap_triton

    def recording(kernel):
        launched.add(getattr(kernel, "__name__", None) or kernel.fn.__name__)
        return real(kernel)

    monkeypatch.setattr(tk, "wrap_triton", recording)
    one_chunk = set()
    plan = tk.plan_launch
    monkeypatch.setattr(tk, "plan_launch", lambda n, c, s, cl, m: (
        one_chunk.add(s <= plan(n, c, s, cl, m).block_s) or plan(n, c, s, cl, m)))
    for op in ("adain", "layer_norm/munit"):
        for shape in ((4, 3, 10, 30), (1, 2, 20, 30), (2, 3, 3, 5)):
            x, w, b = (t.requires_grad_() for t in make_args(op, shape, torch.float64))
            with ops.use_backend("triton"):
                call(op, x, w, b, "relu").sum().backward()
    assert launched == {"instance_forward_kernel", "instance_backward_kernel",
                        "partial_moments_kernel", "merge_partial_moments_kernel",
                        "normalize_kernel", "partial_grad_sums_kernel", "input_grad_kernel"}
    assert one_chunk == {True, False}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", NORM_OPS)
@pytest.mark.parametrize("value", EXACT_CONSTANTS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_constant_groups(device, op, value, dtype, layout):
    """Constant samples and channels: finite values and gradients, equal to the reference (MUNIT's
    LayerNorm backward was 0/0 = NaN there, issue 23)."""
    shape = (2, 3, 5, 7)
    x, w, b = (t.to(device) for t in make_args(op, shape, dtype))
    x = with_constant_groups(in_layout(x, layout), value)
    grad_out = torch.randn(shape, generator=torch.Generator().manual_seed(2),
                           dtype=torch.float64).to(device=device, dtype=dtype)
    check_against_reference(op, x, w, b, "leaky_relu", grad_out, TOLERANCE[dtype], "triton")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("spread", [1e-3, 1e-13, 1e-15])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_munit_layer_norm_of_a_tiny_spread(device, spread, dtype):
    """A std far below eps: the gradient through it is negligible and still finite (it was inf
    at 1e-13 in float32)."""
    shape = (2, 3, 5, 6)
    g = torch.Generator().manual_seed(3)
    x, w, b, grad_out = ((torch.randn(shape, generator=g, dtype=torch.float64) * spread),
                         torch.rand(3, generator=g, dtype=torch.float64) + 0.5,
                         torch.randn(3, generator=g, dtype=torch.float64),
                         torch.randn(shape, generator=g, dtype=torch.float64))
    x, w, b, grad_out = (t.to(device=device, dtype=dtype) for t in (x, w, b, grad_out))
    check_against_reference("layer_norm/munit", x, w, b, None, grad_out, TOLERANCE[dtype],
                            "triton")


@pytest.mark.parametrize("device", DEVICES)
def test_single_value_munit_is_nan(device):
    x = torch.randn(1, 1, 1, 1, device=device)
    with ops.use_backend("triton"):
        y = ops.layer_norm(x, style="munit")
    assert torch.isnan(y).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", NORM_OPS)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("activation", [None, "relu", "leaky_relu"], ids=str)
def test_nan_and_inf_propagate_like_the_reference(device, op, bad, activation):
    x, w, b = (t.to(device) for t in make_args(op, (2, 3, 5, 5), torch.float32))
    x[1, 2, 3, 1] = bad
    with ops.use_backend("triton"):
        y = call(op, x, w, b, activation)
    y_ref = call(op, x, w, b, activation, ops.reference)
    assert torch.equal(torch.isnan(y), torch.isnan(y_ref))
    assert torch.equal(torch.isinf(y), torch.isinf(y_ref))
    finite = torch.isfinite(y_ref)
    assert torch.allclose(y[finite], y_ref[finite], atol=1e-5)
    assert torch.isnan(y_ref).any() and torch.isfinite(y_ref[0]).all()


@pytest.mark.parametrize("device", DEVICES)
def test_relu_passes_nan_through(device):
    """relu(NaN) = NaN, as torch.relu: a NaN weight poisons its group's output."""
    x, w, b = (t.to(device) for t in make_args("adain", (2, 3, 5, 5), torch.float32))
    w[0, 1] = math.nan
    with ops.use_backend("triton"):
        y = ops.adain(x, w, b, activation="relu")
    assert torch.isnan(y[0, 1]).all() and torch.isfinite(y[1]).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", ["instance_norm", "layer_norm"])
def test_without_affine_and_partial_affine(device, op):
    x = torch.randn(2, 3, 8, 9, dtype=torch.float64, device=device, requires_grad=True)
    w = torch.rand(3, dtype=torch.float64, device=device, requires_grad=True)
    fn, ref = getattr(ops, op), getattr(ops.reference, op)
    for weight, bias in ((None, None), (w, None), (None, w)):
        with ops.use_backend("triton"):
            y = fn(x, weight, bias, activation="relu")
        y_ref = ref(x, weight, bias, activation="relu")
        assert rel_err(y, y_ref) < 1e-10
        inputs = [t for t in (x, weight, bias) if t is not None]
        for a, e in zip(torch.autograd.grad(y.sum(), inputs),
                        torch.autograd.grad(y_ref.sum(), inputs)):
            assert rel_err(a, e) < 1e-10


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", NORM_OPS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_gradcheck_float64(device, op, layout):
    x, w, b = (t.to(device) for t in make_args(op, (1, 2, 3, 3), torch.float64))
    if layout == "channels_last":
        x = channels_last(x)
    inputs = tuple(t.detach().clone().requires_grad_() for t in (x, w, b))

    def fn(x_, w_, b_):
        with ops.use_backend("triton"):
            return call(op, x_, w_, b_, "leaky_relu")

    assert torch.autograd.gradcheck(fn, inputs, fast_mode=True)


# ----- as torch operators -----------------------------------------------------------------------


def _forward_samples(device):
    """(operator, args) for each forward operator, both layouts, with and without affine."""
    lib = torch.ops.i2i_fast_triton
    samples = []
    for layout in ("contiguous", "channels_last"):
        x, w2, b2 = (t.to(device) for t in make_args("adain", (2, 3, 5, 4), torch.float32))
        _, w1, b1 = (t.to(device) for t in make_args("instance_norm", (2, 3, 5, 4),
                                                      torch.float32))
        if layout == "channels_last":
            x = channels_last(x)
        samples += [
            (lib.adain_forward.default, (x, w2, b2, 1e-5, "relu", 0.2)),
            (lib.instance_norm_forward.default, (x, w1, b1, 1e-5, "leaky_relu", 0.2)),
            (lib.instance_norm_forward.default, (x, None, None, 1e-5, "none", 0.2)),
            (lib.layer_norm_forward.default, (x, w1, b1, 1e-5, "munit", "relu", 0.2)),
            (lib.layer_norm_forward.default, (x, None, b1, 1e-5, "standard", "none", 0.2)),
        ]
    return samples


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("sample", range(10))
def test_opcheck_forward_operators(device, sample):
    op, args = _forward_samples(device)[sample]
    args = tuple(a.clone().requires_grad_() if isinstance(a, torch.Tensor) else a for a in args)
    torch.library.opcheck(op, args)


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck_backward_operators(device):
    lib = torch.ops.i2i_fast_triton
    x, w2, b2 = (t.to(device) for t in make_args("adain", (2, 3, 5, 4), torch.float32))
    _, w1, b1 = (t.to(device) for t in make_args("instance_norm", (2, 3, 5, 4), torch.float32))
    gy = torch.randn_like(x)
    _, m, r = lib.adain_forward(x, w2, b2, 1e-5, "relu", 0.2)
    torch.library.opcheck(lib.adain_backward.default, (gy, x, w2, b2, m, r, 1e-5, "relu", 0.2))
    _, m, r = lib.instance_norm_forward(x, None, None, 1e-5, "none", 0.2)
    torch.library.opcheck(lib.instance_norm_backward.default,
                          (gy, x, None, None, m, r, 1e-5, "none", 0.2))
    _, m, r = lib.layer_norm_forward(x, w1, b1, 1e-5, "munit", "leaky_relu", 0.2)
    torch.library.opcheck(lib.layer_norm_backward.default,
                          (gy, channels_last(x), w1, b1, m, r, 1e-5, "munit", "leaky_relu", 0.2))


class NormStack(torch.nn.Module):
    """conv → AdaIN+ReLU → conv → IN+LReLU → conv → MUNIT LN+ReLU, all through i2i_fast.ops."""

    def __init__(self, c=8):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, c, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(c, c, 3, padding=1)
        self.conv3 = torch.nn.Conv2d(c, 3, 3, padding=1)
        self.style = torch.nn.Linear(4, 2 * c)
        self.in_w = torch.nn.Parameter(torch.rand(c) + 0.5)
        self.in_b = torch.nn.Parameter(torch.zeros(c))
        self.ln_w = torch.nn.Parameter(torch.rand(3))
        self.ln_b = torch.nn.Parameter(torch.zeros(3))

    def forward(self, x, s):
        h = self.conv1(x)
        gamma, beta = self.style(s).chunk(2, dim=1)
        h = ops.adain(h, 1 + gamma, beta, activation="relu")
        h = ops.instance_norm(self.conv2(h), self.in_w, self.in_b, activation="leaky_relu")
        return ops.layer_norm(self.conv3(h), self.ln_w, self.ln_b, style="munit",
                              activation="relu")


@pytest.mark.parametrize("device", DEVICES)
def test_compile_fullgraph_matches_the_reference_with_gradients(device):
    """torch.compile(fullgraph=True) of a model on the triton backend: values and gradients.

    On a GPU Inductor traces into the kernels (triton_op). In the interpreter torch cannot trace
    interpreted kernels, so the operators stay whole in the graph and run as compiled calls."""
    torch.manual_seed(0)
    model = NormStack().to(device)
    x, s = torch.randn(2, 3, 12, 10, device=device), torch.randn(2, 4, device=device)
    with ops.use_backend("reference"):
        ref_out = model(x, s)
    ref_grads = torch.autograd.grad(ref_out.square().sum(), list(model.parameters()))
    compiled = torch.compile(model, fullgraph=True)
    with ops.use_backend("triton"):
        out = compiled(x, s)
    grads = torch.autograd.grad(out.square().sum(), list(model.parameters()))
    assert rel_err(out, ref_out) < 1e-4
    for g, e in zip(grads, ref_grads):
        assert rel_err(g, e) < 1e-3
    torch._dynamo.reset()


@pytest.mark.parametrize("device", DEVICES)
def test_compile_graph_contains_the_triton_operators(device):
    seen = []

    def backend(gm, example_inputs):
        seen.extend(str(node.target) for node in gm.graph.nodes if node.op == "call_function")
        return gm.forward

    model = NormStack().to(device)
    with ops.use_backend("triton"):
        torch.compile(model, fullgraph=True, backend=backend)(
            torch.randn(1, 3, 8, 8, device=device), torch.randn(1, 4, device=device))
    for name in ("adain_forward", "instance_norm_forward", "layer_norm_forward"):
        assert any(f"i2i_fast_triton.{name}" in t for t in seen), seen
    torch._dynamo.reset()


@needs_triton
def test_torch_finds_every_kernel_of_each_operator():
    """torch.library.triton_op finds the kernels behind each operator: their source is part of
    the AOTAutograd cache key (a kernel it missed could leave stale compiled graphs). Checked
    with compiled-mode kernels (torch does not look for interpreted ones), in a fresh process."""
    found = triton_kernels_of("i2i_fast.ops.normalization.triton",
                              tuple(f"{op}_{d}" for op in ("adain", "instance_norm", "layer_norm",
                                                           "batch_norm")
                                    for d in ("forward", "backward")))
    forward = ["instance_forward_kernel", "merge_partial_moments_kernel", "normalize_kernel",
               "partial_moments_kernel"]
    backward = ["input_grad_kernel", "instance_backward_kernel", "partial_grad_sums_kernel"]
    for op in ("adain", "instance_norm", "layer_norm"):
        assert found[f"{op}_forward"] == forward, found
        assert found[f"{op}_backward"] == backward, found
    # batch_norm: the split path only (its statistics span the batch)
    assert found["batch_norm_forward"] == ["normalize_kernel", "partial_moments_kernel"], found
    assert found["batch_norm_backward"] == ["input_grad_kernel", "partial_grad_sums_kernel"], found


@pytest.mark.parametrize("device", DEVICES)
def test_double_backward_is_an_error_naming_the_operator(device):
    x, w, b = (t.to(device).requires_grad_() for t in make_args("adain", (1, 2, 4, 4),
                                                                   torch.float64))
    with ops.use_backend("triton"):
        y = ops.adain(x, w, b)
    (gx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="adain_backward"):
        gx.sum().backward()


@pytest.mark.parametrize("device", DEVICES)
def test_only_requested_gradients_flow(device):
    x, w, b = (t.to(device) for t in make_args("adain", (2, 3, 6, 6), torch.float32))
    x.requires_grad_()
    with ops.use_backend("triton"):
        y = ops.adain(x, w, b)
    (gx,) = torch.autograd.grad(y.sum(), x)
    assert gx.shape == x.shape and w.grad is None


@pytest.mark.parametrize("device", DEVICES)
def test_inference_mode(device):
    x, w, b = (t.to(device) for t in make_args("adain", (2, 3, 6, 6), torch.float32))
    with torch.inference_mode(), ops.use_backend("triton"):
        y = ops.adain(x, w, b, activation="relu")
    assert rel_err(y, ops.reference.adain(x, w, b, activation="relu")) < 1e-5


@pytest.mark.parametrize("device", DEVICES)
def test_autocast_bfloat16(device):
    torch.manual_seed(0)
    model = NormStack().to(device)
    x, s = torch.randn(2, 3, 16, 16, device=device), torch.randn(2, 4, device=device)
    with torch.autocast(device, dtype=torch.bfloat16):
        with ops.use_backend("triton"):
            out = model(x, s)
        with ops.use_backend("reference"):
            ref = model(x, s)
    assert out.dtype == torch.bfloat16
    assert rel_err(out, ref) < 3e-2
    grads = torch.autograd.grad(out.float().sum(), list(model.parameters()))
    assert all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("device", DEVICES)
def test_direct_operator_calls_are_checked(device):
    lib = torch.ops.i2i_fast_triton
    x = torch.randn(2, 3, 4, 4, device=device)
    with pytest.raises(ValueError, match=r"adain: weight: expected shape \(2, 3\), got \(5, 3\)"):
        lib.adain_forward(x, torch.ones(5, 3, device=device), torch.zeros(2, 3, device=device),
                          1e-5, "none", 0.2)
    with pytest.raises(ValueError, match=r"instance_norm: activation: .* got 'swish'"):
        lib.instance_norm_forward(x, None, None, 1e-5, "swish", 0.2)
    with pytest.raises(ValueError, match=r"layer_norm: style: expected 'munit' or 'standard'"):
        lib.layer_norm_forward(x, None, None, 1e-5, "other", "none", 0.2)
    with pytest.raises(ValueError, match=r"layer_norm_backward: mean: expected shape \(2,\)"):
        lib.layer_norm_backward(x, x, None, None, torch.zeros(2, 3, device=device),
                                torch.ones(2, device=device), 1e-5, "munit", "none", 0.2)


# ----- backend choice ---------------------------------------------------------------------------


def test_triton_backend_is_registered_between_cuda_and_cpu():
    names = ops.backend_names()
    assert "triton" in names and names.index("triton") < names.index("cpu")
    assert ops.get_backend("triton").priority == 20


def test_interpreter_takes_cpu_tensors_only_when_forced():
    if not INTERPRETER:
        pytest.skip("the Triton interpreter is off")
    x = torch.randn(2, 3, 4, 4)
    assert ops.chosen_backend("adain", x) == "cpu"
    with ops.use_backend("triton"):
        assert ops.chosen_backend("adain", x) == "triton"
    triton_backend = ops.get_backend("triton")
    assert triton_backend.reason("adain", x) is None
    assert "only when the triton backend is forced" in triton_backend.automatic_reason("adain", x)
    assert "meta" in triton_backend.reason("adain", torch.empty(1, 1, 1, 1, device="meta"))


def test_unavailable_triton_says_why_in_a_fresh_process():
    """Without a GPU and without the interpreter, the backend is unavailable with the reason."""
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the triton backend is available")
    code = (
        "import torch, i2i_fast.ops as ops\n"
        "x = torch.randn(1, 2, 3, 3)\n"
        "print(ops.get_backend('triton').reason('adain', x))\n"
        "print(ops.chosen_backend('adain', x))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    if STATE.version is None and "not installed" in (STATE.unavailable_reason or ""):
        assert out[0].startswith("triton is not installed")
    else:
        assert out[0].startswith("no CUDA device") and "TRITON_INTERPRET=1" in out[0]
    assert out[1] == "cpu"


def test_info_reports_the_triton_backend():
    from i2i_fast import info

    text = info.report()
    assert STATE.describe() in text
    assert "      triton " in text


# ----- launch plans -----------------------------------------------------------------------------

H100_PROGRAMS = ts.PROGRAMS_PER_SM * 132


@needs_triton
@pytest.mark.parametrize("shape", [(1, 512, 16, 16), (8, 512, 16, 16), (8, 256, 64, 64),
                                   (8, 64, 256, 256), (1, 3, 512, 512), (1, 1, 1, 1),
                                   (3, 5, 7, 1), (2, 1, 1000003), (1, 3000, 1, 1)],
                         ids=str)
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "cl"])
def test_launch_plan_invariants(shape, channels_last):
    tk = _kernels()
    n, c = shape[:2]
    s = math.prod(shape[2:])
    p = tk.plan_launch(n, c, s, channels_last, H100_PROGRAMS)
    for v in (p.block_c, p.block_s):
        assert v & (v - 1) == 0
    assert p.block_c * p.block_s <= tk.TILE_ELEMENTS
    assert p.c_tiles * p.block_c >= c > (p.c_tiles - 1) * p.block_c
    assert p.split_len % p.block_s == 0 or p.splits == 1
    assert p.splits * p.split_len >= s > (p.splits - 1) * p.split_len
    assert 1 <= p.splits <= tk.MAX_SPLITS and 1 <= p.num_warps <= 8


@needs_triton
def test_launch_plan_splits_only_when_groups_are_too_few():
    tk = _kernels()
    # (1, 512, 16, 16): 512 groups of 256 values: one group per program, no split.
    p = tk.plan_launch(1, 512, 256, False, H100_PROGRAMS)
    assert p.splits == 1 and p.block_c == 1 and p.programs(1) == 512
    # (8, 512, 16, 16): enough groups; several per program.
    p = tk.plan_launch(8, 512, 256, False, H100_PROGRAMS)
    assert p.splits == 1 and p.programs(8) >= H100_PROGRAMS
    # (1, 3, 512, 512): 3 groups of 262144 values: the reduction is split across programs.
    p = tk.plan_launch(1, 3, 512 * 512, False, H100_PROGRAMS)
    assert p.splits > 1 and p.programs(1) >= 3 * 32
    # layer statistics of (8, 128, 128, 128): one program per (n, c) row of 16384 values.
    p = tk.plan_launch(8, 128, 128 * 128, False, H100_PROGRAMS)
    assert p.splits == 1 and p.programs(8) == 1024
    # channels-last tiles stay at least 16 channels wide (64 contiguous bytes of float32).
    p = tk.plan_launch(1, 512, 256, True, H100_PROGRAMS)
    assert p.block_c == 16 and p.splits >= 1


# ----- compiling for the GPU without one ----------------------------------------------------------


@pytest.mark.slow
@needs_triton
def test_every_kernel_compiles_for_sm90_with_16_byte_loads():
    """The real Triton compiler builds the kernels the operators launch, for an H100 (sm_90), and
    the streaming kernels read x and dy with 16-byte vector loads."""
    lines = run_compile_check("triton_compile_check.py", "--quick", "--arch", "90")
    summary = lines[-1]
    assert summary["failures"] == 0 and summary["compiled"] >= 15, summary
    kernels = [r for r in lines if "kernel" in r]
    assert {r["kernel"] for r in kernels} == {
        "instance_forward_kernel", "instance_backward_kernel", "partial_moments_kernel",
        "merge_partial_moments_kernel", "normalize_kernel", "partial_grad_sums_kernel",
        "input_grad_kernel"}
    for r in kernels:
        if r["kernel"] != "merge_partial_moments_kernel":
            assert r["widest_load_bytes"] == 16, r


# ----- GPU only ---------------------------------------------------------------------------------


@pytest.mark.cuda
@pytest.mark.skipif(not ON_GPU, reason="needs a CUDA GPU with compiled Triton")
@pytest.mark.parametrize("op", NORM_OPS)
@pytest.mark.parametrize("shape", [(8, 256, 64, 64), (1, 512, 16, 16), (1, 3, 512, 512),
                                   (8, 128, 128, 128)], ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_gpu_method_shapes(op, shape, layout, dtype):
    """The real launch plans (SM count of this GPU), incl. split reductions, at method sizes."""
    _check(op, shape, layout, dtype, "relu", "cuda",
           torch.float32 if dtype == torch.bfloat16 else None)


@pytest.mark.cuda
@pytest.mark.skipif(not ON_GPU, reason="needs a CUDA GPU with compiled Triton")
def test_gpu_compiled_module_with_cuda_graphs():
    """mode="reduce-overhead" (CUDA graphs): the kernels run on the current stream."""
    torch.manual_seed(0)
    model = NormStack().cuda()
    x, s = torch.randn(2, 3, 16, 16, device="cuda"), torch.randn(2, 4, device="cuda")
    with ops.use_backend("reference"):
        ref = model(x, s).detach()
    compiled = torch.compile(model, mode="reduce-overhead", fullgraph=True)
    with ops.use_backend("triton"):
        for _ in range(3):
            out = compiled(x, s)
    assert rel_err(out, ref) < 1e-4
    torch._dynamo.reset()


# ----- benchmark providers ------------------------------------------------------------------------


def test_benchmark_runs_the_triton_provider_and_skips_missing_backends():
    """`i2i-fast bench ops` providers "triton"/"cuda" force one backend; one that cannot run the
    case is skipped with its reason (the figures themselves are for a GPU, not checked here)."""
    if not INTERPRETER:
        pytest.skip("the plumbing is checked on the CPU, in the interpreter")
    from i2i_fast.bench import ops_bench

    logged = []
    case = ops_bench.Case("adain", (1, 2, 8, 8), "relu", "test")
    records = ops_bench.run([case], torch.float32, "cpu", [False], ["forward"],
                            ["eager", "fused", "triton", "cuda"], repeats=3, log=logged.append)
    assert {r["provider"] for r in records} == {"eager", "fused", "triton"}
    assert any("cuda: skipped" in line for line in logged), logged
    table = ops_bench.markdown_table(records)
    assert "| triton |" in table and "| fused |" in table
