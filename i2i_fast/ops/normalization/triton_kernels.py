"""The Triton kernels of the normalization family (device code only; triton.py launches them and
registers the operators).

All three normalizations are ``y = act((x - mean_g) * rstd_g * w + b)`` (see
csrc/normalization/common.h), with statistics over the group g = (n, c) (instance: AdaIN,
InstanceNorm) or g = n (layer). The kernels see sample n as a C x S matrix (S = spatial size)
with strides (S, 1) for a contiguous x or (1, C) for a channels-last x: both layouts are read in
place. A program owns a tile of ``BLOCK_C`` channels of one sample and walks a range of spatial
positions in chunks of ``BLOCK_S`` (``_program_tile``; the launch plan is triton.py's
``LaunchPlan``); the tile is contiguous along S (NCHW) or along C (channels-last), so loads are
coalesced and vectorised (16 bytes) in both layouts.

Statistics accumulate in float32 (float64 for float64 x), exactly per chunk (mean, then the sum
of squared deviations about it) and merged across chunks and programs with Chan's formula: never
E[x^2] - E[x]^2.

Forward:
  * ``instance_forward_kernel``: instance statistics with enough (n, channel-tile) programs:
    statistics, then normalisation, in one program. When the whole spatial extent fits in one
    chunk, x is read once and kept in registers; otherwise the second sweep re-reads it (from L2
    for moderate sizes).
  * few programs (N*C small next to the SM count) and always for layer statistics: the spatial
    reduction is split across programs: ``partial_moments_kernel`` per (n, c, split),
    ``merge_partial_moments_kernel`` into mean/rstd per group, then ``normalize_kernel`` over the
    same splits.
Backward (dy and x in the same layout):
  * per (n, c): sums of g and g * xhat, g = dL/d(pre-activation); dx = rstd*w*g + k_x*(x - mean)
    + k_0 with k_x, k_0 from the group's sums; weight/bias gradients from the same sums.
    Instance statistics without a split: ``instance_backward_kernel``; with one chunk, x and dy
    are read once. Otherwise ``partial_grad_sums_kernel`` over (n, c, split), torch reductions of
    those small sums, then ``input_grad_kernel``.
Offsets: each sample's base offset is 64-bit; offsets inside a sample are 32-bit unless a sample
has 2**31 elements or more (LONG_INDEX).
"""

import triton
import triton.language as tl

from ..triton_device import index, scalar


# ----- device functions ------------------------------------------------------------------------


@triton.jit
def _program_tile(C, S, c_stride, c_tiles, splits, split_len, BLOCK_C: tl.constexpr,
                  LONG_INDEX: tl.constexpr):
    """The tile of this program (LaunchPlan): channels c (c_mask: c < C) of sample n, whose values
    start at offset `sample` (64-bit) and lie at c_off inside it, over spatial positions
    [s_begin, s_end), split `split` of the sample's range. Without a split (splits 1,
    split_len S) the range is all of [0, S)."""
    pid = tl.program_id(0)
    split = pid % splits
    rest = pid // splits
    n = rest // c_tiles
    c = (rest % c_tiles) * BLOCK_C + tl.arange(0, BLOCK_C)
    c_mask = c < C
    sample = n.to(tl.int64) * C * S
    c_off = index(c, LONG_INDEX) * c_stride
    s_begin = split * split_len
    s_end = tl.minimum(s_begin + split_len, S)
    return split, n, c, c_mask, sample, c_off, s_begin, s_end


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
    offs = c_off[:, None] + index(s, LONG_INDEX)[None, :] * s_stride
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
        n_a = scalar(s0 - s_begin, ACC)
        n_b = scalar(tl.minimum(s_end - s0, BLOCK_S), ACC)
        mean_b, m2_b = _tile_moments(xt, mask, n_b)
        mean, m2 = _merge_moments(mean, m2, n_a, mean_b, m2_b, n_b)
    return mean, m2


@triton.jit
def _channel_params(w_ptr, b_ptr, n, c, c_mask, w_nstride, b_nstride, HAS_W: tl.constexpr,
                    HAS_B: tl.constexpr, ACC: tl.constexpr, BLOCK_C: tl.constexpr):
    """weight[n, c] and bias[n, c] (stride 0 over n for per-channel parameters); 1 and 0 if
    absent."""
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
def instance_forward_kernel(
    x_ptr, y_ptr, w_ptr, b_ptr, mean_ptr, rstd_ptr,
    C, S, c_stride, s_stride, c_tiles, w_nstride, b_nstride, eps: "fp64", slope: "fp64",
    HAS_W: tl.constexpr, HAS_B: tl.constexpr, ACTIVATION: tl.constexpr,
    ACC_FP64: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_S: tl.constexpr,
    ONE_CHUNK: tl.constexpr, LONG_INDEX: tl.constexpr,
):
    """Instance statistics and output of BLOCK_C channels of one sample (no split)."""
    ACC = mean_ptr.dtype.element_ty  # float32, or float64 for float64 x
    _, n, c, c_mask, sample, c_off, _, _ = _program_tile(C, S, c_stride, c_tiles, 1, S,
                                                          BLOCK_C, LONG_INDEX)
    x_ptr += sample
    y_ptr += sample
    count = scalar(S, ACC)
    eps_ = scalar(eps, ACC)
    slope_ = scalar(slope, ACC)
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
def partial_moments_kernel(
    x_ptr, pmean_ptr, pm2_ptr, C, S, c_stride, s_stride, c_tiles, splits, split_len,
    BLOCK_C: tl.constexpr, BLOCK_S: tl.constexpr, LONG_INDEX: tl.constexpr,
):
    """Mean and M2 of each (n, c) over one split of the spatial range, into [N, C, splits]."""
    ACC = pmean_ptr.dtype.element_ty  # float32, or float64 for float64 x
    split, n, c, c_mask, sample, c_off, s_begin, s_end = _program_tile(
        C, S, c_stride, c_tiles, splits, split_len, BLOCK_C, LONG_INDEX)
    x_ptr += sample
    mean, m2 = _range_moments(x_ptr, c_off, c_mask, s_begin, s_end, s_stride, ACC, BLOCK_C,
                              BLOCK_S, LONG_INDEX)
    part = (n.to(tl.int64) * C + c) * splits + split
    tl.store(pmean_ptr + part, mean, mask=c_mask)
    tl.store(pm2_ptr + part, m2, mask=c_mask)


@triton.jit
def merge_partial_moments_kernel(
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
    mean = scalar(0.0, ACC)
    m2 = scalar(0.0, ACC)
    count = scalar(0.0, ACC)
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
    tl.store(rstd_ptr + g, _rstd(m2, count, scalar(eps, ACC), MUNIT_STD, ACC_FP64))


@triton.jit
def normalize_kernel(
    x_ptr, y_ptr, w_ptr, b_ptr, mean_ptr, rstd_ptr,
    C, S, c_stride, s_stride, c_tiles, splits, split_len, w_nstride, b_nstride, slope: "fp64",
    HAS_W: tl.constexpr, HAS_B: tl.constexpr, ACTIVATION: tl.constexpr, LAYER: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_S: tl.constexpr, LONG_INDEX: tl.constexpr,
):
    """Output of one (n, channel tile, split) from the statistics computed before."""
    ACC = mean_ptr.dtype.element_ty  # float32, or float64 for float64 x
    split, n, c, c_mask, sample, c_off, s_begin, s_end = _program_tile(
        C, S, c_stride, c_tiles, splits, split_len, BLOCK_C, LONG_INDEX)
    w, b = _channel_params(w_ptr, b_ptr, n, c, c_mask, w_nstride, b_nstride, HAS_W, HAS_B, ACC,
                           BLOCK_C)
    mean, rstd = _group_stats(mean_ptr, rstd_ptr, n, C, c, c_mask, LAYER, ACC, BLOCK_C)
    _normalize_range(x_ptr + sample, y_ptr + sample, c_off, c_mask, s_begin, s_end, s_stride,
                     mean, rstd * w, b, scalar(slope, ACC), ACTIVATION, ACC, BLOCK_S,
                     LONG_INDEX)


@triton.jit
def instance_backward_kernel(
    x_ptr, dy_ptr, dx_ptr, w_ptr, b_ptr, mean_ptr, rstd_ptr, sum_g_ptr, sum_gx_ptr,
    C, S, c_stride, s_stride, c_tiles, w_nstride, b_nstride, slope: "fp64",
    HAS_W: tl.constexpr, HAS_B: tl.constexpr, ACTIVATION: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_S: tl.constexpr,
    ONE_CHUNK: tl.constexpr, LONG_INDEX: tl.constexpr,
):
    """dx of BLOCK_C channels of one sample (instance statistics, no split), and the per-(n, c)
    sums of g and g * xhat (the weight/bias gradients before any sum over n)."""
    ACC = mean_ptr.dtype.element_ty  # float32, or float64 for float64 x
    _, n, c, c_mask, sample, c_off, _, _ = _program_tile(C, S, c_stride, c_tiles, 1, S,
                                                          BLOCK_C, LONG_INDEX)
    x_ptr += sample
    dy_ptr += sample
    dx_ptr += sample
    count = scalar(S, ACC)
    slope_ = scalar(slope, ACC)
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
def partial_grad_sums_kernel(
    x_ptr, dy_ptr, w_ptr, b_ptr, mean_ptr, rstd_ptr, psum_g_ptr, psum_gx_ptr,
    C, S, c_stride, s_stride, c_tiles, splits, split_len, w_nstride, b_nstride, slope: "fp64",
    HAS_W: tl.constexpr, HAS_B: tl.constexpr, ACTIVATION: tl.constexpr, LAYER: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_S: tl.constexpr, LONG_INDEX: tl.constexpr,
):
    """Sums of g and g * xhat of each (n, c) over one split, into [N, C, splits]."""
    ACC = mean_ptr.dtype.element_ty  # float32, or float64 for float64 x
    split, n, c, c_mask, sample, c_off, s_begin, s_end = _program_tile(
        C, S, c_stride, c_tiles, splits, split_len, BLOCK_C, LONG_INDEX)
    w, b = _channel_params(w_ptr, b_ptr, n, c, c_mask, w_nstride, b_nstride, HAS_W, HAS_B, ACC,
                           BLOCK_C)
    mean, rstd = _group_stats(mean_ptr, rstd_ptr, n, C, c, c_mask, LAYER, ACC, BLOCK_C)
    sum_g, sum_gx = _range_grad_sums(x_ptr + sample, dy_ptr + sample, c_off, c_mask, s_begin,
                                     s_end, s_stride, mean, rstd, rstd * w, b,
                                     scalar(slope, ACC), ACTIVATION, ACC, BLOCK_C, BLOCK_S,
                                     LONG_INDEX)
    part = (n.to(tl.int64) * C + c) * splits + split
    tl.store(psum_g_ptr + part, sum_g, mask=c_mask)
    tl.store(psum_gx_ptr + part, sum_gx, mask=c_mask)


@triton.jit
def input_grad_kernel(
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
    split, n, c, c_mask, sample, c_off, s_begin, s_end = _program_tile(
        C, S, c_stride, c_tiles, splits, split_len, BLOCK_C, LONG_INDEX)
    w, b = _channel_params(w_ptr, b_ptr, n, c, c_mask, w_nstride, b_nstride, HAS_W, HAS_B, ACC,
                           BLOCK_C)
    mean, rstd = _group_stats(mean_ptr, rstd_ptr, n, C, c, c_mask, LAYER, ACC, BLOCK_C)
    sum_dxhat, sum_dxhat_xhat = _group_stats(gsum_dxhat_ptr, gsum_dxhat_xhat_ptr, n, C, c, c_mask,
                                             LAYER, ACC, BLOCK_C)
    k_x, k_0 = _input_grad_coefficients(sum_dxhat, sum_dxhat_xhat, scalar(count, ACC), rstd,
                                        scalar(eps, ACC), MUNIT_STD)
    _input_grad_range(x_ptr + sample, dy_ptr + sample, dx_ptr + sample, c_off, c_mask, s_begin,
                      s_end, s_stride, mean, rstd, rstd * w, b, scalar(slope, ACC), k_x, k_0,
                      ACTIVATION, ACC, BLOCK_S, LONG_INDEX)
