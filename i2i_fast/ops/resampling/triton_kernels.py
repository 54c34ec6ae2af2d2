"""The Triton kernels of max pooling (device code only; triton.py launches them and registers the
operators). The definitions are those of csrc/resampling/resampling_cpu.cpp.

Each program takes BLOCK elements of its output in logical (n, c, h, w) order and addresses
every tensor by its own four strides, so contiguous, channels-last and strided tensors are read
and written in place. F, the factor, is a compile-time constant (TUNIT's 2 unrolled).

``block_max_forward_kernel``: the maximum of each F x F block and its window position i F + j,
as aten picks it: scanning the block in row-major order, an element takes over when it is
greater than the maximum so far or NaN (first maximum of a tie, last NaN).
``block_max_route_kernel``, SCATTER: the gradient of an input element is its block's output
gradient when the element is the block's saved position, else 0 (also in the remainder rows and
columns); else the gather, the scatter's adjoint: each output reads x at its saved position.
"""

import triton
import triton.language as tl

from ..triton_device import index


@triton.jit
def _coordinates(flat, C, H, W):
    """(n, c, h, w) of the logical element `flat` of an (N, C, H, W) tensor."""
    w = flat % W
    h = (flat // W) % H
    c = (flat // (W * H)) % C
    n = flat // (W * H * C)
    return n, c, h, w


@triton.jit
def _offset(n, c, h, w, sn, sc, sh, sw, LONG_INDEX: tl.constexpr):
    """The element offset of (n, c, h, w) in a tensor of strides (sn, sc, sh, sw)."""
    return (index(n, LONG_INDEX) * sn + index(c, LONG_INDEX) * sc + index(h, LONG_INDEX) * sh
            + index(w, LONG_INDEX) * sw)


@triton.jit
def _elements(total, BLOCK: tl.constexpr, LONG_INDEX: tl.constexpr):
    """This program's BLOCK logical elements, and which of them exist."""
    flat = index(tl.program_id(0), LONG_INDEX) * BLOCK + tl.arange(0, BLOCK)
    return flat, flat < total


@triton.jit
def _wide(v):
    """v in float32 (float64 stays: the promotion of v * 1.0f, exact, -0.0 and NaN kept), so that
    16-bit values compare exactly, NaN included (the interpreter's bfloat16 does not see
    NaN != NaN)."""
    return v * tl.full(v.shape, 1.0, tl.float32)


# Strides: x_s* (or grad_s*) of the input, i_s* of the window positions, o_s* of the output.
@triton.jit
def block_max_forward_kernel(x_ptr, out_ptr, index_ptr, C, OH, OW, total,
                             x_sn, x_sc, x_sh, x_sw, i_sn, i_sc, i_sh, i_sw,
                             o_sn, o_sc, o_sh, o_sw,
                             F: tl.constexpr, BLOCK: tl.constexpr, LONG_INDEX: tl.constexpr):
    flat, mask = _elements(total, BLOCK, LONG_INDEX)
    n, c, ho, wo = _coordinates(flat, C, OH, OW)
    best = _wide(tl.load(x_ptr + _offset(n, c, ho * F, wo * F, x_sn, x_sc, x_sh, x_sw,
                                         LONG_INDEX), mask=mask))
    position = tl.zeros([BLOCK], tl.int32)
    for k in tl.static_range(1, F * F):
        v = _wide(tl.load(x_ptr + _offset(n, c, ho * F + k // F, wo * F + k % F, x_sn, x_sc,
                                          x_sh, x_sw, LONG_INDEX), mask=mask))
        take = (v > best) | (v != v)
        best = tl.where(take, v, best)
        position = tl.where(take, k, position)
    tl.store(out_ptr + _offset(n, c, ho, wo, o_sn, o_sc, o_sh, o_sw, LONG_INDEX),
             best.to(out_ptr.dtype.element_ty), mask=mask)
    tl.store(index_ptr + _offset(n, c, ho, wo, i_sn, i_sc, i_sh, i_sw, LONG_INDEX),
             position.to(index_ptr.dtype.element_ty), mask=mask)


@triton.jit
def block_max_route_kernel(t_ptr, index_ptr, out_ptr, C, H, W, OH, OW, total,
                           x_sn, x_sc, x_sh, x_sw, i_sn, i_sc, i_sh, i_sw,
                           o_sn, o_sc, o_sh, o_sw, SCATTER: tl.constexpr,
                           F: tl.constexpr, BLOCK: tl.constexpr, LONG_INDEX: tl.constexpr):
    """SCATTER: out (N, C, H, W) from the pooled t; else the gather, out (N, C, OH, OW) from t of
    (N, C, H, W). x_s*: t's strides."""
    flat, mask = _elements(total, BLOCK, LONG_INDEX)
    if SCATTER:
        n, c, h, w = _coordinates(flat, C, H, W)
        ho = h // F
        wo = w // F
        inside = mask & (ho < OH) & (wo < OW)
    else:
        n, c, ho, wo = _coordinates(flat, C, OH, OW)
        inside = mask
    position = tl.load(index_ptr + _offset(n, c, ho, wo, i_sn, i_sc, i_sh, i_sw, LONG_INDEX),
                       mask=inside, other=0).to(tl.int32)
    if SCATTER:
        wins = inside & (position == (h % F) * F + w % F)
        v = tl.load(t_ptr + _offset(n, c, ho, wo, x_sn, x_sc, x_sh, x_sw, LONG_INDEX), mask=wins,
                    other=0.0)
        tl.store(out_ptr + _offset(n, c, h, w, o_sn, o_sc, o_sh, o_sw, LONG_INDEX), v, mask=mask)
    else:
        v = tl.load(t_ptr + _offset(n, c, ho * F + position // F, wo * F + position % F, x_sn,
                                    x_sc, x_sh, x_sw, LONG_INDEX), mask=mask)
        tl.store(out_ptr + _offset(n, c, ho, wo, o_sn, o_sc, o_sh, o_sw, LONG_INDEX), v,
                 mask=mask)
