"""The Triton operators of the GAN loss family: launches, and their registration as torch
operators ``i2i_fast_triton::*`` (the kernels are in triton_kernels.py).

Operators (the schemas of the compiled ``i2i_fast::*``):

    gan_loss(outputs, mode, target, label, domain, reduction) -> loss          differentiable once
    gan_loss_backward(grad_loss, outputs, mode, target, label, domain, reduction) -> [grad, ...]
    r1_penalty(grads, weight, reduction) -> loss                               differentiable twice
    r1_penalty_backward(grad_loss, grads, weight, reduction) -> grad           differentiable

Each runs its operator's checks (checks.py, as the compiled kernels do: never the domain's
values) and has the fake implementation of its schema (fake.py). gan_loss takes two launches
whatever the number of scales, up to MAX_SCALES scales per launch (more are processed in groups
whose results are added). r1_penalty's gradient keeps x's layout (contiguous, channels-last or
any batch-major dense layout; other strides are copied to contiguous first).
"""

import math
from typing import Optional

import torch
from torch.library import wrap_triton

from .. import triton_support as ts
from . import checks, fake
from .fake import is_batch_major_dense, loss_dtype
from .triton_kernels import (
    BCE,
    HINGE_FAKE,
    HINGE_REAL,
    LINEAR,
    MEAN,
    NONE,
    SIGMOID_BCE,
    SQUARED,
    SUM,
    finalize_kernel,
    gan_loss_grads_kernel,
    gan_loss_tiles_kernel,
    r1_chunk_sums_kernel,
    r1_grads_kernel,
)

MAX_SCALES = 4  # scales per launch: one pointer argument each
MAX_LOSS_BLOCK = 1024  # gan_loss: largest tile (selected elements per program)
R1_BLOCK = 4096  # r1_penalty: elements per program
GRAD_BLOCK = 1024  # elementwise gradient kernels: elements per program
REDUCTION_CODES = {"mean": MEAN, "sum": SUM, "none": NONE}


def element_function(mode: str, target: str, label: float) -> tuple[int, float, float]:
    """(KIND, label, sign) of the per-element function of checked arguments (as check_gan_loss in
    csrc/gan_loss/checks.h)."""
    if mode in ("lsgan", "nsgan", "sigmoid_bce"):
        kind = {"lsgan": SQUARED, "nsgan": BCE, "sigmoid_bce": SIGMOID_BCE}[mode]
        if target == "label":
            return kind, float(label), 0.0
        return kind, 0.0 if target == "fake" else 1.0, 0.0
    if target == "generator":
        return LINEAR, 0.0, -1.0
    if mode == "hinge":
        return (HINGE_REAL if target == "real" else HINGE_FAKE), 0.0, 0.0
    return LINEAR, 0.0, -1.0 if target == "real" else 1.0


# ----- host side -------------------------------------------------------------------------------


def _padded(values: list, fill) -> list:
    return list(values) + [fill] * (MAX_SCALES - len(values))


def _finalize_block_sizes(n: int, max_tiles: int) -> tuple[int, int]:
    block_n = min(ts.next_power_of_2(n), 64)
    block_k = min(ts.next_power_of_2(max_tiles), max(1, 2048 // block_n))
    return block_n, block_k


def _finalize(partials: torch.Tensor, out: torch.Tensor, n: int, tile_bases: list[int],
              tiles_per_sample: list[int], divisors: list[float], weight: float,
              reduction: int) -> None:
    count = len(tile_bases)
    tb = _padded(tile_bases, 0)
    tps = _padded(tiles_per_sample, 1)
    div = _padded(divisors, 1.0)
    block_n, block_k = _finalize_block_sizes(n, max(tiles_per_sample))
    wrap_triton(finalize_kernel)[(1,)](
        partials, out, n, tb[1], tb[2], tb[3], tps[0], tps[1], tps[2], tps[3],
        div[0], div[1], div[2], div[3], weight,
        NUM_SCALES=count, REDUCTION=reduction, BLOCK_N=block_n, BLOCK_K=block_k,
        num_warps=ts.num_warps_for(block_n * block_k))


def _domain_args(domain: Optional[torch.Tensor], like: torch.Tensor):
    """(pointer tensor, stride, HAS_DOMAIN): an unread dummy without a domain."""
    if domain is None:
        return like, 0, False
    return domain, int(domain.stride(0)), True


def _heads_and_rows(x: torch.Tensor, n: int, with_heads: bool) -> tuple[int, int]:
    heads = int(x.shape[1]) if with_heads else 1
    return heads, x.numel() // (n * heads)


def _gan_loss_group(scales: list[torch.Tensor], kind: int, label: float, sign: float,
                    domain: Optional[torch.Tensor], reduction: int) -> torch.Tensor:
    """The loss of up to MAX_SCALES contiguous scales (two launches)."""
    x = scales[0]
    n = int(x.shape[0])
    acc = loss_dtype(x)
    geometry = [_heads_and_rows(s, n, domain is not None) for s in scales]
    block = min(ts.next_power_of_2(max(r for _, r in geometry)), MAX_LOSS_BLOCK)
    tiles_per_sample = [ts.cdiv(r, block) for _, r in geometry]
    tile_bases, total = [], 0
    for tps in tiles_per_sample:
        tile_bases.append(total)
        total += n * tps
    partials = torch.empty((total,), dtype=acc, device=x.device)
    dom, dom_stride, has_domain = _domain_args(domain, x)
    xs = _padded(scales, x)
    tb = _padded(tile_bases, 0)
    tps = _padded(tiles_per_sample, 1)
    ks = _padded([k for k, _ in geometry], 1)
    rs = _padded([r for _, r in geometry], 1)
    wrap_triton(gan_loss_tiles_kernel)[(total,)](
        xs[0], xs[1], xs[2], xs[3], dom, partials, dom_stride, n,
        tb[1], tb[2], tb[3], tps[0], tps[1], tps[2], tps[3], ks[0], ks[1], ks[2], ks[3],
        rs[0], rs[1], rs[2], rs[3], label, sign, math.nan,
        NUM_SCALES=len(scales), KIND=kind, HAS_DOMAIN=has_domain, BLOCK=block,
        num_warps=ts.num_warps_for(block))
    out = torch.empty((n,) if reduction == NONE else (), dtype=acc, device=x.device)
    _finalize(partials, out, n, tile_bases, tiles_per_sample, [float(r) for _, r in geometry],
              1.0, reduction)
    return out


def _gan_loss_grads_group(grad_loss: torch.Tensor, scales: list[torch.Tensor],
                          grads: list[torch.Tensor], kind: int, label: float, sign: float,
                          domain: Optional[torch.Tensor], reduction: int) -> None:
    x = scales[0]
    n = int(x.shape[0])
    geometry = [_heads_and_rows(s, n, domain is not None) for s in scales]
    block_bases, total = [], 0
    for s in scales:
        block_bases.append(total)
        total += ts.cdiv(s.numel(), GRAD_BLOCK)
    dom, dom_stride, has_domain = _domain_args(domain, x)
    xs = _padded(scales, x)
    gxs = _padded(grads, grads[0])
    bb = _padded(block_bases, 0)
    ks = _padded([k for k, _ in geometry], 1)
    rs = _padded([r for _, r in geometry], 1)
    wrap_triton(gan_loss_grads_kernel)[(total,)](
        xs[0], xs[1], xs[2], xs[3], gxs[0], gxs[1], gxs[2], gxs[3], dom, grad_loss, dom_stride,
        n, bb[1], bb[2], bb[3], ks[0], ks[1], ks[2], ks[3], rs[0], rs[1], rs[2], rs[3],
        label, sign, math.nan,
        NUM_SCALES=len(scales), KIND=kind, REDUCTION=reduction, HAS_DOMAIN=has_domain,
        BLOCK=GRAD_BLOCK, num_warps=ts.num_warps_for(GRAD_BLOCK))


# ----- the operators: checks (checks.py), then the launches -------------------------------------


def _gan_loss(outputs: list[torch.Tensor], mode: str, target: str, label: float,
              domain: Optional[torch.Tensor], reduction: str) -> torch.Tensor:
    checks.gan_loss(outputs, mode, target, label, domain, reduction)
    kind, lab, sign = element_function(mode, target, label)
    red = REDUCTION_CODES[reduction]
    scales = [x.contiguous() for x in outputs]
    result = None
    for first in range(0, len(scales), MAX_SCALES):
        part = _gan_loss_group(scales[first:first + MAX_SCALES], kind, lab, sign, domain, red)
        result = part if result is None else result + part
    return result


def _gan_loss_backward(grad_loss: torch.Tensor, outputs: list[torch.Tensor], mode: str,
                       target: str, label: float, domain: Optional[torch.Tensor],
                       reduction: str) -> list[torch.Tensor]:
    checks.gan_loss_backward(grad_loss, outputs, mode, target, label, domain, reduction)
    kind, lab, sign = element_function(mode, target, label)
    red = REDUCTION_CODES[reduction]
    scales = [x.contiguous() for x in outputs]
    g = grad_loss.to(loss_dtype(scales[0])).contiguous()
    grads = [torch.empty(x.shape, dtype=x.dtype, device=x.device) for x in scales]
    for first in range(0, len(scales), MAX_SCALES):
        _gan_loss_grads_group(g, scales[first:first + MAX_SCALES],
                              grads[first:first + MAX_SCALES], kind, lab, sign, domain, red)
    return grads


def _batch_major(x: torch.Tensor) -> torch.Tensor:
    return x if is_batch_major_dense(x) else x.contiguous()


def _r1_penalty(grads: torch.Tensor, weight: float, reduction: str) -> torch.Tensor:
    checks.r1_penalty(grads, weight, reduction)
    red = REDUCTION_CODES[reduction]
    x = _batch_major(grads)
    n = int(x.shape[0])
    per_sample = x.numel() // n
    block = min(ts.next_power_of_2(per_sample), R1_BLOCK)
    chunks = ts.cdiv(per_sample, block)
    acc = loss_dtype(x)
    partials = torch.empty((n * chunks,), dtype=acc, device=x.device)
    wrap_triton(r1_chunk_sums_kernel)[(n * chunks,)](
        x, partials, per_sample, chunks, BLOCK=block, num_warps=ts.num_warps_for(block))
    out = torch.empty((n,) if red == NONE else (), dtype=acc, device=x.device)
    _finalize(partials, out, n, [0], [chunks], [1.0], weight, red)
    return out


def _r1_penalty_backward(grad_loss: torch.Tensor, grads: torch.Tensor, weight: float,
                         reduction: str) -> torch.Tensor:
    checks.r1_penalty_backward(grad_loss, grads, weight, reduction)
    red = REDUCTION_CODES[reduction]
    x = _batch_major(grads)
    n = int(x.shape[0])
    g = grad_loss.to(loss_dtype(x)).contiguous()
    dx = torch.empty_like(x)  # x's strides (x is dense)
    numel = x.numel()
    wrap_triton(r1_grads_kernel)[(ts.cdiv(numel, GRAD_BLOCK),)](
        x, dx, g, numel, numel // n, n, 2.0 * weight, REDUCTION=red, BLOCK=GRAD_BLOCK,
        num_warps=ts.num_warps_for(GRAD_BLOCK))
    return dx



# ----- autograd --------------------------------------------------------------------------------


def _gan_loss_setup_context(ctx, inputs, output) -> None:
    outputs, mode, target, label, domain, reduction = inputs
    ctx.num_scales = len(outputs)
    ctx.options = (mode, target, label)
    ctx.reduction = reduction
    ctx.save_for_backward(*outputs, domain)


def _gan_loss_autograd(ctx, grad):
    saved = ctx.saved_tensors
    outputs, domain = list(saved[:ctx.num_scales]), saved[ctx.num_scales]
    grads = gan_loss_backward_op(grad, outputs, *ctx.options, domain, ctx.reduction)
    needs = ctx.needs_input_grad[0]
    return list(grads) if needs else None, None, None, None, None, None


def _r1_setup_context(ctx, inputs, output) -> None:
    grads, weight, reduction = inputs
    ctx.weight = weight
    ctx.reduction = reduction
    ctx.save_for_backward(grads)


def _r1_autograd(ctx, grad):
    (grads,) = ctx.saved_tensors
    # Through the differentiable backward operator: under create_graph the gradient carries on
    # into the graph that produced `grads` (double backward).
    return r1_penalty_backward_op(grad, grads, ctx.weight, ctx.reduction), None, None


def _r1_backward_setup_context(ctx, inputs, output) -> None:
    grad_loss, grads, weight, reduction = inputs
    ctx.weight = weight
    ctx.reduction = reduction
    ctx.save_for_backward(grad_loss, grads)


def _r1_backward_autograd(ctx, upstream):
    """out = 2 * weight * c_n(grad_loss) * grads is linear in grads and in grad_loss."""
    grad_loss, grads = ctx.saved_tensors
    d_grad_loss = d_grads = None
    if ctx.needs_input_grad[1]:
        d_grads = r1_penalty_backward_op(grad_loss, upstream, ctx.weight, ctx.reduction)
    if ctx.needs_input_grad[0]:
        acc = loss_dtype(grads)
        n = grads.shape[0]
        per_sample = (grads.to(acc) * upstream.to(acc)).reshape(n, -1).sum(1) * (2.0 * ctx.weight)
        if ctx.reduction == "none":
            d = per_sample
        elif ctx.reduction == "sum":
            d = per_sample.sum()
        else:
            d = per_sample.sum() / n
        d_grad_loss = d.to(grad_loss.dtype)
    return d_grad_loss, d_grads, None, None


gan_loss_backward_op = ts.register_operator("gan_loss_backward", _gan_loss_backward,
                                            fake.gan_loss_backward)
gan_loss_op = ts.register_operator("gan_loss", _gan_loss, fake.gan_loss,
                                   setup_context=_gan_loss_setup_context,
                                   backward=_gan_loss_autograd)
r1_penalty_backward_op = ts.register_operator(
    "r1_penalty_backward", _r1_penalty_backward, fake.r1_penalty_backward,
    setup_context=_r1_backward_setup_context, backward=_r1_backward_autograd)
r1_penalty_op = ts.register_operator("r1_penalty", _r1_penalty, fake.r1_penalty,
                                     setup_context=_r1_setup_context, backward=_r1_autograd)

OPERATORS = (gan_loss_op, gan_loss_backward_op, r1_penalty_op, r1_penalty_backward_op)


# ----- what the "triton" backend runs (arguments already checked by i2i_fast.ops) -----------------


def gan_loss(outputs, mode: str, target: str, label: float, domain: Optional[torch.Tensor],
             reduction: str) -> torch.Tensor:
    return gan_loss_op(list(outputs), mode, target, label, domain, reduction)


def r1_penalty(grads: torch.Tensor, weight: float, reduction: str) -> torch.Tensor:
    return r1_penalty_op(grads, weight, reduction)
