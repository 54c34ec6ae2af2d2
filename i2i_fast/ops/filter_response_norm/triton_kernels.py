"""The Triton kernels of filter response normalization + TLU (device code only; triton.py
launches them and registers the operators).

The definitions are those of csrc/filter_response_norm/common.h (and ``reference.py``). One
program per (n, c) group of S = H * W elements, addressed by strides (sample, channel, spatial:
the spatial dims of a contiguous or a channels-last x merge into one with stride W's), so both
layouts are read in place. Accumulation in float32 (float64 for float64 inputs).

``frn_forward_kernel``: the group's sum of squares in BLOCK tiles, r = rsqrt(mean + eps) (stored
in rstd), then y = max(w r x + b, tau) over the same tiles.
``frn_backward_kernel``: the group's Σ g, Σ g x and Σ grad_out * share_tau (g: grad_out where z
wins the max, half at a tie, all of it at a NaN), then grad_x = w r g - w r³ x Σ(g x) / S; the
three sums go to `sums` (Σ g x scaled by r, i.e. Σ g xhat), which triton.py adds over the batch
for the parameter gradients.
"""

import triton
import triton.language as tl

from ..triton_device import index, scalar


@triton.jit
def _share_z(z, tau):
    return tl.where(z < tau, 0.0, tl.where(z == tau, 0.5, 1.0))


@triton.jit
def _share_tau(z, tau):
    return tl.where(z > tau, 0.0, tl.where(z == tau, 0.5, 1.0))


@triton.jit
def frn_forward_kernel(x_ptr, w_ptr, b_ptr, t_ptr, y_ptr, rstd_ptr, C, S, stride_n, stride_c,
                       stride_s, eps, BLOCK: tl.constexpr, LONG_INDEX: tl.constexpr):
    ACC = rstd_ptr.dtype.element_ty  # float32, or float64 for float64 x
    group = tl.program_id(0)
    n = group // C
    c = group % C
    base = index(n, LONG_INDEX) * stride_n + index(c, LONG_INDEX) * stride_c
    offsets = tl.arange(0, BLOCK)
    squares = tl.zeros([BLOCK], ACC)
    for s0 in range(0, S, BLOCK):
        s = s0 + offsets
        v = tl.load(x_ptr + base + index(s, LONG_INDEX) * stride_s, mask=s < S, other=0.0)
        v = v.to(ACC)
        squares += v * v
    mean_square = tl.sum(squares, axis=0).to(tl.float64) / S
    r = (1.0 / tl.sqrt(mean_square + scalar(eps, tl.float64))).to(ACC)
    tl.store(rstd_ptr + group, r)
    scale = tl.load(w_ptr + c).to(ACC) * r
    shift = tl.load(b_ptr + c).to(ACC)
    tau = tl.load(t_ptr + c).to(ACC)
    for s0 in range(0, S, BLOCK):
        s = s0 + offsets
        at = base + index(s, LONG_INDEX) * stride_s
        z = tl.load(x_ptr + at, mask=s < S, other=0.0).to(ACC) * scale + shift
        y = tl.where((z > tau) | (z != z), z, tau)
        tl.store(y_ptr + at, y.to(y_ptr.dtype.element_ty), mask=s < S)


@triton.jit
def frn_backward_kernel(g_ptr, x_ptr, w_ptr, b_ptr, t_ptr, rstd_ptr, dx_ptr, sums_ptr, C, S,
                        stride_n, stride_c, stride_s, g_stride_n, g_stride_c, g_stride_s,
                        BLOCK: tl.constexpr, LONG_INDEX: tl.constexpr):
    ACC = sums_ptr.dtype.element_ty  # float32, or float64 for float64 x
    group = tl.program_id(0)
    n = group // C
    c = group % C
    base = index(n, LONG_INDEX) * stride_n + index(c, LONG_INDEX) * stride_c
    g_base = index(n, LONG_INDEX) * g_stride_n + index(c, LONG_INDEX) * g_stride_c
    r = tl.load(rstd_ptr + group)
    w = tl.load(w_ptr + c).to(ACC)
    scale = w * r
    shift = tl.load(b_ptr + c).to(ACC)
    tau = tl.load(t_ptr + c).to(ACC)
    offsets = tl.arange(0, BLOCK)
    sum_g = tl.zeros([BLOCK], ACC)
    sum_gx = tl.zeros([BLOCK], ACC)
    sum_gt = tl.zeros([BLOCK], ACC)
    for s0 in range(0, S, BLOCK):
        s = s0 + offsets
        i = index(s, LONG_INDEX)
        v = tl.load(x_ptr + base + i * stride_s, mask=s < S, other=0.0).to(ACC)
        d = tl.load(g_ptr + g_base + i * g_stride_s, mask=s < S, other=0.0).to(ACC)
        z = v * scale + shift
        g = d * _share_z(z, tau)
        sum_g += g
        sum_gx += g * v
        sum_gt += d * _share_tau(z, tau)
    gx_total = tl.sum(sum_gx, axis=0)
    tl.store(sums_ptr + group * 3, tl.sum(sum_g, axis=0))
    tl.store(sums_ptr + group * 3 + 1, gx_total * r)
    tl.store(sums_ptr + group * 3 + 2, tl.sum(sum_gt, axis=0))
    k = scale * r * r * gx_total / S
    for s0 in range(0, S, BLOCK):
        s = s0 + offsets
        i = index(s, LONG_INDEX)
        v = tl.load(x_ptr + base + i * stride_s, mask=s < S, other=0.0).to(ACC)
        d = tl.load(g_ptr + g_base + i * g_stride_s, mask=s < S, other=0.0).to(ACC)
        g = d * _share_z(v * scale + shift, tau)
        dx = scale * g - k * v
        tl.store(dx_ptr + base + i * stride_s, dx.to(dx_ptr.dtype.element_ty), mask=s < S)
