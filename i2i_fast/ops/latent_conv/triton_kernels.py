"""Triton kernels of latent_conv2d: the two passes over the output (the plan: row and column
classes, see csrc/latent_conv/latent_conv_common.h and ``plan.py``). Host side: triton.py."""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def class_of(i, head, tail):
    """The class of output row i: rows [0, head) one each, [head, tail) one, [tail, out) one each."""
    return tl.where(i < head, i, tl.where(i >= tail, head + 1 + (i - tail), head))


@triton.jit
def rows_of(r, head, tail):
    """The rows [first, last) of class r."""
    first = tl.where(r < head, r, tl.where(r == head, head, tail + (r - head - 1)))
    last = tl.where(r < head, r + 1, tl.where(r == head, tail, tail + (r - head)))
    return first, last


@triton.jit
def add_table_kernel(out_ptr, tab_ptr, total, C, HO, WO, s_n, s_c, s_i, s_j, KR, KC,
                     head_r, tail_r, head_c, tail_c,
                     CHANNELS_LAST: tl.constexpr, BLOCK: tl.constexpr):
    """out[n, o, i, j] += tab[n, o, class(i), class(j)] in place; elements visited in memory
    order (o fastest for channels-last, j fastest otherwise)."""
    idx = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = idx < total
    if CHANNELS_LAST:
        o = idx % C
        t = idx // C
        j = t % WO
        t = t // WO
        i = t % HO
        n = t // HO
    else:
        j = idx % WO
        t = idx // WO
        i = t % HO
        t = t // HO
        o = t % C
        n = t // C
    cr = class_of(i, head_r, tail_r)
    cc = class_of(j, head_c, tail_c)
    offset = n * s_n + o * s_c + i * s_i + j * s_j
    value = tl.load(out_ptr + offset, mask=mask)
    term = tl.load(tab_ptr + ((n * C + o) * KR + cr) * KC + cc, mask=mask, other=0)
    tl.store(out_ptr + offset, (value.to(term.dtype) + term).to(value.dtype), mask=mask)


@triton.jit
def sum_by_class_kernel(grad_ptr, sums_ptr, C, s_n, s_c, s_i, s_j, KR, KC,
                        head_r, tail_r, head_c, tail_c,
                        ACC: tl.constexpr, BLOCK: tl.constexpr):
    """sums[n, o, r, c] = the sum of grad over the rectangle of row class r x column class c;
    one program per (n * C + o, r, c)."""
    plane = tl.program_id(0).to(tl.int64)
    r = tl.program_id(1)
    c = tl.program_id(2)
    n = plane // C
    o = plane % C
    i0, i1 = rows_of(r, head_r, tail_r)
    j0, j1 = rows_of(c, head_c, tail_c)
    count = (i1 - i0) * (j1 - j0)
    width = tl.maximum(j1 - j0, 1)
    base = grad_ptr + n * s_n + o * s_c
    acc = tl.zeros([BLOCK], dtype=ACC)
    for start in range(0, count, BLOCK):
        e = start + tl.arange(0, BLOCK)
        m = e < count
        i = i0 + e // width
        j = j0 + e % width
        acc += tl.load(base + i * s_i + j * s_j, mask=m, other=0).to(ACC)
    tl.store(sums_ptr + (plane * KR + r) * KC + c, tl.sum(acc, axis=0))
