"""ops.batch_norm (training-mode BatchNorm + activation) and its nn block, nn.BatchNorm: every
backend against the reference (F.batch_norm(training=True) then the activation), the statistics,
the operator machinery (opcheck, gradcheck, torch.compile, no_grad), and the block against
nn.BatchNorm2d + nn.ReLU including its running statistics."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import i2i_fast.ops as ops
from helpers import TOLERANCE, in_layout, rel_err, threads
from i2i_fast.nn import BatchNorm

F64 = torch.float64
CPU_LOADED = ops.get_backend("cpu").unavailable_reason() is None
needs_cpu = pytest.mark.skipif(not CPU_LOADED, reason="the compiled extension is not loaded")

SHAPES = [
    (2, 3, 5, 7),
    (1, 3, 5, 7),  # N = 1
    (4, 1, 6, 6),  # C = 1
    (3, 4, 1, 1),  # 1x1 spatial: the statistics are over N alone
    (1, 2, 1, 2),  # two values per channel, the fewest allowed
    (2, 3, 127, 129),  # odd planes
    (1, 2, 200, 190),  # planes longer than one task's chunk
    (16, 128, 8, 8),  # TUNIT's smallest guiding-network level: many tiny planes
    (2, 300, 4, 4),  # wide channels-last rows
]
ACTIVATIONS = [None, "relu", "leaky_relu"]


def _args(shape, dtype, param_dtype=None, seed=0, affine=True):
    g = torch.Generator().manual_seed(seed)
    c = shape[1]
    x = (torch.randn(shape, generator=g, dtype=F64) * 2 + 0.7).to(dtype)
    pdt = param_dtype or dtype
    w = (torch.rand(c, generator=g, dtype=F64) * 1.5 + 0.25).to(pdt) if affine else None
    b = torch.randn(c, generator=g, dtype=F64).to(pdt) if affine else None
    return x, w, b


def _grad_out(shape, dtype, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=F64).to(dtype)


def _run(fn, x, w, b, activation, grad_out, layout="contiguous"):
    """(y, mean, var, grad_x, grad_weight, grad_bias, x as run)."""
    xr = in_layout(x.detach(), layout).requires_grad_()
    params = [p.detach().clone().requires_grad_() if p is not None else None for p in (w, b)]
    y, mean, var = fn(xr, *params, activation=activation)
    leaves = [xr] + [p for p in params if p is not None]
    grads = list(torch.autograd.grad(y, leaves, grad_out))
    gx = grads.pop(0)
    gw, gb = (grads.pop(0) if p is not None else None for p in params)
    return y.detach(), mean, var, gx, gw, gb, xr


def _reference(x, w, b, activation, grad_out):
    """The float64 reference on the same values."""
    as64 = (lambda t: None if t is None else t.detach().double())
    return _run(ops.reference.batch_norm, as64(x), as64(w), as64(b), activation,
                grad_out.double())


def _check(shape, layout, dtype, activation, param_dtype=None, affine=True, backend=None):
    x, w, b = _args(shape, dtype, param_dtype, affine=affine)
    grad_out = _grad_out(shape, dtype)
    if backend is None:
        got = _run(ops.batch_norm, x, w, b, activation, grad_out, layout)
    else:
        with ops.use_backend(backend):
            got = _run(ops.batch_norm, x, w, b, activation, grad_out, layout)
    expected = _reference(x, w, b, activation, grad_out)
    tol = TOLERANCE[dtype]
    names = ("out", "mean", "var", "grad_x", "grad_weight", "grad_bias")
    for name, actual, ref in zip(names, got[:6], expected[:6]):
        if ref is None:
            assert actual is None, name
            continue
        err = rel_err(actual, ref)
        assert err <= tol, f"{shape} {layout} {dtype} {activation}: {name} error {err:.2e}"
    y, mean, var, gx, gw, gb, xr = got
    stat_dtype = F64 if dtype == F64 else torch.float32
    assert y.dtype == dtype and gx.dtype == dtype
    assert mean.shape == var.shape == (shape[1],)
    assert mean.dtype == var.dtype == stat_dtype
    assert not mean.requires_grad and not var.requires_grad
    if affine:
        assert gw.dtype == w.dtype and gb.dtype == b.dtype
    if layout == "channels_last" and not xr.is_contiguous():
        assert y.stride() == xr.stride() and gx.stride() == xr.stride()
    else:
        assert y.is_contiguous()


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
def test_float64_all_shapes_and_layouts(shape, layout):
    _check(shape, layout, F64, "relu")


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_float64_activations_and_no_affine(activation, layout):
    _check((3, 5, 6, 7), layout, F64, activation)
    _check((3, 5, 6, 7), layout, F64, activation, affine=False)


@pytest.mark.parametrize("shape", [(2, 3, 127, 129), (16, 16, 16, 16), (2, 300, 4, 4)], ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=str)
def test_float32(shape, layout, activation):
    _check(shape, layout, torch.float32, activation)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_float32_streamed_output(layout):
    """An output of 16 MiB or more is written with streaming stores (cpu_streaming.h); odd
    sizes leave every stretch with unaligned ends. No activation: with millions of values some
    land within float32 rounding of an activation's kink, where float32 and float64 take
    different branches (torch's own batch_norm differs from float64 as much there)."""
    _check((2, 3, 1001, 701), layout, torch.float32, None)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("param_dtype", [None, torch.float32], ids=["same", "float32"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_low_precision(dtype, param_dtype, layout):
    _check((4, 6, 9, 11), layout, dtype, "relu", param_dtype)


def test_the_reference_backend_is_the_official_code():
    """ops.batch_norm on the reference backend is F.batch_norm(training=True) + ReLU, bit for
    bit, and its statistics are the batch's mean and biased variance."""
    x, w, b = _args((4, 3, 5, 6), torch.float32)
    with ops.use_backend("reference"):
        y, mean, var = ops.batch_norm(x, w, b, 1e-5, "relu")
    assert torch.equal(y, torch.relu(F.batch_norm(x, None, None, w, b, True, 0.1, 1e-5)))
    expected_var, expected_mean = torch.var_mean(x.double(), dim=(0, 2, 3), unbiased=False)
    assert rel_err(mean, expected_mean) <= 1e-6 and rel_err(var, expected_var) <= 1e-6


@needs_cpu
def test_statistics_are_stable_far_from_zero():
    """A large mean and a small spread: E[x^2] - E[x]^2 in float32 would lose every digit of the
    variance; the two-pass blocks merged in double keep it."""
    g = torch.Generator().manual_seed(3)
    x64 = 1e4 + torch.randn(8, 3, 33, 35, generator=g, dtype=F64) * 1e-2
    for layout in ("contiguous", "channels_last"):
        x = in_layout(x64.float(), layout)
        _, mean, var = ops.batch_norm(x)
        ref_var, ref_mean = torch.var_mean(x.double(), dim=(0, 2, 3), unbiased=False)
        assert rel_err(mean, ref_mean) <= 1e-7
        assert ((var.double() - ref_var).abs() / ref_var).max() <= 1e-4, layout


@needs_cpu
def test_constant_channels_give_zero_variance():
    x = torch.randn(3, 4, 5, 6)
    x[:, 1] = 0.75
    for layout in ("contiguous", "channels_last"):
        y, mean, var = ops.batch_norm(in_layout(x, layout), torch.ones(4), torch.zeros(4))
        assert mean[1] == 0.75 and var[1] == 0
        assert torch.all(y[:, 1] == 0)


@needs_cpu
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_results_do_not_depend_on_the_thread_count(layout):
    x, w, b = _args((4, 8, 150, 150), torch.float32)  # several tasks per plane / row chunk
    x = in_layout(x, layout)
    grad_out = in_layout(_grad_out(x.shape, torch.float32), layout)
    runs = []
    for n in (1, 2, 3):
        with threads(n):
            runs.append(_run(ops.batch_norm, x, w, b, "relu", grad_out, layout)[:6])
    for run in runs[1:]:
        for a, e in zip(run, runs[0]):
            assert torch.equal(a, e)


@needs_cpu
def test_nan_stays_in_its_channel():
    x = torch.randn(2, 3, 4, 4)
    x[1, 1, 2, 2] = float("nan")
    y, mean, var = ops.batch_norm(x, torch.ones(3), torch.zeros(3))
    assert torch.isnan(y[:, 1]).all() and torch.isnan(mean[1]) and torch.isnan(var[1])
    assert torch.isfinite(y[:, [0, 2]]).all() and torch.isfinite(mean[[0, 2]]).all()


@pytest.mark.parametrize("call, kind, message", [
    (lambda: ops.batch_norm(torch.randn(1, 3, 1, 1)), ValueError,
     "batch_norm: x: expected more than 1 value per channel (N * H * W > 1, as F.batch_norm in "
     "training mode), got shape (1, 3, 1, 1)"),
    (lambda: ops.batch_norm(torch.randn(2, 3, 4)), ValueError,
     "batch_norm: x: expected shape (N, C, H, W), got 3 dims with shape (2, 3, 4)"),
    (lambda: ops.batch_norm(torch.randn(2, 3, 4, 4), torch.ones(4)), ValueError,
     "batch_norm: weight: expected shape (3,), got (4,)"),
    (lambda: ops.batch_norm(torch.randn(2, 3, 4, 4), None, torch.ones(3).double()), TypeError,
     "batch_norm: bias: expected dtype torch.float32 (or float32 for a float16/bfloat16 x), got "
     "torch.float64"),
    (lambda: ops.batch_norm(torch.randn(2, 3, 4, 4), eps=-1.0), ValueError,
     "batch_norm: eps: expected a finite non-negative number, got -1.0"),
    (lambda: ops.batch_norm(torch.randn(2, 3, 4, 4), activation="gelu"), ValueError,
     "batch_norm: activation: expected None, 'relu' or 'leaky_relu', got 'gelu'"),
])
def test_bad_input_is_refused_by_name(call, kind, message):
    with pytest.raises(kind) as caught:
        call()
    assert str(caught.value) == message


def test_one_value_per_channel_is_refused_as_aten_refuses_it():
    """aten (F.batch_norm in training mode) refuses the same shapes."""
    for shape in [(1, 3, 1, 1), (1, 1, 1, 1)]:
        with pytest.raises(ValueError, match="more than 1 value per channel"):
            F.batch_norm(torch.randn(shape), None, None, training=True)
        with pytest.raises(ValueError, match="more than 1 value per channel"):
            ops.batch_norm(torch.randn(shape))


@needs_cpu
def test_the_cuda_backend_does_not_claim_batch_norm():
    """No CUDA kernel yet: on a CUDA tensor batch_norm runs the triton backend (or the
    reference), never a missing CUDA kernel."""
    assert "batch_norm" not in ops.get_backend("cuda").ops


# ----- the operator machinery -----------------------------------------------------------------


@needs_cpu
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_opcheck(layout):
    x, w, b = _args((3, 4, 5, 6), torch.float32)
    x = in_layout(x, layout)
    lib = torch.ops.i2i_fast
    torch.library.opcheck(lib.batch_norm, (x.requires_grad_(), w.requires_grad_(),
                                            b.requires_grad_(), 1e-5, "relu", 0.2))
    torch.library.opcheck(lib.batch_norm, (x.detach(), None, None, 1e-3, "leaky_relu", 0.1))
    y, mean, var = lib.batch_norm_forward(x.detach(), w.detach(), b.detach(), 1e-5, "relu", 0.2)
    torch.library.opcheck(lib.batch_norm_forward, (x.detach(), w.detach(), b.detach(), 1e-5,
                                                   "relu", 0.2))
    torch.library.opcheck(lib.batch_norm_backward, (torch.randn_like(y), x.detach(), w.detach(),
                                                    b.detach(), mean, var, 1e-5, "relu", 0.2))


@needs_cpu
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_gradcheck(layout, activation):
    x, w, b = _args((3, 2, 3, 4), F64)
    x = in_layout(x, layout).requires_grad_()
    w.requires_grad_()
    b.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda *a: ops.batch_norm(*a, activation=activation)[0], (x, w, b))


@needs_cpu
def test_double_backward_is_refused_by_name():
    x, w, b = (t.requires_grad_() for t in _args((3, 2, 3, 4), F64))
    y, _, _ = ops.batch_norm(x, w, b, activation="relu")
    (gx,) = torch.autograd.grad((y * y).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="batch_norm_backward"):
        torch.autograd.grad(gx.sum(), x)


@needs_cpu
@pytest.mark.parametrize("dynamic", [None, True], ids=["default", "dynamic"])
def test_compiled_fullgraph(dynamic):
    torch._dynamo.reset()

    def step(x, w, b):
        y, mean, var = ops.batch_norm(x, w, b, 1e-5, "relu")
        return y, mean, var

    compiled = torch.compile(step, fullgraph=True, dynamic=dynamic)
    try:
        for shape in [(4, 3, 6, 6), (4, 3, 8, 10), (2, 3, 12, 6)]:
            x, w, b = _args(shape, torch.float32, seed=len(shape) + shape[2])
            grad_out = _grad_out(shape, torch.float32)
            got = _run(lambda *a, activation: compiled(*a), x, w, b, None, grad_out)
            expected = _run(lambda *a, activation: step(*a), x, w, b, None, grad_out)
            for a, e in zip(got[:6], expected[:6]):
                assert rel_err(a, e) <= 1e-5
    finally:
        torch._dynamo.reset()


@needs_cpu
def test_no_grad_and_inference_mode_give_the_same_results():
    x, w, b = _args((3, 4, 5, 6), torch.float32)
    expected = ops.batch_norm(x, w.requires_grad_(), b, activation="relu")
    for context in (torch.no_grad, torch.inference_mode):
        with context():
            got = ops.batch_norm(x, w, b, activation="relu")
        assert not got[0].requires_grad
        for a, e in zip(got, expected):
            assert torch.equal(a, e.detach())


# ----- the nn block ---------------------------------------------------------------------------


def _official(c, dtype):
    """TUNIT's guiding network: nn.BatchNorm2d(C) then nn.ReLU()."""
    return nn.Sequential(nn.BatchNorm2d(c), nn.ReLU()).to(dtype)


def _pair(c, dtype, seed=5):
    official = _official(c, dtype)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # parameters away from their init, so that their gradients matter
        official[0].weight.copy_(torch.rand(c, generator=g, dtype=F64) + 0.5)
        official[0].bias.copy_(torch.randn(c, generator=g, dtype=F64) * 0.3)
    fused = BatchNorm(c, activation="relu").to(dtype)
    fused.load_state_dict(official[0].state_dict())
    return official, fused


@pytest.mark.parametrize("backend", ["automatic", "reference"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype, tol", [(F64, 1e-12), (torch.float32, 1e-5)], ids=str)
def test_block_trains_like_batchnorm2d_and_relu(backend, layout, dtype, tol):
    """Outputs, gradients of x, weight and bias, and the running statistics and
    num_batches_tracked after several steps (momentum changed between steps, as TUNIT's guiding
    network does, and None: the cumulative average)."""
    if backend == "automatic" and not CPU_LOADED and dtype == F64:
        pytest.skip("the compiled extension is not loaded")
    c = 6
    official, fused = _pair(c, dtype)
    for step, momentum in enumerate([0.1, 0.1, 0.3, None, 0.05]):
        official[0].momentum = momentum
        fused.momentum = momentum
        shape = (4 + step, c, 5 + step, 7)
        x = in_layout(_args(shape, dtype, seed=10 + step)[0], layout)
        grad_out = _grad_out(shape, dtype, seed=20 + step)
        xo, xf = x.clone().requires_grad_(), x.clone().requires_grad_()
        yo = official(xo)
        if backend == "automatic":
            yf = fused(xf)
        else:
            with ops.use_backend(backend):
                yf = fused(xf)
        go = torch.autograd.grad(yo, (xo, official[0].weight, official[0].bias), grad_out)
        gf = torch.autograd.grad(yf, (xf, fused.weight, fused.bias), grad_out)
        assert rel_err(yf, yo) <= tol, f"step {step}: out"
        for name, a, e in zip(("x", "weight", "bias"), gf, go):
            assert rel_err(a, e) <= tol, f"step {step}: grad {name}"
        for name in ("running_mean", "running_var"):
            a, e = getattr(fused, name), getattr(official[0], name)
            assert rel_err(a, e) <= tol, f"step {step}: {name}"
        assert fused.num_batches_tracked == official[0].num_batches_tracked == step + 1


def test_block_eval_mode_and_no_running_stats_match_batchnorm2d():
    official, fused = _pair(5, F64)
    x = _args((3, 5, 4, 6), F64)[0]
    official.train()(x)
    fused.train()(x)
    official.eval()
    fused.eval()
    x2 = _args((2, 5, 3, 3), F64, seed=9)[0]
    assert rel_err(fused(x2), official(x2)) <= 1e-12
    untracked = nn.Sequential(nn.BatchNorm2d(5, track_running_stats=False), nn.ReLU()).double()
    block = BatchNorm(5, track_running_stats=False, activation="relu").double()
    for mode in ("train", "eval"):
        getattr(untracked, mode)()
        getattr(block, mode)()
        assert rel_err(block(x2), untracked(x2)) <= 1e-12
    assert block.running_mean is None and set(block.state_dict()) == {"weight", "bias"}


def test_block_state_dict_round_trips_with_batchnorm2d():
    official, fused = _pair(4, torch.float32)
    official.train()(torch.randn(3, 4, 5, 5))
    fused.load_state_dict(official[0].state_dict())
    assert list(fused.state_dict()) == list(official[0].state_dict()) == [
        "weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    plain = nn.BatchNorm2d(4)
    plain.load_state_dict(fused.state_dict())
    for k, v in official[0].state_dict().items():
        assert torch.equal(plain.state_dict()[k], v)
    assert "activation=relu" in repr(fused)


def test_block_refuses_what_batchnorm2d_refuses():
    with pytest.raises(ValueError, match="expected 4D input"):
        BatchNorm(3)(torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        BatchNorm(3).train()(torch.randn(1, 3, 1, 1))


@needs_cpu
def test_block_compiles_fullgraph_and_updates_its_statistics():
    torch._dynamo.reset()
    official, fused = _pair(4, torch.float32)
    compiled = torch.compile(fused, fullgraph=True)
    try:
        for step, momentum in enumerate([0.1, 0.2]):
            official[0].momentum = fused.momentum = momentum
            x = _args((3, 4, 6, 6), torch.float32, seed=step)[0]
            assert rel_err(compiled(x), official(x)) <= 1e-5
            assert rel_err(fused.running_var, official[0].running_var) <= 1e-5
            assert rel_err(fused.running_mean, official[0].running_mean) <= 1e-5
        assert fused.num_batches_tracked == 2
    finally:
        torch._dynamo.reset()


# ----- the triton backend (the Triton interpreter on CPU tensors without a GPU) ---------------

from triton_test_devices import DEVICES  # noqa: E402


def _check_triton(shape, layout, dtype, activation, device, param_dtype=None, affine=True):
    x, w, b = _args(shape, dtype, param_dtype, affine=affine)
    x, w, b = (None if t is None else t.to(device) for t in (x, w, b))
    grad_out = _grad_out(shape, dtype).to(device)
    with ops.use_backend("triton"):
        got = _run(ops.batch_norm, x, w, b, activation, grad_out, layout)
    expected = _reference(*(None if t is None else t.cpu() for t in (x, w, b)), activation,
                          grad_out.cpu())
    names = ("out", "mean", "var", "grad_x", "grad_weight", "grad_bias")
    for name, actual, ref in zip(names, got[:6], expected[:6]):
        if ref is None:
            assert actual is None, name
            continue
        err = rel_err(actual.cpu(), ref)
        assert err <= TOLERANCE[dtype], f"{shape} {layout} {dtype}: {name} error {err:.2e}"
    y, mean, var, gx = got[:4]
    assert y.dtype == gx.dtype == dtype and mean.shape == var.shape == (shape[1],)
    if layout == "channels_last":
        assert y.stride() == got[6].stride()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (3, 4, 1, 1), (1, 2, 70, 90), (4, 70, 3, 3)],
                         ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
def test_triton_float64(device, shape, layout):
    _check_triton(shape, layout, F64, "relu", device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=str)
def test_triton_float32_and_no_affine(device, activation):
    _check_triton((3, 5, 6, 7), "contiguous", torch.float32, activation, device)
    _check_triton((3, 5, 6, 7), "channels_last", torch.float32, activation, device,
                  affine=False)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_triton_low_precision(device, dtype):
    _check_triton((4, 6, 9, 11), "channels_last", dtype, "relu", device, torch.float32)


@pytest.mark.parametrize("device", DEVICES)
def test_triton_opcheck_gradcheck_and_compile(device):
    from i2i_fast.ops.normalization import triton as tk

    x, w, b = (t.to(device) for t in _args((3, 2, 3, 4), F64))
    torch.library.opcheck(tk.batch_norm_forward_op, (x, w.requires_grad_(), b, 1e-5, "relu", 0.2))
    y, mean, var = tk.batch_norm_forward_op(x, w.detach(), b, 1e-5, "relu", 0.2)
    torch.library.opcheck(tk.batch_norm_backward_op, (torch.randn_like(y), x, w.detach(), b,
                                                      mean, var, 1e-5, "relu", 0.2))
    leaves = (x.clone().requires_grad_(), w.detach().clone().requires_grad_(),
              b.clone().requires_grad_())
    with ops.use_backend("triton"):
        assert torch.autograd.gradcheck(lambda *a: ops.batch_norm(*a, activation="relu")[0],
                                         leaves)
        torch._dynamo.reset()
        try:
            compiled = torch.compile(lambda *a: ops.batch_norm(*a, 1e-5, "relu"), fullgraph=True)
            for got, expected in zip(compiled(x, w, b), ops.batch_norm(x, w, b, 1e-5, "relu")):
                assert rel_err(got.detach(), expected.detach()) <= TOLERANCE[F64]
        finally:
            torch._dynamo.reset()
