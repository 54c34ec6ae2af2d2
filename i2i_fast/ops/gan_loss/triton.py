"""Triton kernels of the GAN loss family, registered as torch operators ``i2i_fast_triton::*``.

Operators (the same schemas as the compiled ``i2i_fast::*``):

    gan_loss(outputs, mode, target, label, domain, reduction) -> loss          differentiable once
    gan_loss_backward(grad_loss, outputs, mode, target, label, domain, reduction) -> [grad, ...]
    r1_penalty(grads, weight, reduction) -> loss                               differentiable twice
    r1_penalty_backward(grad_loss, grads, weight, reduction) -> grad           differentiable

The definitions are those of csrc/gan_loss/common.h (and ``reference.py``): per-element function
f by (mode, target), head ``domain[n]`` of (N, K, ...) outputs, reductions mean / sum / none over
the scales. Accumulation in float32 (float64 for float64 inputs); partial sums are merged in
float64.

gan_loss forward: two launches whatever the number of scales (up to MAX_SCALES scales per launch;
more are processed in groups whose results are added).
  * tiles: one program per tile of at most BLOCK selected elements of one (scale, sample)
    segment -- the R_s contiguous elements of head domain[n] of sample n. Every scale's pointer
    is an argument of the one kernel; a program works on the scale whose tile range holds its id
    (the others' loads are fully masked). Each program writes the sum of f(x) over its tile.
  * finalize: one program merges each segment's tile sums in float64 and then the segments into
    the (N,) values or the scalar, in a fixed order (deterministic: no atomics).
gan_loss backward: one launch over the concatenated elements of every scale (all heads): the
selected head gets f'(x) * upstream, the others 0; grad_loss is read by the kernel (no host sync).
r1_penalty forward: one program per chunk of one sample (sum of squares), then the same finalize
kernel. r1_penalty backward: dx = 2 * weight * c_n * x, elementwise, in x's layout (contiguous,
channels-last or any batch-major dense layout; other strides are copied to contiguous first).

Domain indices are read on the device only: an index outside [0, K) (possible only when the
Python checks of i2i_fast.ops are bypassed, e.g. a direct operator call) gives a NaN loss and NaN
gradients for that sample at that scale, never a read outside the tensor.
"""

import math
from typing import Optional

import torch
import triton
import triton.language as tl
from torch.library import wrap_triton

from .. import checks
from .. import triton_support as ts
from .fake import is_batch_major_dense, loss_dtype

MAX_SCALES = 4  # scales per launch: one pointer argument each
MAX_LOSS_BLOCK = 1024  # gan_loss: largest tile (selected elements per program)
R1_BLOCK = 4096  # r1_penalty: elements per program
GRAD_BLOCK = 1024  # elementwise gradient kernels: elements per program

# The per-element functions (csrc/gan_loss/common.h, ElementLoss).
SQUARED, BCE, HINGE_REAL, HINGE_FAKE, LINEAR = range(5)
# Reductions.
MEAN, SUM, NONE = range(3)
REDUCTION_CODES = {"mean": MEAN, "sum": SUM, "none": NONE}
TARGET_NAMES = ("real", "fake", "generator", "label")


def element_spec(op: str, mode: str, target: str, label: float) -> tuple[int, float, float]:
    """(kind, label, sign) of the per-element function, as gan_loss_spec in common.h."""
    if target not in TARGET_NAMES:
        raise ValueError(f"{op}: target: expected 'real', 'fake', 'generator' or a number, got "
                         f"{target!r}")
    if mode in ("lsgan", "nsgan"):
        kind = SQUARED if mode == "lsgan" else BCE
        if target == "label":
            if not math.isfinite(label):
                raise ValueError(f"{op}: target: expected a finite label, got {label}")
            return kind, float(label), 0.0
        return kind, 0.0 if target == "fake" else 1.0, 0.0
    if mode not in ("hinge", "wgan"):
        raise ValueError(f"{op}: mode: expected one of 'lsgan', 'nsgan', 'hinge', 'wgan', got "
                         f"{mode!r}")
    if target == "label":
        raise ValueError(f"{op}: target: a numeric label ({label}) is only defined for mode "
                         f"'lsgan' or 'nsgan'; mode {mode!r} takes 'real', 'fake' or 'generator'")
    if target == "generator":
        return LINEAR, 0.0, -1.0
    if mode == "hinge":
        return (HINGE_REAL if target == "real" else HINGE_FAKE), 0.0, 0.0
    return LINEAR, 0.0, -1.0 if target == "real" else 1.0


# ----- kernels: per-element functions ----------------------------------------------------------


@triton.jit
def _scalar(v, DTYPE: tl.constexpr):
    """A scalar kernel argument (a float, or a specialised constant) as a DTYPE value."""
    return (tl.zeros([], tl.float64) + v).to(DTYPE)


@triton.jit
def _log1p(u):
    """log(1 + u) for u in [0, 1], accurate also where 1 + u rounds to 1 (Goldberg's trick)."""
    w = 1.0 + u
    exact = w == 1.0
    return tl.where(exact, u, tl.log(w) * (u / tl.where(exact, 1.0, w - 1.0)))


@triton.jit
def _element_loss(x, label, sign, KIND: tl.constexpr):
    """f(x), NaN for NaN x (as element_loss in common.h)."""
    if KIND == 0:
        d = x - label
        f = d * d
    elif KIND == 1:
        # softplus(x) - label * x = (1 - label) * x + max(-x, 0) + log1p(exp(-|x|))
        f = (1.0 - label) * x + tl.where(x < 0, -x, 0.0) + _log1p(tl.exp(-tl.abs(x)))
    elif KIND == 2:
        z = 1.0 - x
        f = tl.where(z < 0, 0.0, z)
    elif KIND == 3:
        z = 1.0 + x
        f = tl.where(z < 0, 0.0, z)
    else:
        f = sign * x
    return f


@triton.jit
def _element_grad(x, label, sign, g, KIND: tl.constexpr):
    """f'(x) * g (as element_loss_grad in common.h: 0 where relu's derivative is 0)."""
    if KIND == 0:
        d = 2.0 * (x - label) * g
    elif KIND == 1:
        e = tl.exp(-tl.abs(x))
        sigmoid = tl.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        d = (sigmoid - label) * g
    elif KIND == 2:
        d = tl.where(1.0 - x <= 0, 0.0, -g)
    elif KIND == 3:
        d = tl.where(1.0 + x <= 0, 0.0, g)
    else:
        d = sign * g
    return d


# ----- kernels: gan_loss -----------------------------------------------------------------------


@triton.jit
def _tile_loss_sum(x_ptr, dom_ptr, dom_stride, pid, tile_base, tiles_per_sample, n, heads,
                   per_head, label, sign, nan_value, KIND: tl.constexpr,
                   HAS_DOMAIN: tl.constexpr, BLOCK: tl.constexpr):
    """Sum of f over this program's tile if it belongs to this scale, else 0 (masked loads)."""
    ACC = label.dtype
    local = pid - tile_base
    active = (local >= 0) & (local < n * tiles_per_sample)
    local = tl.where(active, local, 0)
    sample = local // tiles_per_sample
    start = (local - sample * tiles_per_sample) * BLOCK
    if HAS_DOMAIN:
        head = tl.load(dom_ptr + sample.to(tl.int64) * dom_stride, mask=active,
                       other=0).to(tl.int64)
    else:
        head = tl.zeros([], tl.int64)
    head_in_range = (head >= 0) & (head < heads)
    bad = head_in_range == 0
    head = tl.where(head_in_range, head, 0)
    offs = start + tl.arange(0, BLOCK)
    # The scalar conditions fold into the bound (a vector mask from one comparison).
    mask = offs < tl.where(active & head_in_range, per_head, 0)
    base = (sample.to(tl.int64) * heads + head) * per_head
    x = tl.load(x_ptr + base + offs, mask=mask, other=0.0).to(ACC)
    f = tl.where(mask, _element_loss(x, label, sign, KIND), 0.0)
    total = tl.sum(f, axis=0)
    return tl.where(active & bad, _scalar(nan_value, ACC), total)


@triton.jit
def _gan_loss_tiles_kernel(
    x0, x1, x2, x3, dom_ptr, part_ptr, dom_stride, n,
    tb1, tb2, tb3, tps0, tps1, tps2, tps3, k0, k1, k2, k3, r0, r1, r2, r3,
    label: "fp64", sign: "fp64", nan_value: "fp64",
    NUM_SCALES: tl.constexpr, KIND: tl.constexpr, HAS_DOMAIN: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """partials[pid] = sum of f over tile pid (tiles of scale s start at tb_s; tb0 = 0)."""
    ACC = part_ptr.dtype.element_ty
    pid = tl.program_id(0)
    lab = _scalar(label, ACC)
    sgn = _scalar(sign, ACC)
    total = _tile_loss_sum(x0, dom_ptr, dom_stride, pid, 0, tps0, n, k0, r0, lab, sgn, nan_value,
                           KIND, HAS_DOMAIN, BLOCK)
    if NUM_SCALES > 1:
        total += _tile_loss_sum(x1, dom_ptr, dom_stride, pid, tb1, tps1, n, k1, r1, lab, sgn,
                                nan_value, KIND, HAS_DOMAIN, BLOCK)
    if NUM_SCALES > 2:
        total += _tile_loss_sum(x2, dom_ptr, dom_stride, pid, tb2, tps2, n, k2, r2, lab, sgn,
                                nan_value, KIND, HAS_DOMAIN, BLOCK)
    if NUM_SCALES > 3:
        total += _tile_loss_sum(x3, dom_ptr, dom_stride, pid, tb3, tps3, n, k3, r3, lab, sgn,
                                nan_value, KIND, HAS_DOMAIN, BLOCK)
    tl.store(part_ptr + pid, total)


@triton.jit
def _segment_sums(part_ptr, tile_base, tiles_per_sample, rows, row_mask, BLOCK_N: tl.constexpr,
                  BLOCK_K: tl.constexpr):
    """Per row (sample): the float64 sum of its tiles_per_sample partials from tile_base on."""
    acc = tl.zeros([BLOCK_N, BLOCK_K], tl.float64)
    first = tile_base + rows.to(tl.int64) * tiles_per_sample
    for k0 in range(0, tiles_per_sample, BLOCK_K):
        k = k0 + tl.arange(0, BLOCK_K)
        m = row_mask[:, None] & (k < tiles_per_sample)[None, :]
        acc += tl.load(part_ptr + first[:, None] + k[None, :], mask=m, other=0.0).to(tl.float64)
    return tl.sum(acc, axis=1)


@triton.jit
def _scaled_segment(part_ptr, tile_base, tiles_per_sample, divisor, rows, row_mask,
                    REDUCTION: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    seg = _segment_sums(part_ptr, tile_base, tiles_per_sample, rows, row_mask, BLOCK_N, BLOCK_K)
    if REDUCTION != 1:  # mean and none divide by the per-sample count; sum does not
        seg = seg / _scalar(divisor, tl.float64)
    return seg


@triton.jit
def _finalize_kernel(
    part_ptr, out_ptr, n, tb1, tb2, tb3, tps0, tps1, tps2, tps3,
    div0: "fp64", div1: "fp64", div2: "fp64", div3: "fp64", weight: "fp64",
    NUM_SCALES: tl.constexpr, REDUCTION: tl.constexpr, BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    """One program: per sample v_n = sum over scales of segment / divisor (not divided for
    "sum"); out = weight * v (none), weight * sum_n v_n (sum) or weight * sum_n v_n / N (mean)."""
    total = tl.zeros([BLOCK_N], tl.float64)
    for n0 in range(0, n, BLOCK_N):
        rows = n0 + tl.arange(0, BLOCK_N)
        row_mask = rows < n
        v = _scaled_segment(part_ptr, 0, tps0, div0, rows, row_mask, REDUCTION, BLOCK_N, BLOCK_K)
        if NUM_SCALES > 1:
            v += _scaled_segment(part_ptr, tb1, tps1, div1, rows, row_mask, REDUCTION, BLOCK_N,
                                 BLOCK_K)
        if NUM_SCALES > 2:
            v += _scaled_segment(part_ptr, tb2, tps2, div2, rows, row_mask, REDUCTION, BLOCK_N,
                                 BLOCK_K)
        if NUM_SCALES > 3:
            v += _scaled_segment(part_ptr, tb3, tps3, div3, rows, row_mask, REDUCTION, BLOCK_N,
                                 BLOCK_K)
        if REDUCTION == 2:
            tl.store(out_ptr + rows, (_scalar(weight, tl.float64) * v).to(out_ptr.dtype.element_ty),
                     mask=row_mask)
        else:
            total += tl.where(row_mask, v, 0.0)
    if REDUCTION != 2:
        t = tl.sum(total, axis=0)
        if REDUCTION == 0:
            t = t / n
        tl.store(out_ptr, (_scalar(weight, tl.float64) * t).to(out_ptr.dtype.element_ty))


@triton.jit
def _scale_grads(x_ptr, gx_ptr, dom_ptr, dom_stride, g_ptr, pid, block_base, n, heads, per_head,
                 label, sign, nan_value, KIND: tl.constexpr, REDUCTION: tl.constexpr,
                 HAS_DOMAIN: tl.constexpr, BLOCK: tl.constexpr):
    """The gradient of this program's block of a scale's elements (all heads), if the block
    belongs to this scale (otherwise every access is masked)."""
    ACC = label.dtype
    numel = tl.cast(n, tl.int64) * heads * per_head
    local = pid - block_base
    active = (local >= 0) & (local.to(tl.int64) * BLOCK < numel)
    offs = tl.where(active, local, 0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < tl.where(active, numel, 0)
    sample = offs // (heads * per_head)
    head = (offs // per_head) % heads
    if HAS_DOMAIN:
        wanted = tl.load(dom_ptr + sample * dom_stride, mask=mask, other=0).to(tl.int64)
    else:
        wanted = tl.zeros([BLOCK], tl.int64)
    in_range = (wanted >= 0) & (wanted < heads)
    selected = (head == wanted) & in_range
    x = tl.load(x_ptr + offs, mask=mask & selected, other=0.0).to(ACC)
    if REDUCTION == 0:
        up = (tl.load(g_ptr).to(tl.float64) / (n * per_head)).to(ACC)
    elif REDUCTION == 1:
        up = tl.load(g_ptr).to(ACC)
    else:
        up = tl.load(g_ptr + sample, mask=mask, other=0.0).to(ACC) / per_head
    d = tl.where(selected, _element_grad(x, label, sign, up, KIND), 0.0)
    d = tl.where(in_range, d, _scalar(nan_value, ACC))
    tl.store(gx_ptr + offs, d.to(gx_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _gan_loss_grads_kernel(
    x0, x1, x2, x3, gx0, gx1, gx2, gx3, dom_ptr, g_ptr, dom_stride, n,
    bb1, bb2, bb3, k0, k1, k2, k3, r0, r1, r2, r3,
    label: "fp64", sign: "fp64", nan_value: "fp64",
    NUM_SCALES: tl.constexpr, KIND: tl.constexpr, REDUCTION: tl.constexpr,
    HAS_DOMAIN: tl.constexpr, BLOCK: tl.constexpr,
):
    """Blocks of BLOCK elements of every scale (scale s's blocks start at bb_s; bb0 = 0)."""
    ACC = g_ptr.dtype.element_ty
    pid = tl.program_id(0)
    lab = _scalar(label, ACC)
    sgn = _scalar(sign, ACC)
    _scale_grads(x0, gx0, dom_ptr, dom_stride, g_ptr, pid, 0, n, k0, r0, lab, sgn, nan_value,
                 KIND, REDUCTION, HAS_DOMAIN, BLOCK)
    if NUM_SCALES > 1:
        _scale_grads(x1, gx1, dom_ptr, dom_stride, g_ptr, pid, bb1, n, k1, r1, lab, sgn,
                     nan_value, KIND, REDUCTION, HAS_DOMAIN, BLOCK)
    if NUM_SCALES > 2:
        _scale_grads(x2, gx2, dom_ptr, dom_stride, g_ptr, pid, bb2, n, k2, r2, lab, sgn,
                     nan_value, KIND, REDUCTION, HAS_DOMAIN, BLOCK)
    if NUM_SCALES > 3:
        _scale_grads(x3, gx3, dom_ptr, dom_stride, g_ptr, pid, bb3, n, k3, r3, lab, sgn,
                     nan_value, KIND, REDUCTION, HAS_DOMAIN, BLOCK)


# ----- kernels: r1_penalty ---------------------------------------------------------------------


@triton.jit
def _r1_chunk_sums_kernel(x_ptr, part_ptr, per_sample, chunks, BLOCK: tl.constexpr):
    """partials[pid] = sum of x^2 over chunk pid % chunks of sample pid // chunks."""
    ACC = part_ptr.dtype.element_ty
    pid = tl.program_id(0)
    sample = pid // chunks
    start = (pid - sample * chunks).to(tl.int64) * BLOCK
    offs = start + tl.arange(0, BLOCK)
    mask = offs < per_sample
    x = tl.load(x_ptr + sample.to(tl.int64) * per_sample + offs, mask=mask, other=0.0).to(ACC)
    tl.store(part_ptr + pid, tl.sum(x * x, axis=0))


@triton.jit
def _r1_grads_kernel(x_ptr, dx_ptr, g_ptr, numel, per_sample, n, two_weight: "fp64",
                     REDUCTION: tl.constexpr, BLOCK: tl.constexpr):
    """dx = 2 * weight * c_n * x, c_n = grad_loss / N (mean), grad_loss (sum), grad_loss[n]."""
    ACC = g_ptr.dtype.element_ty
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < numel
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC)
    if REDUCTION == 2:
        c = tl.load(g_ptr + offs // per_sample, mask=mask, other=0.0).to(tl.float64)
    elif REDUCTION == 0:
        c = tl.load(g_ptr).to(tl.float64) / n
    else:
        c = tl.load(g_ptr).to(tl.float64)
    factor = (_scalar(two_weight, tl.float64) * c).to(ACC)
    tl.store(dx_ptr + offs, (factor * x).to(dx_ptr.dtype.element_ty), mask=mask)


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
    wrap_triton(_finalize_kernel)[(1,)](
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
    wrap_triton(_gan_loss_tiles_kernel)[(total,)](
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
    wrap_triton(_gan_loss_grads_kernel)[(total,)](
        xs[0], xs[1], xs[2], xs[3], gxs[0], gxs[1], gxs[2], gxs[3], dom, grad_loss, dom_stride,
        n, bb[1], bb[2], bb[3], ks[0], ks[1], ks[2], ks[3], rs[0], rs[1], rs[2], rs[3],
        label, sign, math.nan,
        NUM_SCALES=len(scales), KIND=kind, REDUCTION=reduction, HAS_DOMAIN=has_domain,
        BLOCK=GRAD_BLOCK, num_warps=ts.num_warps_for(GRAD_BLOCK))


# ----- argument checks (direct torch.ops calls bypass i2i_fast.ops) -----------------------------


def _check_outputs(op: str, outputs: list[torch.Tensor], domain: Optional[torch.Tensor]) -> None:
    """Shapes, dtypes and devices (never the domain's values: no host sync, and this also runs
    on FakeTensors)."""
    scales = checks.loss_outputs(op, list(outputs), heads=domain is not None)
    if domain is None:
        return
    if domain.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"{op}: domain: expected an int64 or int32 tensor of domain indices, got "
                        f"{domain.dtype}")
    n = scales[0].shape[0]
    if domain.dim() != 1 or domain.shape[0] != n:
        raise ValueError(f"{op}: domain: expected shape ({n},) (one index per sample), got "
                         f"{tuple(domain.shape)}")
    if domain.device != scales[0].device:
        raise ValueError(f"{op}: domain: expected device {scales[0].device} (that of outputs), "
                         f"got {domain.device}")


def _reduction_code(op: str, reduction: str) -> int:
    return REDUCTION_CODES[checks.choice(op, "reduction", reduction, tuple(REDUCTION_CODES))]


def _check_grad_loss(op: str, grad_loss: torch.Tensor, reduction: int, n: int,
                     like: torch.Tensor) -> None:
    expected = (n,) if reduction == NONE else ()
    if tuple(grad_loss.shape) != expected or grad_loss.device != like.device:
        raise ValueError(f"{op}: grad_loss: expected shape {expected} on {like.device}, got "
                         f"{tuple(grad_loss.shape)} on {grad_loss.device}")
    if not grad_loss.is_floating_point():
        raise TypeError(f"{op}: grad_loss: expected a floating tensor, got {grad_loss.dtype}")


def _check_r1(op: str, grads: torch.Tensor, weight: float) -> None:
    checks.batched(op, "grads", grads, 1, "(N, ...) with a batch dimension")
    checks.finite_number(op, "weight", weight)


# ----- the operators ---------------------------------------------------------------------------


def _gan_loss(outputs: list[torch.Tensor], mode: str, target: str, label: float,
              domain: Optional[torch.Tensor], reduction: str) -> torch.Tensor:
    op = "gan_loss"
    _check_outputs(op, outputs, domain)
    kind, lab, sign = element_spec(op, mode, target, label)
    red = _reduction_code(op, reduction)
    scales = [x.contiguous() for x in outputs]
    result = None
    for first in range(0, len(scales), MAX_SCALES):
        part = _gan_loss_group(scales[first:first + MAX_SCALES], kind, lab, sign, domain, red)
        result = part if result is None else result + part
    return result


def _gan_loss_backward(grad_loss: torch.Tensor, outputs: list[torch.Tensor], mode: str,
                       target: str, label: float, domain: Optional[torch.Tensor],
                       reduction: str) -> list[torch.Tensor]:
    op = "gan_loss_backward"
    _check_outputs(op, outputs, domain)
    kind, lab, sign = element_spec(op, mode, target, label)
    red = _reduction_code(op, reduction)
    scales = [x.contiguous() for x in outputs]
    _check_grad_loss(op, grad_loss, red, int(scales[0].shape[0]), scales[0])
    g = grad_loss.to(loss_dtype(scales[0])).contiguous()
    grads = [torch.empty(x.shape, dtype=x.dtype, device=x.device) for x in scales]
    for first in range(0, len(scales), MAX_SCALES):
        _gan_loss_grads_group(g, scales[first:first + MAX_SCALES],
                              grads[first:first + MAX_SCALES], kind, lab, sign, domain, red)
    return grads


def _batch_major(x: torch.Tensor) -> torch.Tensor:
    return x if is_batch_major_dense(x) else x.contiguous()


def _r1_penalty(grads: torch.Tensor, weight: float, reduction: str) -> torch.Tensor:
    op = "r1_penalty"
    _check_r1(op, grads, weight)
    red = _reduction_code(op, reduction)
    x = _batch_major(grads)
    n = int(x.shape[0])
    per_sample = x.numel() // n
    block = min(ts.next_power_of_2(per_sample), R1_BLOCK)
    chunks = ts.cdiv(per_sample, block)
    acc = loss_dtype(x)
    partials = torch.empty((n * chunks,), dtype=acc, device=x.device)
    wrap_triton(_r1_chunk_sums_kernel)[(n * chunks,)](
        x, partials, per_sample, chunks, BLOCK=block, num_warps=ts.num_warps_for(block))
    out = torch.empty((n,) if red == NONE else (), dtype=acc, device=x.device)
    _finalize(partials, out, n, [0], [chunks], [1.0], weight, red)
    return out


def _r1_penalty_backward(grad_loss: torch.Tensor, grads: torch.Tensor, weight: float,
                         reduction: str) -> torch.Tensor:
    op = "r1_penalty_backward"
    _check_r1(op, grads, weight)
    red = _reduction_code(op, reduction)
    x = _batch_major(grads)
    n = int(x.shape[0])
    _check_grad_loss(op, grad_loss, red, n, x)
    g = grad_loss.to(loss_dtype(x)).contiguous()
    dx = torch.empty_like(x)  # x's strides (x is dense)
    numel = x.numel()
    wrap_triton(_r1_grads_kernel)[(ts.cdiv(numel, GRAD_BLOCK),)](
        x, dx, g, numel, numel // n, n, 2.0 * weight, REDUCTION=red, BLOCK=GRAD_BLOCK,
        num_warps=ts.num_warps_for(GRAD_BLOCK))
    return dx


# ----- fake implementations --------------------------------------------------------------------


def _fake_gan_loss(outputs, mode, target, label, domain, reduction):
    x = outputs[0]
    return x.new_empty((x.shape[0],) if reduction == "none" else (), dtype=loss_dtype(x))


def _fake_gan_loss_backward(grad_loss, outputs, mode, target, label, domain, reduction):
    return [x.new_empty(x.shape) for x in outputs]


def _fake_r1_penalty(grads, weight, reduction):
    return grads.new_empty((grads.shape[0],) if reduction == "none" else (),
                           dtype=loss_dtype(grads))


def _fake_r1_penalty_backward(grad_loss, grads, weight, reduction):
    if is_batch_major_dense(grads):
        return torch.empty_strided(grads.shape, grads.stride(), dtype=grads.dtype,
                                   device=grads.device)
    return grads.new_empty(grads.shape)


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
                                            _fake_gan_loss_backward)
gan_loss_op = ts.register_operator("gan_loss", _gan_loss, _fake_gan_loss,
                                   setup_context=_gan_loss_setup_context,
                                   backward=_gan_loss_autograd)
r1_penalty_backward_op = ts.register_operator(
    "r1_penalty_backward", _r1_penalty_backward, _fake_r1_penalty_backward,
    setup_context=_r1_backward_setup_context, backward=_r1_backward_autograd)
r1_penalty_op = ts.register_operator("r1_penalty", _r1_penalty, _fake_r1_penalty,
                                     setup_context=_r1_setup_context, backward=_r1_autograd)

OPERATORS = (gan_loss_op, gan_loss_backward_op, r1_penalty_op, r1_penalty_backward_op)


# ----- what the "triton" backend runs (arguments already checked by i2i_fast.ops) -----------------


def gan_loss(outputs, mode: str, target: str, label: float, domain: Optional[torch.Tensor],
             reduction: str) -> torch.Tensor:
    return gan_loss_op(list(outputs), mode, target, label, domain, reduction)


def r1_penalty(grads: torch.Tensor, weight: float, reduction: str) -> torch.Tensor:
    return r1_penalty_op(grads, weight, reduction)
