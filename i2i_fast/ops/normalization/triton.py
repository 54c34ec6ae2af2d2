"""Triton kernels of the normalization family, registered as torch operators ``i2i_fast_triton::*``.

Operators (the same schemas as the compiled ``i2i_fast::*_forward`` / ``*_backward``):

    adain_forward(x, weight, bias, eps, activation, negative_slope) -> (out, mean, rstd)
    adain_backward(grad_out, x, weight, bias, mean, rstd, eps, activation, negative_slope)
        -> (grad_x, grad_weight, grad_bias)
    instance_norm_forward / instance_norm_backward  (weight, bias optional, per channel)
    layer_norm_forward / layer_norm_backward        (+ style "munit" or "standard")

The forward operators are differentiable (their backward calls the backward operators, which are
not: no double backward). ``adain``, ``instance_norm`` and ``layer_norm`` below are what the
"triton" backend runs: the forward operator's first output.

All three normalizations are ``y = act((x - mean_g) * rstd_g * w + b)`` (see
csrc/normalization/common.h), with statistics over the group g = (n, c) (instance: AdaIN,
InstanceNorm) or g = n (layer). The kernels see sample n as a C x S matrix (S = spatial size)
with strides (S, 1) for a contiguous x or (1, C) for a channels-last x: both layouts are read in
place (other strides go through a contiguous copy, and the output keeps x's layout like the CPU
kernels). A program owns a tile of ``BLOCK_C`` channels of one sample and walks a range of
spatial positions in chunks of ``BLOCK_S``; the tile is contiguous along S (NCHW) or along C
(channels-last), so loads are coalesced and vectorised (16 bytes) in both layouts.

Statistics accumulate in float32 (float64 for float64 x), exactly per chunk (mean, then the sum
of squared deviations about it) and merged across chunks and programs with Chan's formula: never
E[x^2] - E[x]^2.

Forward:
  * instance statistics, enough (n, channel-tile) programs: one fused kernel per program:
    statistics, then normalisation. When the whole spatial extent fits in one chunk, x is read
    once and kept in registers; otherwise the second sweep re-reads it (from L2 for moderate
    sizes).
  * few programs (N*C small next to the SM count) and always for layer statistics: the spatial
    reduction is split across programs: partial moments per (n, c, split), a small kernel merges
    them into mean/rstd per group, then a normalisation kernel over the same splits.
Backward (dy and x in the same layout):
  * per (n, c): sums of g and g * xhat, g = dL/d(pre-activation); dx = rstd*w*g + k_x*(x - mean)
    + k_0 with k_x, k_0 from the group's sums; weight/bias gradients from the same sums.
    Instance statistics without a split: one fused kernel; with one chunk, x and dy are read
    once. Otherwise a sums kernel over (n, c, split), torch reductions of those small sums, then
    the dx kernel.
Offsets: each sample's base offset is 64-bit; offsets inside a sample are 32-bit unless a sample
has 2**31 elements or more.

dtypes: float16, bfloat16, float32 (float32 accumulation) and float64 (float64 accumulation);
weight/bias in x's dtype or float32 for a 16-bit x.
"""

import dataclasses
from typing import Optional

import torch
import triton
import triton.language as tl
from torch.library import wrap_triton

from .. import checks
from .. import triton_support as ts
from .fake import is_channels_last_dense, output_like

ACTIVATION_CODES = {"none": 0, "relu": 1, "leaky_relu": 2}

# ----- launch plan -----------------------------------------------------------------------------

TILE_ELEMENTS = 4096  # values of x a program holds at once (16 KiB of float32)
CHANNELS_LAST_BLOCK_C = 64  # channels of a channels-last tile: 128-256 contiguous bytes per row
CHANNELS_LAST_MIN_BLOCK_C = 16  # narrowest channels-last tile (64 contiguous bytes of float32)
MIN_SPLIT_ELEMENTS = 4096  # a program of a split reduction covers at least this many values
MAX_SPLITS = 64
LONG_INDEX_ELEMENTS = 2**31  # samples this large use 64-bit offsets inside the sample


@dataclasses.dataclass(frozen=True)
class LaunchPlan:
    """How the (N, C, S) problem is cut into programs.

    A program covers sample n, channels [ct*block_c, (ct+1)*block_c) (ct < c_tiles) and spatial
    positions [j*split_len, (j+1)*split_len) (j < splits), in chunks of block_s.
    """

    block_c: int
    block_s: int
    c_tiles: int
    splits: int
    split_len: int
    long_index: bool
    num_warps: int

    def programs(self, n: int) -> int:
        return n * self.c_tiles * self.splits


def plan_launch(n: int, c: int, s: int, channels_last: bool, min_programs: int) -> LaunchPlan:
    """Tile sizes and split of the spatial reduction for an (n, c, s) problem.

    Tiles hold up to TILE_ELEMENTS values, contiguous along S (NCHW) or C (channels-last). When
    that gives fewer than `min_programs` programs, narrower channel tiles come first, then the
    spatial range is split (each split keeping at least MIN_SPLIT_ELEMENTS values).
    """
    n, c, s = int(n), int(c), int(s)
    np2 = ts.next_power_of_2
    if channels_last:
        block_c = min(np2(c), CHANNELS_LAST_BLOCK_C)
        floor_c = min(block_c, CHANNELS_LAST_MIN_BLOCK_C)
    else:
        block_c = min(np2(c), max(1, TILE_ELEMENTS // min(np2(s), TILE_ELEMENTS)))
        floor_c = 1
    while block_c > floor_c and n * ts.cdiv(c, block_c) < min_programs:
        block_c //= 2
    c_tiles = ts.cdiv(c, block_c)
    block_s = min(np2(s), max(1, TILE_ELEMENTS // block_c))
    programs = n * c_tiles
    splits = 1
    if programs < min_programs:
        by_size = min(block_c, c) * s // MIN_SPLIT_ELEMENTS
        splits = max(1, min(ts.cdiv(min_programs, programs), by_size, MAX_SPLITS))
    if splits > 1:
        split_len = ts.cdiv(s, splits)
        block_s = min(block_s, np2(split_len))
        split_len = ts.cdiv(split_len, block_s) * block_s
        splits = ts.cdiv(s, split_len)
    else:
        split_len = s
    return LaunchPlan(block_c=block_c, block_s=block_s, c_tiles=c_tiles, splits=splits,
                      split_len=split_len, long_index=c * s >= LONG_INDEX_ELEMENTS,
                      num_warps=ts.num_warps_for(block_c * block_s))


# ----- kernels: shared pieces ------------------------------------------------------------------


@triton.jit
def _scalar(v, DTYPE: tl.constexpr):
    """A scalar kernel argument (int, float or a specialised constant) as a DTYPE value."""
    return (tl.zeros([], tl.float64) + v).to(DTYPE)


@triton.jit
def _index(i, LONG_INDEX: tl.constexpr):
    if LONG_INDEX:
        i = i.to(tl.int64)
    return i


@triton.jit
def _sqrt(v, ACC_FP64: tl.constexpr):
    if ACC_FP64:
        r = tl.sqrt(v)
    else:
        r = tl.sqrt_rn(v)
    return r


@triton.jit
def _activate(z, slope, ACTIVATION: tl.constexpr):
    """none / relu / leaky_relu, NaN passing through (relu(NaN) = NaN as torch.relu)."""
    if ACTIVATION == 1:
        z = tl.where(z < 0, 0.0, z)
    elif ACTIVATION == 2:
        z = tl.where(z > 0, z, z * slope)
    return z


@triton.jit
def _activation_grad(z, g, slope, ACTIVATION: tl.constexpr):
    """The gradient through the activation at pre-activation z (as csrc/common/activation.h)."""
    if ACTIVATION == 1:
        g = tl.where(z <= 0, 0.0, g)
    elif ACTIVATION == 2:
        g = tl.where(z > 0, g, g * slope)
    return g


@triton.jit
def _rstd(m2, count, eps, MUNIT_STD: tl.constexpr, ACC_FP64: tl.constexpr):
    """1/sqrt(var_biased + eps), or MUNIT's 1/(std_unbiased + eps) (NaN for a single value)."""
    if MUNIT_STD:
        r = 1.0 / (_sqrt(m2 / (count - 1.0), ACC_FP64) + eps)
    else:
        r = 1.0 / _sqrt(m2 / count + eps, ACC_FP64)
    return r


@triton.jit
def _merge_moments(mean_a, m2_a, n_a, mean_b, m2_b, n_b):
    """Chan et al.: moments of the union of two sets from their counts, means and M2."""
    total = n_a + n_b
    delta = mean_b - mean_a
    mean = mean_a + delta * (n_b / total)
    m2 = m2_a + m2_b + delta * delta * (n_a * n_b / total)
    return mean, m2


@triton.jit
def _chunk(c_off, c_mask, s0, s_end, s_stride, BLOCK_S: tl.constexpr, LONG_INDEX: tl.constexpr):
    """Offsets (inside the sample) and mask of the tile at spatial chunk [s0, s0 + BLOCK_S)."""
    s = s0 + tl.arange(0, BLOCK_S)
    mask = c_mask[:, None] & (s < s_end)[None, :]
    offs = c_off[:, None] + _index(s, LONG_INDEX)[None, :] * s_stride
    return offs, mask


@triton.jit
def _tile_moments(xt, mask, count):
    """Per-row mean and M2 of a tile whose masked entries are 0; `count` valid columns."""
    mean = tl.sum(xt, axis=1) / count
    d = tl.where(mask, xt - mean[:, None], 0.0)
    return mean, tl.sum(d * d, axis=1)


@triton.jit
def _range_moments(x_ptr, c_off, c_mask, s_begin, s_end, s_stride, ACC: tl.constexpr,
                   BLOCK_C: tl.constexpr, BLOCK_S: tl.constexpr, LONG_INDEX: tl.constexpr):
    """Per-channel mean and M2 over spatial positions [s_begin, s_end), chunk by chunk."""
    mean = tl.zeros([BLOCK_C], ACC)
    m2 = tl.zeros([BLOCK_C], ACC)
    for s0 in range(s_begin, s_end, BLOCK_S):
        offs, mask = _chunk(c_off, c_mask, s0, s_end, s_stride, BLOCK_S, LONG_INDEX)
        xt = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC)
        n_a = _scalar(s0 - s_begin, ACC)
        n_b = _scalar(tl.minimum(s_end - s0, BLOCK_S), ACC)
        mean_b, m2_b = _tile_moments(xt, mask, n_b)
        mean, m2 = _merge_moments(mean, m2, n_a, mean_b, m2_b, n_b)
    return mean, m2


@triton.jit
def _channel_params(w_ptr, b_ptr, n, c, c_mask, w_nstride, b_nstride, HAS_W: tl.constexpr,
                    HAS_B: tl.constexpr, ACC: tl.constexpr, BLOCK_C: tl.constexpr):
    """weight[n, c] and bias[n, c] (stride 0 over n for per-channel parameters); 1 and 0 if absent."""
    if HAS_W:
        w = tl.load(w_ptr + n.to(tl.int64) * w_nstride + c, mask=c_mask, other=1.0).to(ACC)
    else:
        w = tl.full([BLOCK_C], 1.0, ACC)
    if HAS_B:
        b = tl.load(b_ptr + n.to(tl.int64) * b_nstride + c, mask=c_mask, other=0.0).to(ACC)
    else:
        b = tl.zeros([BLOCK_C], ACC)
    return w, b


@triton.jit
def _group_stats(mean_ptr, rstd_ptr, n, C, c, c_mask, LAYER: tl.constexpr, ACC: tl.constexpr,
                 BLOCK_C: tl.constexpr):
    """mean and rstd of the tile's channels: per (n, c), or sample n's for layer statistics."""
    if LAYER:
        mean = tl.zeros([BLOCK_C], ACC) + tl.load(mean_ptr + n)
        rstd = tl.zeros([BLOCK_C], ACC) + tl.load(rstd_ptr + n)
    else:
        stat = n.to(tl.int64) * C + c
        mean = tl.load(mean_ptr + stat, mask=c_mask, other=0.0)
        rstd = tl.load(rstd_ptr + stat, mask=c_mask, other=0.0)
    return mean, rstd


@triton.jit
def _normalize_range(x_ptr, y_ptr, c_off, c_mask, s_begin, s_end, s_stride, mean, scale, shift,
                     slope, ACTIVATION: tl.constexpr, ACC: tl.constexpr, BLOCK_S: tl.constexpr,
                     LONG_INDEX: tl.constexpr):
    for s0 in range(s_begin, s_end, BLOCK_S):
        offs, mask = _chunk(c_off, c_mask, s0, s_end, s_stride, BLOCK_S, LONG_INDEX)
        xt = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC)
        z = (xt - mean[:, None]) * scale[:, None] + shift[:, None]
        y = _activate(z, slope, ACTIVATION)
        tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _grad_tile(xt, dyt, mean, rstd, scale, shift, slope, ACTIVATION: tl.constexpr):
    """g (gradient before the activation) and xhat of a tile."""
    xc = xt - mean[:, None]
    z = xc * scale[:, None] + shift[:, None]
    g = _activation_grad(z, dyt, slope, ACTIVATION)
    return g, xc * rstd[:, None]


@triton.jit
def _range_grad_sums(x_ptr, dy_ptr, c_off, c_mask, s_begin, s_end, s_stride, mean, rstd, scale,
                     shift, slope, ACTIVATION: tl.constexpr, ACC: tl.constexpr,
                     BLOCK_C: tl.constexpr, BLOCK_S: tl.constexpr, LONG_INDEX: tl.constexpr):
    """Per-channel sums of g and g * xhat over spatial positions [s_begin, s_end)."""
    sum_g = tl.zeros([BLOCK_C], ACC)
    sum_gx = tl.zeros([BLOCK_C], ACC)
    for s0 in range(s_begin, s_end, BLOCK_S):
        offs, mask = _chunk(c_off, c_mask, s0, s_end, s_stride, BLOCK_S, LONG_INDEX)
        xt = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC)
        dyt = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(ACC)
        g, xhat = _grad_tile(xt, dyt, mean, rstd, scale, shift, slope, ACTIVATION)
        sum_g += tl.sum(g, axis=1)
        sum_gx += tl.sum(g * xhat, axis=1)
    return sum_g, sum_gx


@triton.jit
def _input_grad_coefficients(sum_dxhat, sum_dxhat_xhat, count, rstd, eps, MUNIT_STD: tl.constexpr):
    """k_x, k_0 of dx = rstd*w*g + k_x*(x - mean) + k_0 from the group sums of dxhat = g*w and
    dxhat*xhat over `count` values (csrc/normalization/cpu.cpp, input_grad_terms)."""
    m1 = sum_dxhat / count
    if MUNIT_STD:
        # The gradient through sigma (MUNIT's unbiased std) is 0 where sigma is 0 (a constant
        # group), as torch's std backward defines it, instead of 0/0 (input_grad_terms in
        # csrc/normalization/common.h explains why rebuilding sigma from rstd is accurate enough).
        sigma = 1.0 / rstd - eps
        positive = sigma > 0
        c2 = tl.where(positive, sum_dxhat_xhat / ((count - 1.0) * tl.where(positive, sigma, 1.0)),
                      0.0)
    else:
        c2 = rstd * sum_dxhat_xhat / count
    return -rstd * c2, -rstd * m1


@triton.jit
def _input_grad_range(x_ptr, dy_ptr, dx_ptr, c_off, c_mask, s_begin, s_end, s_stride, mean, rstd,
                      scale, shift, slope, k_x, k_0, ACTIVATION: tl.constexpr, ACC: tl.constexpr,
                      BLOCK_S: tl.constexpr, LONG_INDEX: tl.constexpr):
    for s0 in range(s_begin, s_end, BLOCK_S):
        offs, mask = _chunk(c_off, c_mask, s0, s_end, s_stride, BLOCK_S, LONG_INDEX)
        xt = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC)
        dyt = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(ACC)
        g, _ = _grad_tile(xt, dyt, mean, rstd, scale, shift, slope, ACTIVATION)
        dx = scale[:, None] * g + k_x[:, None] * (xt - mean[:, None]) + k_0[:, None]
        tl.store(dx_ptr + offs, dx.to(dx_ptr.dtype.element_ty), mask=mask)


# ----- kernels ---------------------------------------------------------------------------------


@triton.jit
def _instance_forward_kernel(
    x_ptr, y_ptr, w_ptr, b_ptr, mean_ptr, rstd_ptr,
    C, S, c_stride, s_stride, c_tiles, w_nstride, b_nstride, eps: "fp64", slope: "fp64",
    HAS_W: tl.constexpr, HAS_B: tl.constexpr, ACTIVATION: tl.constexpr,
    ACC_FP64: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_S: tl.constexpr,
    ONE_CHUNK: tl.constexpr, LONG_INDEX: tl.constexpr,
):
    """Instance statistics and output of BLOCK_C channels of one sample (no split)."""
    ACC = mean_ptr.dtype.element_ty  # float32, or float64 for float64 x
    pid = tl.program_id(0)
    n = pid // c_tiles
    c = (pid % c_tiles) * BLOCK_C + tl.arange(0, BLOCK_C)
    c_mask = c < C
    sample = n.to(tl.int64) * C * S
    x_ptr += sample
    y_ptr += sample
    c_off = _index(c, LONG_INDEX) * c_stride
    count = _scalar(S, ACC)
    eps_ = _scalar(eps, ACC)
    slope_ = _scalar(slope, ACC)
    w, b = _channel_params(w_ptr, b_ptr, n, c, c_mask, w_nstride, b_nstride, HAS_W, HAS_B, ACC,
                           BLOCK_C)
    if ONE_CHUNK:
        offs, mask = _chunk(c_off, c_mask, 0, S, s_stride, BLOCK_S, LONG_INDEX)
        xt = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC)
        mean, m2 = _tile_moments(xt, mask, count)
        rstd = _rstd(m2, count, eps_, False, ACC_FP64)
        scale = rstd * w
        z = (xt - mean[:, None]) * scale[:, None] + b[:, None]
        y = _activate(z, slope_, ACTIVATION)
        tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)
    else:
        mean, m2 = _range_moments(x_ptr, c_off, c_mask, 0, S, s_stride, ACC, BLOCK_C, BLOCK_S,
                                  LONG_INDEX)
        rstd = _rstd(m2, count, eps_, False, ACC_FP64)
        _normalize_range(x_ptr, y_ptr, c_off, c_mask, 0, S, s_stride, mean, rstd * w, b, slope_,
                         ACTIVATION, ACC, BLOCK_S, LONG_INDEX)
    stat = n.to(tl.int64) * C + c
    tl.store(mean_ptr + stat, mean, mask=c_mask)
    tl.store(rstd_ptr + stat, rstd, mask=c_mask)


@triton.jit
def _partial_moments_kernel(
    x_ptr, pmean_ptr, pm2_ptr, C, S, c_stride, s_stride, c_tiles, splits, split_len,
    BLOCK_C: tl.constexpr, BLOCK_S: tl.constexpr, LONG_INDEX: tl.constexpr,
):
    """Mean and M2 of each (n, c) over one split of the spatial range, into [N, C, splits]."""
    ACC = pmean_ptr.dtype.element_ty  # float32, or float64 for float64 x
    pid = tl.program_id(0)
    split = pid % splits
    rest = pid // splits
    n = rest // c_tiles
    c = (rest % c_tiles) * BLOCK_C + tl.arange(0, BLOCK_C)
    c_mask = c < C
    x_ptr += n.to(tl.int64) * C * S
    c_off = _index(c, LONG_INDEX) * c_stride
    s_begin = split * split_len
    s_end = tl.minimum(s_begin + split_len, S)
    mean, m2 = _range_moments(x_ptr, c_off, c_mask, s_begin, s_end, s_stride, ACC, BLOCK_C,
                              BLOCK_S, LONG_INDEX)
    part = (n.to(tl.int64) * C + c) * splits + split
    tl.store(pmean_ptr + part, mean, mask=c_mask)
    tl.store(pm2_ptr + part, m2, mask=c_mask)


@triton.jit
def _merge_partial_moments_kernel(
    pmean_ptr, pm2_ptr, mean_ptr, rstd_ptr, P, S, splits, split_len, eps: "fp64",
    MUNIT_STD: tl.constexpr, ACC_FP64: tl.constexpr, BLOCK_P: tl.constexpr,
):
    """mean and rstd of group g from its P partial moments at [g*P, (g+1)*P).

    Partial p covers split p % splits of the spatial range; P = splits (instance statistics) or
    C * splits (layer statistics: all channels of the sample).
    """
    ACC = pmean_ptr.dtype.element_ty  # float32, or float64 for float64 x
    g = tl.program_id(0)
    base = g.to(tl.int64) * P
    mean = _scalar(0.0, ACC)
    m2 = _scalar(0.0, ACC)
    count = _scalar(0.0, ACC)
    for p0 in range(0, P, BLOCK_P):
        p = p0 + tl.arange(0, BLOCK_P)
        p_mask = p < P
        first = (p % splits) * split_len
        cnt = tl.where(p_mask, tl.minimum(S - first, split_len), 0).to(ACC)
        mu = tl.load(pmean_ptr + base + p, mask=p_mask, other=0.0)
        q = tl.load(pm2_ptr + base + p, mask=p_mask, other=0.0)
        n_b = tl.sum(cnt, axis=0)
        mean_b = tl.sum(cnt * mu, axis=0) / n_b
        d = mu - mean_b
        m2_b = tl.sum(q, axis=0) + tl.sum(cnt * d * d, axis=0)
        mean, m2 = _merge_moments(mean, m2, count, mean_b, m2_b, n_b)
        count += n_b
    tl.store(mean_ptr + g, mean)
    tl.store(rstd_ptr + g, _rstd(m2, count, _scalar(eps, ACC), MUNIT_STD, ACC_FP64))


@triton.jit
def _normalize_kernel(
    x_ptr, y_ptr, w_ptr, b_ptr, mean_ptr, rstd_ptr,
    C, S, c_stride, s_stride, c_tiles, splits, split_len, w_nstride, b_nstride, slope: "fp64",
    HAS_W: tl.constexpr, HAS_B: tl.constexpr, ACTIVATION: tl.constexpr, LAYER: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_S: tl.constexpr, LONG_INDEX: tl.constexpr,
):
    """Output of one (n, channel tile, split) from the statistics computed before."""
    ACC = mean_ptr.dtype.element_ty  # float32, or float64 for float64 x
    pid = tl.program_id(0)
    split = pid % splits
    rest = pid // splits
    n = rest // c_tiles
    c = (rest % c_tiles) * BLOCK_C + tl.arange(0, BLOCK_C)
    c_mask = c < C
    sample = n.to(tl.int64) * C * S
    c_off = _index(c, LONG_INDEX) * c_stride
    s_begin = split * split_len
    s_end = tl.minimum(s_begin + split_len, S)
    w, b = _channel_params(w_ptr, b_ptr, n, c, c_mask, w_nstride, b_nstride, HAS_W, HAS_B, ACC,
                           BLOCK_C)
    mean, rstd = _group_stats(mean_ptr, rstd_ptr, n, C, c, c_mask, LAYER, ACC, BLOCK_C)
    _normalize_range(x_ptr + sample, y_ptr + sample, c_off, c_mask, s_begin, s_end, s_stride,
                     mean, rstd * w, b, _scalar(slope, ACC), ACTIVATION, ACC, BLOCK_S,
                     LONG_INDEX)


@triton.jit
def _instance_backward_kernel(
    x_ptr, dy_ptr, dx_ptr, w_ptr, b_ptr, mean_ptr, rstd_ptr, sum_g_ptr, sum_gx_ptr,
    C, S, c_stride, s_stride, c_tiles, w_nstride, b_nstride, slope: "fp64",
    HAS_W: tl.constexpr, HAS_B: tl.constexpr, ACTIVATION: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_S: tl.constexpr,
    ONE_CHUNK: tl.constexpr, LONG_INDEX: tl.constexpr,
):
    """dx of BLOCK_C channels of one sample (instance statistics, no split), and the per-(n, c)
    sums of g and g * xhat (the weight/bias gradients before any sum over n)."""
    ACC = mean_ptr.dtype.element_ty  # float32, or float64 for float64 x
    pid = tl.program_id(0)
    n = pid // c_tiles
    c = (pid % c_tiles) * BLOCK_C + tl.arange(0, BLOCK_C)
    c_mask = c < C
    sample = n.to(tl.int64) * C * S
    x_ptr += sample
    dy_ptr += sample
    dx_ptr += sample
    c_off = _index(c, LONG_INDEX) * c_stride
    count = _scalar(S, ACC)
    slope_ = _scalar(slope, ACC)
    w, b = _channel_params(w_ptr, b_ptr, n, c, c_mask, w_nstride, b_nstride, HAS_W, HAS_B, ACC,
                           BLOCK_C)
    mean, rstd = _group_stats(mean_ptr, rstd_ptr, n, C, c, c_mask, False, ACC, BLOCK_C)
    scale = rstd * w
    if ONE_CHUNK:
        offs, mask = _chunk(c_off, c_mask, 0, S, s_stride, BLOCK_S, LONG_INDEX)
        xt = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC)
        dyt = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(ACC)
        g, xhat = _grad_tile(xt, dyt, mean, rstd, scale, b, slope_, ACTIVATION)
        sum_g = tl.sum(g, axis=1)
        sum_gx = tl.sum(g * xhat, axis=1)
        k_x, k_0 = _input_grad_coefficients(w * sum_g, w * sum_gx, count, rstd, 0.0, False)
        dx = scale[:, None] * g + k_x[:, None] * (xt - mean[:, None]) + k_0[:, None]
        tl.store(dx_ptr + offs, dx.to(dx_ptr.dtype.element_ty), mask=mask)
    else:
        sum_g, sum_gx = _range_grad_sums(x_ptr, dy_ptr, c_off, c_mask, 0, S, s_stride, mean, rstd,
                                         scale, b, slope_, ACTIVATION, ACC, BLOCK_C, BLOCK_S,
                                         LONG_INDEX)
        k_x, k_0 = _input_grad_coefficients(w * sum_g, w * sum_gx, count, rstd, 0.0, False)
        _input_grad_range(x_ptr, dy_ptr, dx_ptr, c_off, c_mask, 0, S, s_stride, mean, rstd, scale,
                          b, slope_, k_x, k_0, ACTIVATION, ACC, BLOCK_S, LONG_INDEX)
    stat = n.to(tl.int64) * C + c
    tl.store(sum_g_ptr + stat, sum_g, mask=c_mask)
    tl.store(sum_gx_ptr + stat, sum_gx, mask=c_mask)


@triton.jit
def _partial_grad_sums_kernel(
    x_ptr, dy_ptr, w_ptr, b_ptr, mean_ptr, rstd_ptr, psum_g_ptr, psum_gx_ptr,
    C, S, c_stride, s_stride, c_tiles, splits, split_len, w_nstride, b_nstride, slope: "fp64",
    HAS_W: tl.constexpr, HAS_B: tl.constexpr, ACTIVATION: tl.constexpr, LAYER: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_S: tl.constexpr, LONG_INDEX: tl.constexpr,
):
    """Sums of g and g * xhat of each (n, c) over one split, into [N, C, splits]."""
    ACC = mean_ptr.dtype.element_ty  # float32, or float64 for float64 x
    pid = tl.program_id(0)
    split = pid % splits
    rest = pid // splits
    n = rest // c_tiles
    c = (rest % c_tiles) * BLOCK_C + tl.arange(0, BLOCK_C)
    c_mask = c < C
    sample = n.to(tl.int64) * C * S
    c_off = _index(c, LONG_INDEX) * c_stride
    s_begin = split * split_len
    s_end = tl.minimum(s_begin + split_len, S)
    w, b = _channel_params(w_ptr, b_ptr, n, c, c_mask, w_nstride, b_nstride, HAS_W, HAS_B, ACC,
                           BLOCK_C)
    mean, rstd = _group_stats(mean_ptr, rstd_ptr, n, C, c, c_mask, LAYER, ACC, BLOCK_C)
    sum_g, sum_gx = _range_grad_sums(x_ptr + sample, dy_ptr + sample, c_off, c_mask, s_begin,
                                     s_end, s_stride, mean, rstd, rstd * w, b,
                                     _scalar(slope, ACC), ACTIVATION, ACC, BLOCK_C, BLOCK_S,
                                     LONG_INDEX)
    part = (n.to(tl.int64) * C + c) * splits + split
    tl.store(psum_g_ptr + part, sum_g, mask=c_mask)
    tl.store(psum_gx_ptr + part, sum_gx, mask=c_mask)


@triton.jit
def _input_grad_kernel(
    x_ptr, dy_ptr, dx_ptr, w_ptr, b_ptr, mean_ptr, rstd_ptr, gsum_dxhat_ptr, gsum_dxhat_xhat_ptr,
    C, S, c_stride, s_stride, c_tiles, splits, split_len, w_nstride, b_nstride, count,
    eps: "fp64", slope: "fp64",
    HAS_W: tl.constexpr, HAS_B: tl.constexpr, ACTIVATION: tl.constexpr, LAYER: tl.constexpr,
    MUNIT_STD: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_S: tl.constexpr,
    LONG_INDEX: tl.constexpr,
):
    """dx of one (n, channel tile, split) from the group sums of dxhat and dxhat * xhat (indexed
    like mean/rstd) over `count` values per group."""
    ACC = mean_ptr.dtype.element_ty  # float32, or float64 for float64 x
    pid = tl.program_id(0)
    split = pid % splits
    rest = pid // splits
    n = rest // c_tiles
    c = (rest % c_tiles) * BLOCK_C + tl.arange(0, BLOCK_C)
    c_mask = c < C
    sample = n.to(tl.int64) * C * S
    c_off = _index(c, LONG_INDEX) * c_stride
    s_begin = split * split_len
    s_end = tl.minimum(s_begin + split_len, S)
    w, b = _channel_params(w_ptr, b_ptr, n, c, c_mask, w_nstride, b_nstride, HAS_W, HAS_B, ACC,
                           BLOCK_C)
    mean, rstd = _group_stats(mean_ptr, rstd_ptr, n, C, c, c_mask, LAYER, ACC, BLOCK_C)
    sum_dxhat, sum_dxhat_xhat = _group_stats(gsum_dxhat_ptr, gsum_dxhat_xhat_ptr, n, C, c, c_mask,
                                             LAYER, ACC, BLOCK_C)
    k_x, k_0 = _input_grad_coefficients(sum_dxhat, sum_dxhat_xhat, _scalar(count, ACC), rstd,
                                        _scalar(eps, ACC), MUNIT_STD)
    _input_grad_range(x_ptr + sample, dy_ptr + sample, dx_ptr + sample, c_off, c_mask, s_begin,
                      s_end, s_stride, mean, rstd, rstd * w, b, _scalar(slope, ACC), k_x, k_0,
                      ACTIVATION, ACC, BLOCK_S, LONG_INDEX)


# ----- host side: layouts, launches ------------------------------------------------------------


def _dense(x: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """x in a layout the kernels read (x itself if contiguous or channels-last), and whether
    that layout is channels-last."""
    if x.is_contiguous():
        return x, False
    if is_channels_last_dense(x):
        return x, True
    return x.contiguous(), False


def _in_layout(t: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """t (same shape as x) in x's kernel layout; no copy when it already is."""
    if not channels_last:
        return t.contiguous()
    if is_channels_last_dense(t):
        return t
    perm = [0, *range(2, t.dim()), 1]
    inverse = [perm.index(i) for i in range(t.dim())]
    return t.permute(perm).contiguous().permute(inverse)


def _acc_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


@dataclasses.dataclass(frozen=True)
class _Problem:
    """x in kernel layout and everything the launches derive from it."""

    x: torch.Tensor
    channels_last: bool
    n: int
    c: int
    s: int
    c_stride: int
    s_stride: int
    acc: torch.dtype
    plan: LaunchPlan


def _problem(x: torch.Tensor) -> _Problem:
    xd, cl = _dense(x)
    n, c = int(xd.shape[0]), int(xd.shape[1])
    s = 1
    for d in xd.shape[2:]:
        s *= int(d)
    plan = plan_launch(n, c, s, cl, ts.min_programs(xd.device))
    return _Problem(xd, cl, n, c, s, 1 if cl else s, c if cl else 1, _acc_dtype(xd), plan)


def _param_args(weight: Optional[torch.Tensor], bias: Optional[torch.Tensor], dummy: torch.Tensor):
    """(w_ptr, b_ptr, w_nstride, b_nstride, HAS_W, HAS_B): per-sample (N, C) parameters step C
    per sample, per-channel (C,) ones 0; absent ones are replaced by an unread dummy tensor."""
    w = weight.contiguous() if weight is not None else dummy
    b = bias.contiguous() if bias is not None else dummy
    w_nstride = int(w.shape[1]) if weight is not None and weight.dim() == 2 else 0
    b_nstride = int(b.shape[1]) if bias is not None and bias.dim() == 2 else 0
    return w, b, w_nstride, b_nstride, weight is not None, bias is not None


def _forward(x, weight, bias, eps: float, activation: str, negative_slope: float, layer: bool,
             munit_std: bool):
    p = _problem(x)
    plan = p.plan
    y = torch.empty_like(p.x)
    stat_shape = (p.n,) if layer else (p.n, p.c)
    mean = torch.empty(stat_shape, dtype=p.acc, device=p.x.device)
    rstd = torch.empty(stat_shape, dtype=p.acc, device=p.x.device)
    w, b, w_nstride, b_nstride, has_w, has_b = _param_args(weight, bias, p.x)
    act = ACTIVATION_CODES[activation]
    if not layer and plan.splits == 1:
        wrap_triton(_instance_forward_kernel)[(plan.programs(p.n),)](
            p.x, y, w, b, mean, rstd, p.c, p.s, p.c_stride, p.s_stride, plan.c_tiles, w_nstride,
            b_nstride, eps, negative_slope,
            HAS_W=has_w, HAS_B=has_b, ACTIVATION=act, ACC_FP64=p.acc == torch.float64,
            BLOCK_C=plan.block_c, BLOCK_S=plan.block_s, ONE_CHUNK=p.s <= plan.block_s,
            LONG_INDEX=plan.long_index, num_warps=plan.num_warps)
        return y, mean, rstd
    pmean = torch.empty((p.n, p.c, plan.splits), dtype=p.acc, device=p.x.device)
    pm2 = torch.empty_like(pmean)
    wrap_triton(_partial_moments_kernel)[(plan.programs(p.n),)](
        p.x, pmean, pm2, p.c, p.s, p.c_stride, p.s_stride, plan.c_tiles, plan.splits,
        plan.split_len, BLOCK_C=plan.block_c, BLOCK_S=plan.block_s,
        LONG_INDEX=plan.long_index, num_warps=plan.num_warps)
    parts = p.c * plan.splits if layer else plan.splits
    groups = p.n if layer else p.n * p.c
    block_p = min(ts.next_power_of_2(parts), 1024)
    wrap_triton(_merge_partial_moments_kernel)[(groups,)](
        pmean, pm2, mean, rstd, parts, p.s, plan.splits, plan.split_len, eps,
        MUNIT_STD=munit_std, ACC_FP64=p.acc == torch.float64, BLOCK_P=block_p,
        num_warps=ts.num_warps_for(block_p))
    wrap_triton(_normalize_kernel)[(plan.programs(p.n),)](
        p.x, y, w, b, mean, rstd, p.c, p.s, p.c_stride, p.s_stride, plan.c_tiles, plan.splits,
        plan.split_len, w_nstride, b_nstride, negative_slope,
        HAS_W=has_w, HAS_B=has_b, ACTIVATION=act, LAYER=layer, BLOCK_C=plan.block_c,
        BLOCK_S=plan.block_s, LONG_INDEX=plan.long_index, num_warps=plan.num_warps)
    return y, mean, rstd


def _param_grad(param: Optional[torch.Tensor], per_nc: torch.Tensor, x: torch.Tensor):
    """The gradient of a weight/bias from per-(n, c) sums: itself for (N, C) parameters, summed
    over n for (C,) ones (and for an absent one, of x's dtype, as the CPU kernels)."""
    if param is not None and param.dim() == 2:
        return per_nc.to(param.dtype)
    return per_nc.sum(0).to(param.dtype if param is not None else x.dtype)


def _backward(grad_out, x, weight, bias, mean, rstd, eps: float, activation: str,
              negative_slope: float, layer: bool, munit_std: bool):
    p = _problem(x)
    plan = p.plan
    dy = _in_layout(grad_out.to(p.x.dtype), p.channels_last)
    dx = torch.empty_like(p.x)
    mean = mean.to(p.acc).contiguous()
    rstd = rstd.to(p.acc).contiguous()
    w, b, w_nstride, b_nstride, has_w, has_b = _param_args(weight, bias, p.x)
    act = ACTIVATION_CODES[activation]
    if not layer and plan.splits == 1:
        sum_g = torch.empty((p.n, p.c), dtype=p.acc, device=p.x.device)
        sum_gx = torch.empty_like(sum_g)
        wrap_triton(_instance_backward_kernel)[(plan.programs(p.n),)](
            p.x, dy, dx, w, b, mean, rstd, sum_g, sum_gx, p.c, p.s, p.c_stride, p.s_stride,
            plan.c_tiles, w_nstride, b_nstride, negative_slope,
            HAS_W=has_w, HAS_B=has_b, ACTIVATION=act, BLOCK_C=plan.block_c,
            BLOCK_S=plan.block_s, ONE_CHUNK=p.s <= plan.block_s, LONG_INDEX=plan.long_index,
            num_warps=plan.num_warps)
    else:
        psum_g = torch.empty((p.n, p.c, plan.splits), dtype=p.acc, device=p.x.device)
        psum_gx = torch.empty_like(psum_g)
        wrap_triton(_partial_grad_sums_kernel)[(plan.programs(p.n),)](
            p.x, dy, w, b, mean, rstd, psum_g, psum_gx, p.c, p.s, p.c_stride, p.s_stride,
            plan.c_tiles, plan.splits, plan.split_len, w_nstride, b_nstride, negative_slope,
            HAS_W=has_w, HAS_B=has_b, ACTIVATION=act, LAYER=layer,
            BLOCK_C=plan.block_c, BLOCK_S=plan.block_s, LONG_INDEX=plan.long_index,
            num_warps=plan.num_warps)
        sum_g, sum_gx = psum_g.sum(2), psum_gx.sum(2)
        # Group sums of dxhat = g * w and dxhat * xhat, indexed like mean/rstd.
        w_acc = weight.to(p.acc) if weight is not None else None
        gsum_dxhat = sum_g if w_acc is None else sum_g * w_acc
        gsum_dxhat_xhat = sum_gx if w_acc is None else sum_gx * w_acc
        if layer:
            gsum_dxhat, gsum_dxhat_xhat = gsum_dxhat.sum(1), gsum_dxhat_xhat.sum(1)
        count = p.c * p.s if layer else p.s
        wrap_triton(_input_grad_kernel)[(plan.programs(p.n),)](
            p.x, dy, dx, w, b, mean, rstd, gsum_dxhat.contiguous(), gsum_dxhat_xhat.contiguous(),
            p.c, p.s, p.c_stride, p.s_stride, plan.c_tiles, plan.splits, plan.split_len,
            w_nstride, b_nstride, count, eps, negative_slope,
            HAS_W=has_w, HAS_B=has_b, ACTIVATION=act, LAYER=layer, MUNIT_STD=munit_std,
            BLOCK_C=plan.block_c, BLOCK_S=plan.block_s, LONG_INDEX=plan.long_index,
            num_warps=plan.num_warps)
    return dx, _param_grad(weight, sum_gx, p.x), _param_grad(bias, sum_g, p.x)


# ----- argument checks (direct torch.ops calls bypass i2i_fast.ops) -----------------------------


def _check(op: str, x, weight, bias, eps, activation, per_sample: bool) -> None:
    checks.norm_input(op, x)
    shape = (x.shape[0], x.shape[1]) if per_sample else (x.shape[1],)
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None or per_sample:
            checks.norm_param(op, name, p, shape, x)
    checks.eps(op, eps)
    if activation not in ACTIVATION_CODES:
        raise ValueError(f"{op}: activation: expected one of 'none', 'relu', 'leaky_relu', got "
                         f"{activation!r}")


def _munit_std(op: str, style: str) -> bool:
    if style not in ("munit", "standard"):
        raise ValueError(f"{op}: style: expected 'munit' or 'standard', got {style!r}")
    return style == "munit"


def _check_stats(op: str, x, mean, rstd, layer: bool) -> None:
    shape = (x.shape[0],) if layer else (x.shape[0], x.shape[1])
    for name, t in (("mean", mean), ("rstd", rstd)):
        if tuple(t.shape) != shape or t.device != x.device:
            raise ValueError(f"{op}: {name}: expected shape {shape} on {x.device}, got "
                             f"{tuple(t.shape)} on {t.device}")


def _check_grad_out(op: str, grad_out, x) -> None:
    if tuple(grad_out.shape) != tuple(x.shape) or grad_out.device != x.device:
        raise ValueError(f"{op}: grad_out: expected shape {tuple(x.shape)} on {x.device}, got "
                         f"{tuple(grad_out.shape)} on {grad_out.device}")


# ----- the operators ---------------------------------------------------------------------------


def _adain_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float,
                   activation: str, negative_slope: float
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    _check("adain", x, weight, bias, eps, activation, per_sample=True)
    return _forward(x, weight, bias, eps, activation, negative_slope, False, False)


def _adain_backward(grad_out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor,
                    bias: torch.Tensor, mean: torch.Tensor, rstd: torch.Tensor, eps: float,
                    activation: str, negative_slope: float
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    _check("adain_backward", x, weight, bias, eps, activation, per_sample=True)
    _check_grad_out("adain_backward", grad_out, x)
    _check_stats("adain_backward", x, mean, rstd, layer=False)
    return _backward(grad_out, x, weight, bias, mean, rstd, eps, activation, negative_slope,
                     False, False)


def _instance_norm_forward(x: torch.Tensor, weight: Optional[torch.Tensor],
                           bias: Optional[torch.Tensor], eps: float, activation: str,
                           negative_slope: float
                           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    _check("instance_norm", x, weight, bias, eps, activation, per_sample=False)
    return _forward(x, weight, bias, eps, activation, negative_slope, False, False)


def _instance_norm_backward(grad_out: torch.Tensor, x: torch.Tensor,
                            weight: Optional[torch.Tensor], bias: Optional[torch.Tensor],
                            mean: torch.Tensor, rstd: torch.Tensor, eps: float, activation: str,
                            negative_slope: float
                            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    _check("instance_norm_backward", x, weight, bias, eps, activation, per_sample=False)
    _check_grad_out("instance_norm_backward", grad_out, x)
    _check_stats("instance_norm_backward", x, mean, rstd, layer=False)
    return _backward(grad_out, x, weight, bias, mean, rstd, eps, activation, negative_slope,
                     False, False)


def _layer_norm_forward(x: torch.Tensor, weight: Optional[torch.Tensor],
                        bias: Optional[torch.Tensor], eps: float, style: str, activation: str,
                        negative_slope: float
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    _check("layer_norm", x, weight, bias, eps, activation, per_sample=False)
    munit = _munit_std("layer_norm", style)
    return _forward(x, weight, bias, eps, activation, negative_slope, True, munit)


def _layer_norm_backward(grad_out: torch.Tensor, x: torch.Tensor, weight: Optional[torch.Tensor],
                         bias: Optional[torch.Tensor], mean: torch.Tensor, rstd: torch.Tensor,
                         eps: float, style: str, activation: str, negative_slope: float
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    _check("layer_norm_backward", x, weight, bias, eps, activation, per_sample=False)
    _check_grad_out("layer_norm_backward", grad_out, x)
    _check_stats("layer_norm_backward", x, mean, rstd, layer=True)
    munit = _munit_std("layer_norm_backward", style)
    return _backward(grad_out, x, weight, bias, mean, rstd, eps, activation, negative_slope,
                     True, munit)


# ----- fake implementations (shapes, dtypes and strides of the outputs) --------------------------


def _stats_like(x: torch.Tensor, layer: bool):
    shape = (x.shape[0],) if layer else (x.shape[0], x.shape[1])
    return x.new_empty(shape, dtype=_acc_dtype(x)), x.new_empty(shape, dtype=_acc_dtype(x))


def _param_grad_like(param: Optional[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    return param.new_empty(param.shape) if param is not None else x.new_empty((x.shape[1],))


def _fake_instance_forward(x, weight, bias, eps, activation, negative_slope):
    return (output_like(x), *_stats_like(x, layer=False))


def _fake_layer_forward(x, weight, bias, eps, style, activation, negative_slope):
    return (output_like(x), *_stats_like(x, layer=True))


def _fake_backward(grad_out, x, weight, bias, mean, rstd, eps, activation, negative_slope):
    return output_like(x), _param_grad_like(weight, x), _param_grad_like(bias, x)


def _fake_layer_backward(grad_out, x, weight, bias, mean, rstd, eps, style, activation,
                         negative_slope):
    return output_like(x), _param_grad_like(weight, x), _param_grad_like(bias, x)


# ----- autograd --------------------------------------------------------------------------------


def _setup_context(ctx, inputs, output) -> None:
    x, weight, bias, eps = inputs[:4]
    ctx.options = inputs[4:]  # (activation, negative_slope) or (style, activation, negative_slope)
    ctx.eps = eps
    _, mean, rstd = output
    ctx.mark_non_differentiable(mean, rstd)
    ctx.save_for_backward(x, weight, bias, mean, rstd)


def _gradients(ctx, grads, n_options: int):
    """(grad_x, grad_weight, grad_bias, None for eps and each option) from the backward op's
    result, keeping only the gradients autograd asked for."""
    gx, gw, gb = grads
    needs = ctx.needs_input_grad
    return (gx if needs[0] else None, gw if needs[1] else None, gb if needs[2] else None,
            None, *([None] * n_options))


def _adain_autograd(ctx, grad_out, _grad_mean, _grad_rstd):
    x, weight, bias, mean, rstd = ctx.saved_tensors
    grads = adain_backward_op(grad_out, x, weight, bias, mean, rstd, ctx.eps, *ctx.options)
    return _gradients(ctx, grads, 2)


def _instance_norm_autograd(ctx, grad_out, _grad_mean, _grad_rstd):
    x, weight, bias, mean, rstd = ctx.saved_tensors
    grads = instance_norm_backward_op(grad_out, x, weight, bias, mean, rstd, ctx.eps,
                                      *ctx.options)
    return _gradients(ctx, grads, 2)


def _layer_norm_autograd(ctx, grad_out, _grad_mean, _grad_rstd):
    x, weight, bias, mean, rstd = ctx.saved_tensors
    grads = layer_norm_backward_op(grad_out, x, weight, bias, mean, rstd, ctx.eps, *ctx.options)
    return _gradients(ctx, grads, 3)


adain_backward_op = ts.register_operator("adain_backward", _adain_backward, _fake_backward)
instance_norm_backward_op = ts.register_operator("instance_norm_backward",
                                                 _instance_norm_backward, _fake_backward)
layer_norm_backward_op = ts.register_operator("layer_norm_backward", _layer_norm_backward,
                                              _fake_layer_backward)
adain_forward_op = ts.register_operator("adain_forward", _adain_forward, _fake_instance_forward,
                                        setup_context=_setup_context, backward=_adain_autograd)
instance_norm_forward_op = ts.register_operator(
    "instance_norm_forward", _instance_norm_forward, _fake_instance_forward,
    setup_context=_setup_context, backward=_instance_norm_autograd)
layer_norm_forward_op = ts.register_operator(
    "layer_norm_forward", _layer_norm_forward, _fake_layer_forward,
    setup_context=_setup_context, backward=_layer_norm_autograd)

OPERATORS = (adain_forward_op, adain_backward_op, instance_norm_forward_op,
             instance_norm_backward_op, layer_norm_forward_op, layer_norm_backward_op)


# ----- what the "triton" backend runs (arguments already checked by i2i_fast.ops) -----------------


def adain(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float,
          activation: str, negative_slope: float) -> torch.Tensor:
    return adain_forward_op(x, weight, bias, eps, activation, negative_slope)[0]


def instance_norm(x: torch.Tensor, weight: Optional[torch.Tensor], bias: Optional[torch.Tensor],
                  eps: float, activation: str, negative_slope: float) -> torch.Tensor:
    return instance_norm_forward_op(x, weight, bias, eps, activation, negative_slope)[0]


def layer_norm(x: torch.Tensor, weight: Optional[torch.Tensor], bias: Optional[torch.Tensor],
               eps: float, style: str, activation: str, negative_slope: float) -> torch.Tensor:
    return layer_norm_forward_op(x, weight, bias, eps, style, activation, negative_slope)[0]
