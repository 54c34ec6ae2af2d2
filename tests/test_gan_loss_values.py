"""Fused GAN losses and R1 against the float64 reference: values and every gradient."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import i2i_fast.ops as ops
from helpers import channels_last, strided_view, threads
from loss_helpers import (
    GRAD_TOLERANCE,
    HEAD_SETS,
    LOSS_TOLERANCE,
    MODE_TARGETS,
    REDUCTIONS,
    SCALE_SETS,
    check_sigmoid_bce_extremes,
    close,
    loss_and_grads,
    make_domain,
    make_outputs,
    reference64,
    upstream,
)


def _mt_id(mt):
    return f"{mt[0]}-{mt[1]}"


def _check(outputs, target, mode, domain, reduction, dtype):
    batch = outputs[0].shape[0]
    g = upstream(reduction, batch)
    loss, grads = loss_and_grads(ops.gan_loss, outputs, target, mode, domain, reduction, g)
    ref_loss, ref_grads = reference64(outputs, target, mode, domain, reduction, g)
    what = f"{mode}/{target}/{reduction}/{dtype}"
    assert loss.dtype == (torch.float64 if dtype == torch.float64 else torch.float32), what
    assert loss.shape == ((batch,) if reduction == "none" else ()), what
    err = close(loss, ref_loss)
    assert err <= LOSS_TOLERANCE[dtype], f"{what}: loss error {err:.2e}"
    for i, (gr, rg, x) in enumerate(zip(grads, ref_grads, outputs)):
        assert gr.dtype == x.dtype and gr.shape == x.shape, what
        err = close(gr, rg)
        assert err <= GRAD_TOLERANCE[dtype], f"{what}: grad of outputs[{i}] error {err:.2e}"
    return loss, grads


@pytest.mark.parametrize("mode_target", MODE_TARGETS, ids=_mt_id)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("scales", list(SCALE_SETS), ids=str)
@pytest.mark.parametrize("batch", [1, 3])
def test_float64_every_mode_target_reduction(mode_target, reduction, scales, batch):
    mode, target = mode_target
    outputs = make_outputs(batch, SCALE_SETS[scales], torch.float64)
    _check(outputs, target, mode, None, reduction, torch.float64)


@pytest.mark.parametrize("mode_target", MODE_TARGETS, ids=_mt_id)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("heads", list(HEAD_SETS), ids=str)
def test_float64_heads_with_random_domains(mode_target, reduction, heads):
    mode, target = mode_target
    batch = 7
    shapes = HEAD_SETS[heads]
    outputs = make_outputs(batch, shapes, torch.float64)
    k_min = min(s[0] for s in shapes)
    domain = make_domain(batch, k_min)
    _, grads = _check(outputs, target, mode, domain, reduction, torch.float64)
    # The heads a sample does not select get exactly zero gradient.
    for x, gr in zip(outputs, grads):
        mask = torch.ones(x.shape[:2], dtype=torch.bool)
        mask[torch.arange(batch), domain] = False
        assert torch.all(gr[mask] == 0)


@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32], ids=str)
def test_int32_domain(index_dtype):
    outputs = make_outputs(8, [(3,)], torch.float32)
    domain = make_domain(8, 3, dtype=index_dtype)
    _check(outputs, "real", "nsgan", domain, "mean", torch.float32)


@pytest.mark.parametrize("mode_target", MODE_TARGETS, ids=_mt_id)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("scales", ["munit", "odd4", "flat"], ids=str)
def test_float32(mode_target, reduction, scales):
    mode, target = mode_target
    outputs = make_outputs(8, SCALE_SETS[scales], torch.float32)
    _check(outputs, target, mode, None, reduction, torch.float32)


@pytest.mark.parametrize("mode_target", MODE_TARGETS, ids=_mt_id)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_half_precision_outputs(mode_target, dtype, reduction):
    mode, target = mode_target
    outputs = make_outputs(4, SCALE_SETS["bicyclegan"], dtype)
    _check(outputs, target, mode, None, reduction, dtype)
    heads = make_outputs(4, [(3, 2, 2)], dtype)
    _check(heads, target, mode, make_domain(4, 3), reduction, dtype)


@pytest.mark.parametrize("mode", ["lsgan", "nsgan"])
def test_large_outputs_use_every_thread_and_stay_exact(mode):
    """> 64Ki elements takes the parallel path; the result does not depend on the thread count."""
    outputs = make_outputs(8, [(1, 128, 128), (1, 64, 64)], torch.float32)
    _check(outputs, "real", mode, None, "mean", torch.float32)
    results = []
    for n in (1, max(2, torch.get_num_threads())):
        with threads(n):
            results.append(loss_and_grads(ops.gan_loss, outputs, "fake", mode, None, "none",
                                          upstream("none", 8)))
    (l1, g1), (l2, g2) = results
    assert torch.equal(l1, l2)
    assert all(torch.equal(a, b) for a, b in zip(g1, g2))


@pytest.mark.parametrize("layout", ["channels_last", "strided"])
def test_non_contiguous_outputs(layout):
    x = make_outputs(3, [(4, 5, 6)], torch.float64)[0]
    x = channels_last(x) if layout == "channels_last" else strided_view(x)
    assert not x.is_contiguous()
    _check([x], "real", "lsgan", make_domain(3, 4), "none", torch.float64)
    _check([x], "fake", "hinge", None, "mean", torch.float64)


def test_single_tensor_equals_one_element_list():
    x = make_outputs(4, [(1, 6, 6)], torch.float32)[0]
    assert torch.equal(ops.gan_loss(x, "real", "lsgan"), ops.gan_loss([x], "real", "lsgan"))
    assert torch.equal(ops.gan_loss(x, "real", "lsgan"), ops.gan_loss((x,), "real", "lsgan"))


@pytest.mark.parametrize("target", ["real", "fake", 0.5])
def test_nsgan_is_stable_for_large_logits(target):
    """|logit| > 80: no overflow (log(sigmoid) would give -inf for float32 beyond ~88)."""
    x = torch.tensor([[-1000.0, -100.0, -80.5, 80.5, 100.0, 1000.0]], dtype=torch.float32)
    loss, (grad,) = loss_and_grads(ops.gan_loss, [x], target, "nsgan", None, "none",
                                   torch.ones(1, dtype=torch.float64))
    ref_loss, (ref_grad,) = reference64([x], target, "nsgan", None, "none",
                                        torch.ones(1, dtype=torch.float64))
    assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
    assert close(loss, ref_loss) < 1e-6
    assert close(grad, ref_grad) < 1e-6


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_sigmoid_bce_where_the_sigmoid_saturates_matches_the_reference(dtype):
    """DRIT's sigmoid + BCELoss: the clamps at -100 and the backward's 1e-12, p exactly 0 or 1."""
    check_sigmoid_bce_extremes(ops.gan_loss, dtype)


def test_sigmoid_bce_is_drits_formula():
    """Σ_scales mean(BCELoss(sigmoid(x), label)), labels 1 / 0 / 0.5 as DRIT uses them, the named
    targets standing for 1 (real, generator) and 0 (fake)."""
    outputs = make_outputs(2, SCALE_SETS["munit"], torch.float64, spread=8.0)
    for target, label in (("real", 1.0), ("generator", 1.0), ("fake", 0.0), (0.5, 0.5)):
        expected = sum(F.binary_cross_entropy(torch.sigmoid(x), torch.full_like(x, label))
                       for x in outputs)
        assert close(ops.gan_loss(outputs, target, "sigmoid_bce"), expected) < 1e-12
        if isinstance(target, str):
            assert torch.equal(ops.gan_loss(outputs, target, "sigmoid_bce"),
                               ops.gan_loss(outputs, label, "sigmoid_bce"))


def test_reduction_conventions():
    """mean = Σ_s mean_s; sum = Σ_s sum_s; none = per-sample Σ_s mean; mean == none.mean()."""
    outputs = make_outputs(4, SCALE_SETS["munit"], torch.float64)
    mean = ops.gan_loss(outputs, "real", "lsgan")
    total = ops.gan_loss(outputs, "real", "lsgan", reduction="sum")
    none = ops.gan_loss(outputs, "real", "lsgan", reduction="none")
    assert torch.allclose(mean, sum(((x - 1) ** 2).mean() for x in outputs))
    assert torch.allclose(total, sum(((x - 1) ** 2).sum() for x in outputs))
    assert torch.allclose(none, sum(((x - 1) ** 2).flatten(1).mean(1) for x in outputs))
    assert torch.allclose(mean, none.mean())


# ----- r1_penalty --------------------------------------------------------------------------------

R1_SHAPES = [(1, 3, 5, 7), (8, 3, 16, 16), (2, 1), (5,), (3, 2, 4, 5, 6), (2, 3, 130, 131)]


def _r1_check(grads, weight, reduction, dtype):
    g = upstream(reduction, grads.shape[0])
    leaf = grads.detach().clone().requires_grad_()
    loss = ops.r1_penalty(leaf, weight, reduction)
    (grad,) = torch.autograd.grad(loss, leaf, g.to(loss.dtype))
    ref_leaf = grads.detach().double().requires_grad_()
    ref = ops.reference.r1_penalty(ref_leaf, weight, reduction)
    (ref_grad,) = torch.autograd.grad(ref, ref_leaf, g)
    assert loss.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    assert close(loss, ref) <= LOSS_TOLERANCE[dtype]
    assert grad.dtype == dtype and grad.shape == grads.shape
    assert close(grad, ref_grad) <= GRAD_TOLERANCE[dtype]
    return grad


@pytest.mark.parametrize("shape", R1_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight", [0.5, 1.0, 10.0, -2.0])
def test_r1_float64(shape, reduction, weight):
    grads = make_outputs(shape[0], [shape[1:]], torch.float64)[0]
    _r1_check(grads, weight, reduction, torch.float64)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(8, 3, 16, 16), (2, 3, 130, 131)], ids=str)
def test_r1_dtypes(dtype, reduction, shape):
    grads = make_outputs(shape[0], [shape[1:]], dtype, spread=0.01)[0]
    _r1_check(grads, 0.5, reduction, dtype)


@pytest.mark.parametrize("layout", ["channels_last", "strided"])
def test_r1_layouts(layout):
    grads = make_outputs(3, [(4, 9, 7)], torch.float64)[0]
    view = channels_last(grads) if layout == "channels_last" else strided_view(grads)
    grad = _r1_check(view, 0.5, "mean", torch.float64)
    if layout == "channels_last":
        assert grad.stride() == view.stride()  # the gradient keeps the channels-last layout
    else:
        assert grad.is_contiguous()


def test_r1_thread_count_does_not_change_the_result():
    grads = make_outputs(8, [(3, 64, 64)], torch.float32)[0]
    out = []
    for n in (1, max(2, torch.get_num_threads())):
        with threads(n):
            leaf = grads.clone().requires_grad_()
            loss = ops.r1_penalty(leaf, 0.5, "none")
            out.append((loss, torch.autograd.grad(loss.sum(), leaf)[0]))
    assert torch.equal(out[0][0], out[1][0]) and torch.equal(out[0][1], out[1][1])
