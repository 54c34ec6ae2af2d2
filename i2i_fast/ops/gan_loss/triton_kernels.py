"""The Triton kernels of the GAN loss family (device code only; triton.py launches them and
registers the operators).

The definitions are those of csrc/gan_loss/common.h (and ``reference.py``): per-element function
f by (mode, target) (KIND: the codes below), head ``domain[n]`` of (N, K, ...) outputs,
reductions mean / sum / none over the scales (REDUCTION). Accumulation in float32 (float64 for
float64 inputs); partial sums are merged in float64.

gan_loss forward: two launches whatever the number of scales (up to MAX_SCALES scales per launch,
triton.py).
  * ``gan_loss_tiles_kernel``: one program per tile of at most BLOCK selected elements of one
    (scale, sample) segment -- the R_s contiguous elements of head domain[n] of sample n. Every
    scale's pointer is an argument of the one kernel; a program works on the scale whose tile
    range holds its id (the others' loads are fully masked). Each program writes the sum of f(x)
    over its tile.
  * ``finalize_kernel``: one program merges each segment's tile sums in float64 and then the
    segments into the (N,) values or the scalar, in a fixed order (deterministic: no atomics).
gan_loss backward (``gan_loss_grads_kernel``): one launch over the concatenated elements of every
scale (all heads): the selected head gets f'(x) * upstream, the others 0; grad_loss is read by the
kernel (no host sync).
r1_penalty forward: ``r1_chunk_sums_kernel``, one program per chunk of one sample (sum of
squares), then ``finalize_kernel``. r1_penalty backward (``r1_grads_kernel``): dx = 2 * weight *
c_n * x, elementwise, in x's layout.

Domain indices are read on the device only: an index outside [0, K) gives a NaN loss and NaN
gradients for that sample at that scale, never a read outside the tensor.
"""

import triton
import triton.language as tl

from ..triton_device import scalar

# The per-element functions (KIND; csrc/gan_loss/common.h, ElementLoss).
SQUARED, BCE, HINGE_REAL, HINGE_FAKE, LINEAR, SIGMOID_BCE = range(6)
# The reductions (REDUCTION).
MEAN, SUM, NONE = range(3)


# ----- kernels: per-element functions ----------------------------------------------------------


@triton.jit
def _log1p(u):
    """log(1 + u) for u in [-1, 1], accurate also where 1 + u rounds to 1 (Goldberg's trick);
    -inf at u = -1."""
    w = 1.0 + u
    exact = w == 1.0
    return tl.where(exact, u, tl.log(w) * (u / tl.where(exact, 1.0, w - 1.0)))


@triton.jit
def _sigmoid_probability(x):
    """sigmoid(x) as PyTorch computes it, 1 / (1 + exp(-x)): exactly 0 or 1 where it saturates
    (sigmoid_probability in common.h)."""
    return 1.0 / (1.0 + tl.exp(-x))


@triton.jit
def _clamped_log(v):
    """max(v, -100), NaN staying NaN (tl.maximum may drop a NaN)."""
    return tl.where(v < -100.0, -100.0, v)


@triton.jit
def _element_loss(x, label, sign, KIND: tl.constexpr):
    """f(x), NaN for NaN x (as element_loss in common.h)."""
    if KIND == 0:
        d = x - label
        f = d * d
    elif KIND == 1:
        # softplus(x) - label * x = (1 - label) * x + max(-x, 0) + log1p(exp(-|x|))
        f = (1.0 - label) * x + tl.where(x < 0, -x, 0.0) + _log1p(tl.exp(-tl.abs(x)))
    elif KIND == 5:
        # binary_cross_entropy(sigmoid(x), label), its logarithms clamped at -100
        p = _sigmoid_probability(x)
        f = (label - 1.0) * _clamped_log(_log1p(-p)) - label * _clamped_log(tl.log(p))
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
    elif KIND == 5:
        # binary_cross_entropy's backward, then sigmoid's (element_loss_grad in common.h)
        p = _sigmoid_probability(x)
        variance = (1.0 - p) * p
        # PyTorch's 1e-12 is a float32 constant, in float64 too
        eps = (tl.zeros([], tl.float32) + 1e-12).to(x.dtype)
        d = g * (p - label) / tl.where(variance < eps, eps, variance) * (1.0 - p) * p
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
    return tl.where(active & bad, scalar(nan_value, ACC), total)


@triton.jit
def gan_loss_tiles_kernel(
    x0, x1, x2, x3, dom_ptr, part_ptr, dom_stride, n,
    tb1, tb2, tb3, tps0, tps1, tps2, tps3, k0, k1, k2, k3, r0, r1, r2, r3,
    label: "fp64", sign: "fp64", nan_value: "fp64",
    NUM_SCALES: tl.constexpr, KIND: tl.constexpr, HAS_DOMAIN: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """partials[pid] = sum of f over tile pid (tiles of scale s start at tb_s; tb0 = 0)."""
    ACC = part_ptr.dtype.element_ty
    pid = tl.program_id(0)
    lab = scalar(label, ACC)
    sgn = scalar(sign, ACC)
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
        seg = seg / scalar(divisor, tl.float64)
    return seg


@triton.jit
def finalize_kernel(
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
            tl.store(out_ptr + rows, (scalar(weight, tl.float64) * v).to(out_ptr.dtype.element_ty),
                     mask=row_mask)
        else:
            total += tl.where(row_mask, v, 0.0)
    if REDUCTION != 2:
        t = tl.sum(total, axis=0)
        if REDUCTION == 0:
            t = t / n
        tl.store(out_ptr, (scalar(weight, tl.float64) * t).to(out_ptr.dtype.element_ty))


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
    d = tl.where(in_range, d, scalar(nan_value, ACC))
    tl.store(gx_ptr + offs, d.to(gx_ptr.dtype.element_ty), mask=mask)


@triton.jit
def gan_loss_grads_kernel(
    x0, x1, x2, x3, gx0, gx1, gx2, gx3, dom_ptr, g_ptr, dom_stride, n,
    bb1, bb2, bb3, k0, k1, k2, k3, r0, r1, r2, r3,
    label: "fp64", sign: "fp64", nan_value: "fp64",
    NUM_SCALES: tl.constexpr, KIND: tl.constexpr, REDUCTION: tl.constexpr,
    HAS_DOMAIN: tl.constexpr, BLOCK: tl.constexpr,
):
    """Blocks of BLOCK elements of every scale (scale s's blocks start at bb_s; bb0 = 0)."""
    ACC = g_ptr.dtype.element_ty
    pid = tl.program_id(0)
    lab = scalar(label, ACC)
    sgn = scalar(sign, ACC)
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
def r1_chunk_sums_kernel(x_ptr, part_ptr, per_sample, chunks, BLOCK: tl.constexpr):
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
def r1_grads_kernel(x_ptr, dx_ptr, g_ptr, numel, per_sample, n, two_weight: "fp64",
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
    factor = (scalar(two_weight, tl.float64) * c).to(ACC)
    tl.store(dx_ptr + offs, (factor * x).to(dx_ptr.dtype.element_ty), mask=mask)
