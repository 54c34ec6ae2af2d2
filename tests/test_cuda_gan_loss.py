"""The CUDA kernels of the GAN losses (gan_loss, r1_penalty), on a GPU (skipped without one).

Mirrors the CPU tests (test_gan_loss_values / _operators / _inputs) on CUDA tensors with the cuda
backend forced (``use_backend("cuda")``: nothing falls back silently to another backend). Values
and every gradient against the float64 reference for every mode, target and reduction, on one and
several scales of odd sizes, more scales than one launch takes (kMaxScales = 8), segments longer
than one tile, head selection (int64 / int32 / strided domains), dtypes and layouts; R1 on aligned
(16-byte loads) and unaligned inputs, double backward; determinism; gradcheck, gradgradcheck,
opcheck, torch.compile with the graph checked for the fused operators, CUDA graphs (explicit
capture and mode="reduce-overhead"), a side stream, NaN/Inf, and out-of-range domains on direct
operator calls (NaN, no bad read). Outputs are allocated from memory poisoned with NaN, so an
element a kernel forgets to write fails the comparison.
"""

from __future__ import annotations

import math

import pytest
import torch

import i2i_fast.ops as ops
from helpers import channels_last, poison_allocator, strided_view
from loss_helpers import (
    GRAD_TOLERANCE,
    HEAD_SETS,
    LOSS_TOLERANCE,
    MODE_TARGETS,
    REDUCTIONS,
    SCALE_SETS,
    check_sigmoid_bce_extremes,
    close,
    make_domain,
    make_outputs,
    upstream,
)

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason="no CUDA device (torch.cuda.is_available() is False)"),
]

lib = torch.ops.i2i_fast


def _mt_id(mt):
    return f"{mt[0]}-{mt[1]}"


def _cuda(tensors):
    return [t.cuda() for t in tensors]


def _loss_and_grads(fn, outputs, target, mode, domain, reduction, grad_loss):
    leaves = [x.detach().clone().requires_grad_() for x in outputs]
    loss = fn(leaves, target, mode, domain=domain, reduction=reduction)
    grads = torch.autograd.grad(loss, leaves, grad_loss.to(device=loss.device, dtype=loss.dtype))
    return loss.detach(), grads


def _cuda_gan_loss(*args, **kwargs):
    with ops.use_backend("cuda"):
        return ops.gan_loss(*args, **kwargs)


def _check(outputs, target, mode, domain, reduction, dtype):
    batch = outputs[0].shape[0]
    g = upstream(reduction, batch)
    poison_allocator(sum(x.numel() * x.element_size() for x in outputs))
    loss, grads = _loss_and_grads(_cuda_gan_loss, outputs, target, mode, domain, reduction, g)
    ref_loss, ref_grads = _loss_and_grads(ops.reference.gan_loss,
                                          [x.double() for x in outputs], target, mode, domain,
                                          reduction, g)
    what = f"{mode}/{target}/{reduction}/{dtype}"
    assert loss.is_cuda and loss.dtype == (
        torch.float64 if dtype == torch.float64 else torch.float32), what
    assert loss.shape == ((batch,) if reduction == "none" else ()), what
    err = close(loss, ref_loss)
    assert err <= LOSS_TOLERANCE[dtype], f"{what}: loss error {err:.2e}"
    for i, (gr, rg, x) in enumerate(zip(grads, ref_grads, outputs)):
        assert gr.dtype == x.dtype and gr.shape == x.shape and gr.is_contiguous(), what
        err = close(gr, rg)
        assert err <= GRAD_TOLERANCE[dtype], f"{what}: grad of outputs[{i}] error {err:.2e}"
    return loss, grads


# ----- gan_loss values and gradients -----------------------------------------------------------


@pytest.mark.parametrize("mode_target", MODE_TARGETS, ids=_mt_id)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("scales", list(SCALE_SETS), ids=str)
@pytest.mark.parametrize("batch", [1, 3])
def test_float64_every_mode_target_reduction(mode_target, reduction, scales, batch):
    mode, target = mode_target
    outputs = _cuda(make_outputs(batch, SCALE_SETS[scales], torch.float64))
    _check(outputs, target, mode, None, reduction, torch.float64)


@pytest.mark.parametrize("mode_target", MODE_TARGETS, ids=_mt_id)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("heads", list(HEAD_SETS), ids=str)
def test_float64_heads_with_random_domains(mode_target, reduction, heads):
    mode, target = mode_target
    batch = 7
    shapes = HEAD_SETS[heads]
    outputs = _cuda(make_outputs(batch, shapes, torch.float64))
    domain = make_domain(batch, min(s[0] for s in shapes)).cuda()
    _, grads = _check(outputs, target, mode, domain, reduction, torch.float64)
    for x, gr in zip(outputs, grads):
        mask = torch.ones(x.shape[:2], dtype=torch.bool, device="cuda")
        mask[torch.arange(batch, device="cuda"), domain] = False
        assert torch.all(gr[mask] == 0)


@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32], ids=str)
def test_int32_and_strided_domain(index_dtype):
    outputs = _cuda(make_outputs(8, [(3,), (3, 4, 4)], torch.float32))
    domain = make_domain(8, 3, dtype=index_dtype).cuda()
    _check(outputs, "real", "nsgan", domain, "mean", torch.float32)
    strided = torch.stack([domain, torch.zeros_like(domain)], 1)[:, 0]
    assert strided.stride(0) == 2
    _check(outputs, "fake", "hinge", strided, "none", torch.float32)


@pytest.mark.parametrize("mode_target", MODE_TARGETS, ids=_mt_id)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("scales", ["munit", "odd4", "flat", "bicyclegan"], ids=str)
def test_float32(mode_target, reduction, scales):
    mode, target = mode_target
    outputs = _cuda(make_outputs(8, SCALE_SETS[scales], torch.float32))
    _check(outputs, target, mode, None, reduction, torch.float32)


@pytest.mark.parametrize("mode_target", MODE_TARGETS, ids=_mt_id)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_half_precision_outputs(mode_target, dtype, reduction):
    mode, target = mode_target
    _check(_cuda(make_outputs(4, SCALE_SETS["bicyclegan"], dtype)), target, mode, None,
           reduction, dtype)
    _check(_cuda(make_outputs(4, [(3, 2, 2)], dtype)), target, mode, make_domain(4, 3).cuda(),
           reduction, dtype)


@pytest.mark.parametrize("count", [8, 9, 17], ids=lambda c: f"{c}scales")
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_more_scales_than_one_launch(count, reduction):
    shapes = [(1, 1 + i % 5, 2 + i % 3) for i in range(count)]
    _check(_cuda(make_outputs(3, shapes, torch.float64)), "real", "lsgan", None, reduction,
           torch.float64)
    heads = [(2, 1 + i % 4) for i in range(count)]
    _check(_cuda(make_outputs(3, heads, torch.float32)), "fake", "nsgan",
           make_domain(3, 2).cuda(), reduction, torch.float32)


@pytest.mark.parametrize("mode", ["lsgan", "nsgan", "hinge"])
def test_large_outputs_several_tiles_per_sample(mode):
    """(8, 1, 128, 128) + (8, 1, 64, 64): 32 and 8 tiles of 512 per sample; large heads too."""
    outputs = _cuda(make_outputs(8, [(1, 128, 128), (1, 64, 64)], torch.float32))
    _check(outputs, "real", mode, None, "mean", torch.float32)
    _check(outputs, "fake", mode, None, "none", torch.float32)
    heads = _cuda(make_outputs(4, [(3, 40, 41)], torch.float32))
    _check(heads, "real", mode, make_domain(4, 3).cuda(), "sum", torch.float32)


@pytest.mark.parametrize("layout", ["channels_last", "strided"])
def test_non_contiguous_outputs(layout):
    x = make_outputs(3, [(4, 5, 6)], torch.float64)[0].cuda()
    x = channels_last(x) if layout == "channels_last" else strided_view(x)
    assert not x.is_contiguous()
    _check([x], "real", "lsgan", make_domain(3, 4).cuda(), "none", torch.float64)
    _check([x], "fake", "hinge", None, "mean", torch.float64)


@pytest.mark.parametrize("target", ["real", "fake", 0.5])
def test_nsgan_is_stable_for_large_logits(target):
    x = torch.tensor([[-1000.0, -100.0, -80.5, 80.5, 100.0, 1000.0]], device="cuda")
    loss, (grad,) = _loss_and_grads(_cuda_gan_loss, [x], target, "nsgan", None, "none",
                                    torch.ones(1, dtype=torch.float64))
    ref_loss, (ref_grad,) = _loss_and_grads(ops.reference.gan_loss, [x.double()], target, "nsgan",
                                            None, "none", torch.ones(1, dtype=torch.float64))
    assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
    assert close(loss, ref_loss) < 1e-6 and close(grad, ref_grad) < 1e-6


@pytest.mark.parametrize("mode_target", MODE_TARGETS, ids=_mt_id)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_inf_propagate_like_the_reference(mode_target, bad):
    mode, target = mode_target
    x = make_outputs(2, [(1, 3, 3)], torch.float64)[0].cuda()
    x[1, 0, 1, 2] = bad
    loss, (grad,) = _loss_and_grads(_cuda_gan_loss, [x], target, mode, None, "none",
                                    torch.ones(2, dtype=torch.float64))
    ref, (ref_grad,) = _loss_and_grads(ops.reference.gan_loss, [x], target, mode, None, "none",
                                       torch.ones(2, dtype=torch.float64))
    assert close(loss, ref) <= 1e-12 and close(grad, ref_grad) <= 1e-12


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_sigmoid_bce_where_the_sigmoid_saturates_matches_the_reference(dtype):
    check_sigmoid_bce_extremes(_cuda_gan_loss, dtype, "cuda")


def test_nan_logit_of_an_unselected_head_is_ignored():
    x = torch.zeros(2, 3, device="cuda")
    x[0, 1] = math.nan
    loss = _cuda_gan_loss(x, "real", "nsgan", domain=torch.tensor([0, 2], device="cuda"))
    assert torch.isfinite(loss)


def test_results_are_deterministic():
    outputs = _cuda(make_outputs(8, [(1, 128, 128), (1, 64, 64), (1, 4, 4)], torch.float32))
    first = _loss_and_grads(_cuda_gan_loss, outputs, "real", "nsgan", None, "none",
                            upstream("none", 8))
    for _ in range(3):
        again = _loss_and_grads(_cuda_gan_loss, outputs, "real", "nsgan", None, "none",
                                upstream("none", 8))
        assert torch.equal(first[0], again[0])
        assert all(torch.equal(a, b) for a, b in zip(first[1], again[1]))
    g = torch.randn(8, 3, 130, 131, device="cuda")
    with ops.use_backend("cuda"):
        values = {ops.r1_penalty(g, 0.5, "none").cpu().numpy().tobytes() for _ in range(4)}
    assert len(values) == 1


def test_out_of_range_domain_on_a_direct_call_gives_nan_not_a_bad_read():
    """i2i_fast.ops checks the indices eagerly (a host sync); the CUDA kernels never read them on
    the host, so a direct call (or a compiled graph) gives NaN for that sample instead."""
    x = torch.randn(3, 2, 4, device="cuda")
    y = torch.tensor([0, 5, -1], device="cuda")
    loss = lib.gan_loss([x], "lsgan", "real", 0.0, y, "none")
    assert torch.isfinite(loss[0]) and torch.isnan(loss[1:]).all()
    (gx,) = lib.gan_loss_backward(torch.ones(3, device="cuda"), [x], "lsgan", "real", 0.0, y,
                                  "none")
    assert torch.isfinite(gx[0]).all() and torch.isnan(gx[1:]).all()
    with pytest.raises(ValueError, match=r"domain: expected indices in \[0, 2\)"):
        _cuda_gan_loss(x, "real", "lsgan", domain=y)


# ----- r1_penalty ------------------------------------------------------------------------------

R1_SHAPES = [(1, 3, 5, 7), (8, 3, 16, 16), (2, 1), (5,), (3, 2, 4, 5, 6), (2, 3, 130, 131),
             (8, 3, 256, 256)]


def _r1_check(grads, weight, reduction, dtype):
    g = upstream(reduction, grads.shape[0])
    leaf = grads.detach().requires_grad_()  # same storage: keeps the layout and the offset
    poison_allocator(grads.numel() * grads.element_size())
    with ops.use_backend("cuda"):
        loss = ops.r1_penalty(leaf, weight, reduction)
        (grad,) = torch.autograd.grad(loss, leaf, g.to(device="cuda", dtype=loss.dtype))
    ref_leaf = grads.detach().double().requires_grad_()
    ref = ops.reference.r1_penalty(ref_leaf, weight, reduction)
    (ref_grad,) = torch.autograd.grad(ref, ref_leaf, g.cuda())
    assert loss.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    assert close(loss, ref) <= LOSS_TOLERANCE[dtype]
    assert grad.dtype == dtype and grad.shape == grads.shape
    assert close(grad, ref_grad) <= GRAD_TOLERANCE[dtype]
    return grad


@pytest.mark.parametrize("shape", R1_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight", [0.5, 10.0, -2.0])
def test_r1_float64(shape, reduction, weight):
    _r1_check(make_outputs(shape[0], [shape[1:]], torch.float64)[0].cuda(), weight, reduction,
              torch.float64)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(8, 3, 16, 16), (2, 3, 130, 131), (8, 3, 256, 256)], ids=str)
def test_r1_dtypes(dtype, reduction, shape):
    grads = make_outputs(shape[0], [shape[1:]], dtype, spread=0.01)[0].cuda()
    _r1_check(grads, 0.5, reduction, dtype)


@pytest.mark.parametrize("layout", ["channels_last", "strided", "misaligned"])
def test_r1_layouts(layout):
    grads = make_outputs(3, [(4, 8, 8)], torch.float32)[0].cuda()
    if layout == "channels_last":
        view = channels_last(grads)
    elif layout == "strided":
        view = strided_view(grads)
    else:  # contiguous, but 4 bytes past a 16-byte boundary: the scalar path
        view = torch.empty(grads.numel() + 1, device="cuda")[1:].view(grads.shape).copy_(grads)
    grad = _r1_check(view, 0.5, "mean", torch.float32)
    if layout == "strided":
        assert grad.is_contiguous()
    else:
        assert grad.stride() == view.stride()


def test_r1_double_backward_reaches_the_discriminator():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 1, 3, padding=1).cuda().double()
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64, device="cuda", requires_grad=True)

    def d_grads(r1):
        (gx,) = torch.autograd.grad(conv(x).sum(), x, create_graph=True)
        return torch.autograd.grad(r1(gx), list(conv.parameters()))

    with ops.use_backend("cuda"):
        fused = d_grads(lambda gx: ops.r1_penalty(gx, 0.5))
    ref = d_grads(lambda gx: ops.reference.r1_penalty(gx, 0.5))
    for a, b in zip(fused, ref):
        assert close(a, b) <= 1e-12


# ----- operator checks -------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck_and_gradgradcheck(reduction):
    xs = [torch.randn(3, 2, 2, 3, dtype=torch.float64, device="cuda", requires_grad=True),
          torch.randn(3, 2, dtype=torch.float64, device="cuda", requires_grad=True)]
    y = torch.tensor([1, 0, 1], device="cuda")
    for mode, target in (("nsgan", 0.3), ("lsgan", "real"), ("hinge", "real")):
        assert torch.autograd.gradcheck(
            lambda a, b: _cuda_gan_loss([a, b], target, mode, domain=y, reduction=reduction), xs)
    g = torch.randn(2, 3, 4, dtype=torch.float64, device="cuda", requires_grad=True)

    def r1(t):
        with ops.use_backend("cuda"):
            return ops.r1_penalty(t, 0.7, reduction)

    assert torch.autograd.gradcheck(r1, (g,)) and torch.autograd.gradgradcheck(r1, (g,))


def test_opcheck():
    xs = _cuda(make_outputs(2, [(1, 3, 3), (1, 2, 2)], torch.float32))
    heads = _cuda(make_outputs(3, [(4, 2, 2)], torch.float32))
    domain = make_domain(3, 4).cuda()
    torch.library.opcheck(lib.gan_loss.default, (xs, "lsgan", "real", 0.0, None, "mean"))
    torch.library.opcheck(lib.gan_loss.default, (heads, "nsgan", "label", 0.5, domain, "none"))
    torch.library.opcheck(lib.gan_loss_backward.default,
                          (torch.tensor(1.5, device="cuda"), xs, "hinge", "fake", 0.0, None,
                           "sum"))
    g = torch.randn(2, 3, 4, 5, device="cuda")
    for t in (g, channels_last(g)):
        torch.library.opcheck(lib.r1_penalty.default, (t, 0.5, "none"))
        torch.library.opcheck(lib.r1_penalty_backward.default,
                              (torch.ones(2, device="cuda"), t, 0.5, "none"))


class DiscriminatorLoss(torch.nn.Module):
    """Multi-scale D loss (MUNIT) plus a head-selected nsgan term (StarGAN v2)."""

    def forward(self, real, fake, heads, domain):
        return (ops.gan_loss(real, "real", "lsgan") + ops.gan_loss(fake, "fake", "lsgan")
                + ops.gan_loss(heads, "real", "nsgan", domain=domain))


def _compile_inputs(seed=0):
    real = _cuda(make_outputs(8, [(1, 16, 16), (1, 8, 8), (1, 4, 4)], torch.float32, seed=seed))
    fake = _cuda(make_outputs(8, [(1, 16, 16), (1, 8, 8), (1, 4, 4)], torch.float32,
                              seed=seed + 1))
    heads = _cuda(make_outputs(8, [(3,)], torch.float32, seed=seed + 2))
    return real, fake, heads, make_domain(8, 3, seed=seed).cuda()


def test_compile_fullgraph_matches_eager_and_contains_the_fused_operator():
    seen = []

    def backend(gm, example_inputs):
        seen.extend(str(node.target) for node in gm.graph.nodes if node.op == "call_function")
        return gm.forward

    real, fake, heads, domain = _compile_inputs()
    assert ops.chosen_backend("gan_loss", real[0]) == "cuda"
    torch.compile(DiscriminatorLoss(), fullgraph=True, backend=backend)(real, fake, heads, domain)
    assert sum("i2i_fast.gan_loss" in t for t in seen) == 3, seen
    torch._dynamo.reset()
    compiled = torch.compile(DiscriminatorLoss(), fullgraph=True)
    leaves = [[t.detach().clone().requires_grad_() for t in group]
              for group in (real, fake, heads)]
    out = compiled(*leaves, domain)
    grads = torch.autograd.grad(out, [t for group in leaves for t in group])
    eager_leaves = [[t.detach().clone().requires_grad_() for t in group]
                    for group in (real, fake, heads)]
    expected = DiscriminatorLoss()(*eager_leaves, domain)
    expected_grads = torch.autograd.grad(expected, [t for g in eager_leaves for t in g])
    assert close(out.detach(), expected.detach()) <= 1e-6
    for a, b in zip(grads, expected_grads):
        assert close(a, b) <= 1e-6
    torch._dynamo.reset()


def test_compiled_module_reduce_overhead_cuda_graphs():
    """mode="reduce-overhead" records CUDA graphs: a launch outside the current stream or a host
    synchronisation breaks the capture. Several steps with new inputs must match eager."""
    compiled = torch.compile(DiscriminatorLoss(), mode="reduce-overhead", fullgraph=True)
    for step in range(4):
        real, fake, heads, domain = _compile_inputs(seed=step)
        leaves = [[t.detach().clone().requires_grad_() for t in group]
                  for group in (real, fake, heads)]
        out = compiled(*leaves, domain)
        grads = torch.autograd.grad(out, [t for g in leaves for t in g])
        eager = [[t.detach().clone().requires_grad_() for t in group]
                 for group in (real, fake, heads)]
        expected = DiscriminatorLoss()(*eager, domain)
        expected_grads = torch.autograd.grad(expected, [t for g in eager for t in g])
        assert close(out.detach(), expected.detach()) <= 1e-6, step
        for a, b in zip(grads, expected_grads):
            assert close(a, b) <= 1e-6, step
    torch._dynamo.reset()


def test_explicit_cuda_graph_capture_and_replay():
    real, _, heads, domain = _compile_inputs()
    static = [t.clone() for t in real]
    grads = torch.randn(8, 3, 64, 64, device="cuda")
    with ops.use_backend("cuda"):
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                ops.gan_loss(static, "real", "lsgan")
                ops.r1_penalty(grads, 0.5)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            loss = ops.gan_loss(static, "real", "lsgan") + ops.r1_penalty(grads, 0.5)
    for seed in range(3):
        new, _, _, _ = _compile_inputs(seed=seed + 10)
        for s, n in zip(static, new):
            s.copy_(n)
        graph.replay()
        torch.cuda.synchronize()
        expected = (ops.reference.gan_loss([t.double() for t in new], "real", "lsgan")
                    + ops.reference.r1_penalty(grads.double(), 0.5))
        assert close(loss, expected) <= 1e-5


def test_side_stream_results_match():
    outputs = _cuda(make_outputs(8, [(1, 30, 30), (1, 14, 14)], torch.float32))
    g = upstream("none", 8)
    base = _loss_and_grads(_cuda_gan_loss, outputs, "fake", "nsgan", None, "none", g)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        other = _loss_and_grads(_cuda_gan_loss, outputs, "fake", "nsgan", None, "none", g)
    torch.cuda.current_stream().wait_stream(side)
    assert torch.equal(base[0], other[0])
    assert all(torch.equal(a, b) for a, b in zip(base[1], other[1]))


def test_cuda_tensors_choose_the_cuda_backend():
    x = torch.randn(2, 1, 4, 4, device="cuda")
    assert ops.chosen_backend("gan_loss", x) == "cuda"
    assert ops.chosen_backend("r1_penalty", x) == "cuda"
