"""The triton backend of the GAN losses: gan_loss and r1_penalty.

Values and every gradient against the float64 reference (every mode and target, every reduction,
one and several scales of odd sizes, more scales than one launch takes, segments longer than one
tile, head selection with int64/int32 domains, layouts, dtypes), double backward of R1, gradcheck,
opcheck, torch.compile, out-of-range domains on direct operator calls, backend choice, and
compilation of every kernel variant for sm_90.

Without a GPU the kernels run in the Triton interpreter on CPU tensors (tests/conftest.py sets
TRITON_INTERPRET=1 before i2i_fast is imported; the tests force the triton backend). With a GPU the
same checks run on CUDA tensors (parameters marked `cuda`). Shapes are tiny: the interpreter runs
at numpy speed.
"""

from __future__ import annotations

import math

import pytest
import torch

import i2i_fast.ops as ops
from helpers import channels_last, strided_view
from loss_helpers import (
    GRAD_TOLERANCE,
    LOSS_TOLERANCE,
    MODE_TARGETS,
    REDUCTIONS,
    check_sigmoid_bce_extremes,
    close,
    make_domain,
    make_outputs,
    upstream,
)
from triton_test_devices import DEVICES, INTERPRETER, ON_GPU, needs_triton, run_compile_check


# Scale sets (shapes without the batch dimension): odd sizes, and more scales than one launch.
SCALES = {
    "one": [(1, 3, 5)],
    "flat": [()],
    "odd3": [(1, 1, 1), (1, 3, 5), (1, 7, 7)],
    "six": [(1, 2, 2), (1, 1, 3), (), (1, 5, 1), (1, 1, 1), (1, 3, 3)],  # > MAX_SCALES
    "long": [(1, 37, 41)],  # 1517 elements per sample: several tiles per segment
}
HEADS = {"K3": [(3,)], "K4-2scales": [(4, 3, 3), (4, 1, 1)], "K-differs": [(5, 2, 2), (3,)]}


def _mt_id(mt):
    return f"{mt[0]}-{mt[1]}"


def _triton(fn, *args, **kwargs):
    with ops.use_backend("triton"):
        return fn(*args, **kwargs)


def _loss_and_grads(fn, outputs, target, mode, domain, reduction, grad_loss):
    leaves = [x.detach().clone().requires_grad_() for x in outputs]
    loss = fn(leaves, target, mode, domain=domain, reduction=reduction)
    grads = torch.autograd.grad(loss, leaves, grad_loss.to(device=loss.device, dtype=loss.dtype))
    return loss.detach(), grads


def _check(outputs, target, mode, domain, reduction, dtype):
    """Triton loss and gradients vs the float64 reference on the same values."""
    batch = outputs[0].shape[0]
    g = upstream(reduction, batch)
    loss, grads = _loss_and_grads(lambda *a, **k: _triton(ops.gan_loss, *a, **k), outputs,
                                  target, mode, domain, reduction, g)
    ref_loss, ref_grads = _loss_and_grads(ops.reference.gan_loss,
                                          [x.double() for x in outputs], target, mode, domain,
                                          reduction, g)
    what = f"{mode}/{target}/{reduction}/{dtype}"
    assert loss.dtype == (torch.float64 if dtype == torch.float64 else torch.float32), what
    assert loss.shape == ((batch,) if reduction == "none" else ()), what
    err = close(loss.cpu(), ref_loss.cpu())
    assert err <= LOSS_TOLERANCE[dtype], f"{what}: loss error {err:.2e}"
    for i, (gr, rg, x) in enumerate(zip(grads, ref_grads, outputs)):
        assert gr.dtype == x.dtype and gr.shape == x.shape and gr.is_contiguous(), what
        err = close(gr.cpu(), rg.cpu())
        assert err <= GRAD_TOLERANCE[dtype], f"{what}: grad of outputs[{i}] error {err:.2e}"
    return loss, grads


def _to(tensors, device):
    return [t.to(device) for t in tensors]


# ----- gan_loss values and gradients -----------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode_target", MODE_TARGETS, ids=_mt_id)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_every_mode_target_reduction_on_three_odd_scales(device, mode_target, reduction):
    mode, target = mode_target
    outputs = _to(make_outputs(3, SCALES["odd3"], torch.float64), device)
    _check(outputs, target, mode, None, reduction, torch.float64)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("scales", list(SCALES), ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("mode_target", [("lsgan", "fake"), ("nsgan", 0.3)], ids=_mt_id)
def test_scale_sets(device, scales, reduction, mode_target):
    mode, target = mode_target
    outputs = _to(make_outputs(2, SCALES[scales], torch.float64, seed=3), device)
    _check(outputs, target, mode, None, reduction, torch.float64)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("heads", list(HEADS), ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("mode_target", [("nsgan", "real"), ("hinge", "fake"), ("lsgan", 0.5)],
                         ids=_mt_id)
def test_heads_with_random_domains(device, heads, reduction, mode_target):
    mode, target = mode_target
    batch = 5
    shapes = HEADS[heads]
    outputs = _to(make_outputs(batch, shapes, torch.float64), device)
    domain = make_domain(batch, min(s[0] for s in shapes)).to(device)
    _, grads = _check(outputs, target, mode, domain, reduction, torch.float64)
    # The heads a sample does not select get exactly zero gradient.
    for x, gr in zip(outputs, grads):
        mask = torch.ones(x.shape[:2], dtype=torch.bool, device=device)
        mask[torch.arange(batch, device=device), domain] = False
        assert torch.all(gr[mask] == 0)


@pytest.mark.parametrize("device", DEVICES)
def test_int32_and_strided_domain(device):
    outputs = _to(make_outputs(6, [(3, 2)], torch.float32), device)
    d32 = make_domain(6, 3, dtype=torch.int32).to(device)
    _check(outputs, "real", "nsgan", d32, "none", torch.float32)
    strided = torch.stack([make_domain(6, 3), torch.zeros(6, dtype=torch.int64)], 1)[:, 0]
    assert strided.stride(0) == 2
    _check(outputs, "fake", "hinge", strided.to(device), "mean", torch.float32)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_low_precision(device, dtype):
    outputs = _to(make_outputs(3, SCALES["odd3"], dtype), device)
    for mode, target in (("lsgan", "real"), ("nsgan", "fake"), ("hinge", "real")):
        for reduction in REDUCTIONS:
            _check(outputs, target, mode, None, reduction, dtype)


@pytest.mark.parametrize("device", DEVICES)
def test_non_contiguous_outputs(device):
    base = _to(make_outputs(3, [(2, 5, 6), (1, 3, 3)], torch.float64), device)
    outputs = [channels_last(base[0]), strided_view(base[1])]
    assert not outputs[0].is_contiguous() and not outputs[1].is_contiguous()
    _check(outputs, "real", "lsgan", None, "none", torch.float64)


@pytest.mark.parametrize("device", DEVICES)
def test_extreme_logits_are_finite_and_accurate(device):
    """nsgan at |x| up to 1e4: no overflow; float64 values within 1e-12 of the reference."""
    x = torch.tensor([[-1e4, -50.0, -20.0, -1e-3, 0.0, 1e-3, 20.0, 50.0, 1e4]],
                     dtype=torch.float64, device=device)
    for target in ("real", "fake", 0.3):
        _check([x], target, "nsgan", None, "none", torch.float64)
    x32 = x.float()
    loss = _triton(ops.gan_loss, x32, "real", "nsgan")
    assert torch.isfinite(loss)


@pytest.mark.parametrize("device", DEVICES)
def test_nan_and_inf_propagate_like_the_reference(device):
    x = torch.tensor([[0.5, float("nan"), -1.0], [2.0, 0.0, float("inf")]], dtype=torch.float64,
                     device=device)
    for mode, target in (("lsgan", "real"), ("nsgan", "fake"), ("hinge", "real"),
                         ("hinge", "fake"), ("wgan", "real"), ("sigmoid_bce", 0.5)):
        loss = _triton(ops.gan_loss, x, target, mode, reduction="none")
        ref = ops.reference.gan_loss(x, target, mode, reduction="none")
        assert close(loss.cpu(), ref.cpu()) <= 1e-12, (mode, target, loss, ref)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_sigmoid_bce_where_the_sigmoid_saturates_matches_the_reference(device, dtype):
    check_sigmoid_bce_extremes(lambda *a, **k: _triton(ops.gan_loss, *a, **k), dtype, device)


# ----- r1_penalty ------------------------------------------------------------------------------


def _r1_check(grads, weight, reduction, dtype, layout_kept=True):
    leaf = grads.detach().requires_grad_()  # same storage: keeps the layout and the offset
    loss = _triton(ops.r1_penalty, leaf, weight, reduction)
    g = upstream(reduction, grads.shape[0]).to(device=grads.device, dtype=loss.dtype)
    (dx,) = torch.autograd.grad(loss, leaf, g)
    ref_leaf = grads.detach().double().requires_grad_()
    ref = ops.reference.r1_penalty(ref_leaf, weight, reduction)
    (rdx,) = torch.autograd.grad(ref, ref_leaf, g.double())
    what = f"r1 {tuple(grads.shape)} {reduction} {dtype}"
    assert loss.dtype == (torch.float64 if dtype == torch.float64 else torch.float32), what
    assert close(loss.cpu(), ref.cpu()) <= LOSS_TOLERANCE[dtype], what
    assert dx.dtype == dtype and close(dx.cpu(), rdx.cpu()) <= GRAD_TOLERANCE[dtype], what
    if layout_kept:
        assert dx.stride() == grads.stride(), what
    else:
        assert dx.is_contiguous(), what


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 3, 5, 7), (2, 1, 65, 67), (4, 5)], ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_r1_values_and_gradients(device, shape, reduction):
    """(2, 1, 65, 67): 4355 elements per sample, two chunks per sample."""
    g = torch.randn(shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    _r1_check(g.to(device), 0.5, reduction, torch.float64)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_r1_low_precision_and_layouts(device, dtype):
    g = (torch.randn(2, 4, 6, 5, generator=torch.Generator().manual_seed(6)) * 0.1).to(device,
                                                                                      dtype)
    _r1_check(g, 1.0, "mean", dtype)
    _r1_check(channels_last(g), 10.0, "none", dtype)
    _r1_check(strided_view(g), 0.5, "sum", dtype, layout_kept=False)


@pytest.mark.parametrize("device", DEVICES)
def test_r1_double_backward_reaches_the_discriminator(device):
    """The R1 path of a training step: grads taken with create_graph, the penalty's gradient
    reaches D's parameters; the same as the reference's."""
    torch.manual_seed(0)
    w = torch.randn(3, 4, dtype=torch.float64, device=device, requires_grad=True)
    x = torch.randn(5, 3, dtype=torch.float64, device=device, requires_grad=True)

    def d_grad_of_penalty(r1):
        out = torch.tanh(x @ w).sum()
        (gx,) = torch.autograd.grad(out, x, create_graph=True)
        (gw,) = torch.autograd.grad(r1(gx, 0.5, "mean"), w)
        return gw

    fused = d_grad_of_penalty(lambda *a: _triton(ops.r1_penalty, *a))
    ref = d_grad_of_penalty(ops.reference.r1_penalty)
    assert close(fused.cpu(), ref.cpu()) <= 1e-12


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_r1_gradcheck_and_gradgradcheck(device, reduction):
    g = torch.randn(2, 2, 3, dtype=torch.float64, device=device, requires_grad=True)
    fn = lambda t: _triton(ops.r1_penalty, t, 0.7, reduction)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (g,))
    assert torch.autograd.gradgradcheck(fn, (g,))


# ----- operator checks -------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_gan_loss_gradcheck(device):
    xs = [torch.randn(2, 2, 3, dtype=torch.float64, device=device, requires_grad=True),
          torch.randn(2, 2, dtype=torch.float64, device=device, requires_grad=True)]
    y = torch.tensor([1, 0], device=device)
    for mode, target in (("nsgan", 0.3), ("hinge", "real")):
        assert torch.autograd.gradcheck(
            lambda a, b: _triton(ops.gan_loss, [a, b], target, mode, domain=y,
                                 reduction="none"), xs)


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck(device):
    from i2i_fast.ops.gan_loss import triton as tk

    xs = [torch.randn(3, 1, 4, 4, device=device, requires_grad=True),
          torch.randn(3, 1, 2, 2, device=device, requires_grad=True)]
    heads = [torch.randn(3, 3, device=device, requires_grad=True)]
    y = torch.tensor([2, 0, 1], device=device)
    torch.library.opcheck(tk.gan_loss_op, (xs, "lsgan", "real", 0.0, None, "mean"))
    torch.library.opcheck(tk.gan_loss_op, (heads, "nsgan", "label", 0.5, y, "none"))
    torch.library.opcheck(tk.gan_loss_backward_op,
                          (torch.tensor(1.5, device=device), [x.detach() for x in xs], "hinge",
                           "fake", 0.0, None, "sum"))
    g = torch.randn(2, 3, 4, 5, device=device, requires_grad=True)
    torch.library.opcheck(tk.r1_penalty_op, (g, 0.5, "mean"))
    torch.library.opcheck(tk.r1_penalty_op, (channels_last(g.detach()).requires_grad_(), 1.0,
                                             "none"))
    torch.library.opcheck(tk.r1_penalty_backward_op,
                          (torch.ones(2, device=device), g.detach(), 0.5, "none"))


@pytest.mark.parametrize("device", DEVICES)
def test_compile_fullgraph_matches_the_reference(device):
    """torch.compile(fullgraph=True) of a loss step on the triton backend: loss and gradients."""
    xs = _to(make_outputs(2, [(1, 4, 4), (1, 2, 2)], torch.float32), device)
    grads_in = torch.randn(2, 3, 4, 4, device=device)

    def step(a, b, r):
        return (ops.gan_loss([a, b], "real", "lsgan") + ops.gan_loss([a, b], "fake", "hinge")
                + ops.r1_penalty(r, 0.5))

    compiled = torch.compile(step, fullgraph=True)
    leaves = [t.detach().clone().requires_grad_() for t in (*xs, grads_in)]
    with ops.use_backend("triton"):
        loss = compiled(*leaves)
    grads = torch.autograd.grad(loss, leaves)
    ref_leaves = [t.detach().clone().requires_grad_() for t in (*xs, grads_in)]
    ref = (ops.reference.gan_loss(ref_leaves[:2], "real", "lsgan")
           + ops.reference.gan_loss(ref_leaves[:2], "fake", "hinge")
           + ops.reference.r1_penalty(ref_leaves[2], 0.5))
    ref_grads = torch.autograd.grad(ref, ref_leaves)
    assert close(loss.detach().cpu(), ref.detach().cpu()) <= 1e-5
    for a, b in zip(grads, ref_grads):
        assert close(a.cpu(), b.cpu()) <= 1e-5
    torch._dynamo.reset()


@pytest.mark.parametrize("device", DEVICES)
def test_gan_loss_double_backward_is_an_error(device):
    x = torch.randn(2, 3, device=device, requires_grad=True)
    loss = _triton(ops.gan_loss, x, "real", "lsgan")
    (g,) = torch.autograd.grad(loss, x, create_graph=True)
    with pytest.raises(RuntimeError):
        torch.autograd.grad(g.sum(), x)


@pytest.mark.parametrize("device", DEVICES)
def test_out_of_range_domain_on_a_direct_call_gives_nan_not_a_bad_read(device):
    """i2i_fast.ops checks the indices (a host sync); a direct operator call does not, and the
    kernels then give NaN for that sample instead of reading outside the tensor."""
    from i2i_fast.ops.gan_loss import triton as tk

    x = torch.randn(3, 2, 4, device=device)
    y = torch.tensor([0, 5, -1], device=device)
    loss = tk.gan_loss_op([x], "lsgan", "real", 0.0, y, "none")
    assert torch.isfinite(loss[0]) and torch.isnan(loss[1]) and torch.isnan(loss[2])
    (gx,) = tk.gan_loss_backward_op(torch.ones(3, device=device), [x], "lsgan", "real", 0.0, y,
                                    "none")
    assert torch.isfinite(gx[0]).all() and torch.isnan(gx[1:]).all()
    with pytest.raises(ValueError, match=r"domain: expected indices in \[0, 2\)"):
        _triton(ops.gan_loss, x, "real", "lsgan", domain=y)


@pytest.mark.parametrize("device", DEVICES)
def test_direct_operator_calls_are_checked(device):
    from i2i_fast.ops.gan_loss import triton as tk

    x = torch.randn(2, 3, device=device)
    with pytest.raises(ValueError, match="mode: expected one of"):
        tk.gan_loss_op([x], "bogus", "real", 0.0, None, "mean")
    with pytest.raises(ValueError, match="reduction: expected one of"):
        tk.gan_loss_op([x], "lsgan", "real", 0.0, None, "avg")
    with pytest.raises(ValueError, match="numeric label"):
        tk.gan_loss_op([x], "hinge", "label", 0.5, None, "mean")
    with pytest.raises(ValueError, match="batch size"):
        tk.gan_loss_op([x, torch.randn(3, 3, device=device)], "lsgan", "real", 0.0, None, "mean")
    with pytest.raises(TypeError, match="domain: expected an int64 or int32"):
        tk.gan_loss_op([x], "lsgan", "real", 0.0, torch.zeros(2, device=device), "mean")
    with pytest.raises(ValueError, match="grad_loss: expected shape"):
        tk.gan_loss_backward_op(torch.ones(3, device=device), [x], "lsgan", "real", 0.0, None,
                                "none")
    with pytest.raises(ValueError, match="weight: expected a finite"):
        tk.r1_penalty_op(x, float("nan"), "mean")


# ----- backend choice --------------------------------------------------------------------------


@needs_triton
def test_triton_backend_has_the_loss_ops():
    backend = ops.get_backend("triton")
    for op in ("gan_loss", "r1_penalty"):
        assert op in backend.ops


@pytest.mark.skipif(not INTERPRETER, reason="the Triton interpreter is off")
def test_interpreter_takes_cpu_tensors_only_when_forced():
    x = torch.randn(2, 3)
    assert ops.chosen_backend("gan_loss", x) != "triton"
    assert ops.chosen_backend("r1_penalty", x) != "triton"
    with ops.use_backend("triton"):
        assert ops.chosen_backend("gan_loss", x) == "triton"


@pytest.mark.slow
@needs_triton
def test_every_kernel_compiles_for_sm90():
    """The real Triton compiler builds every kernel variant the operators launch, for an H100
    (sm_90); R1's streaming kernels read with 16-byte vector loads where aligned."""
    lines = run_compile_check("triton_gan_loss_compile_check.py", "--arch", "90")
    summary = lines[-1]
    assert summary["failures"] == 0 and summary["compiled"] >= 100, summary
    kernels = [r for r in lines if "kernel" in r]
    assert {r["kernel"] for r in kernels} == {
        "gan_loss_tiles_kernel", "finalize_kernel", "gan_loss_grads_kernel",
        "r1_chunk_sums_kernel", "r1_grads_kernel"}
    # The aligned R1 cases (per-sample size a multiple of 16 bytes) compile to 16-byte loads; the
    # odd and single-element cases may not.
    for name in ("r1_chunk_sums_kernel", "r1_grads_kernel"):
        loads = [r["widest_load_bytes"] for r in kernels if r["kernel"] == name]
        assert 16 in loads, (name, loads)


# ----- GPU only ---------------------------------------------------------------------------------


@pytest.mark.cuda
@pytest.mark.skipif(not ON_GPU, reason="needs a CUDA GPU with compiled Triton")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_gpu_method_shapes(dtype):
    """MUNIT's 3 scales at batch 8, StarGAN v2's K = 3 heads, R1 at (8, 3, 256, 256)."""
    munit = _to(make_outputs(8, [(1, 16, 16), (1, 8, 8), (1, 4, 4)], dtype), "cuda")
    for target in ("real", "fake", "generator"):
        _check(munit, target, "lsgan", None, "mean", dtype)
    heads = _to(make_outputs(8, [(3,)], dtype), "cuda")
    _check(heads, "real", "nsgan", make_domain(8, 3).cuda(), "mean", dtype)
    g = (torch.randn(8, 3, 256, 256, device="cuda") * 1e-2).to(dtype)
    _r1_check(g, 0.5, "mean", dtype)
    assert math.isfinite(float(_triton(ops.r1_penalty, g, 0.5)))


@pytest.mark.skipif(not INTERPRETER, reason="the Triton interpreter is off")
def test_loss_benchmark_runs_the_triton_provider_and_skips_missing_backends(monkeypatch):
    from i2i_fast.bench import loss_bench

    monkeypatch.setattr(loss_bench, "inner_steps", lambda case: 1)
    case = next(c for c in loss_bench.CASES if c.name == "munit_g")
    logged = []
    records = loss_bench.run([case], torch.float32, "cpu", ["forward_backward"],
                             ["eager", "cuda", "triton"], repeats=2, log=logged.append)
    assert {r["provider"] for r in records} == {"eager", "triton"}
    assert any("cuda skipped (" in line for line in logged), logged
    triton_row = next(r for r in records if r["provider"] == "triton")
    assert triton_row["speedup_vs_eager"] > 0
    assert "| default | munit_g | forward_backward | triton |" in loss_bench.markdown_table(records)
