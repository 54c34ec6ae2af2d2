"""Triton kernels of the latent_conv operators: the two passes over the output (the plan: row and
column classes, see csrc/latent_conv/common.h and ``plan.py``). Host side: triton.py."""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def class_of(i, head, tail, period):
    """The class of output row i: rows [0, head) one each, [head, tail) one per phase
    (i - head) mod period, [tail, out) one each."""
    return tl.where(i < head, i,
                    tl.where(i >= tail, head + period + (i - tail), head + (i - head) % period))


@triton.jit
def rows_of(r, head, tail, period):
    """The rows of class r: first, first + step, ..., count of them."""
    interior = (r >= head) & (r < head + period)
    first = tl.where(r < head + period, r, tail + (r - head - period))
    count = tl.where(interior, tl.maximum(tail - r + period - 1, 0) // period, 1)
    step = tl.where(interior, period, 1)
    return first, count, step


@triton.jit
def unravel(idx, size0, size1, size2):
    """The coordinates (a0, a1, a2, a3) of the flat index idx = ((a3 * size2 + a2) * size1 + a1)
    * size0 + a0, a0 the fastest."""
    a0 = idx % size0
    t = idx // size0
    a1 = t % size1
    t = t // size1
    return a0, a1, t % size2, t // size2


@triton.jit
def add_table_kernel(out_ptr, tab_ptr, total, C, HO, WO, s_n, s_c, s_i, s_j, KR, KC,
                     head_r, tail_r, period_r, head_c, tail_c, period_c,
                     CHANNELS_LAST: tl.constexpr, BLOCK: tl.constexpr):
    """out[n, o, i, j] += tab[n, o, class(i), class(j)] in place; elements visited in memory
    order (o fastest for channels-last, j fastest otherwise)."""
    idx = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = idx < total
    if CHANNELS_LAST:
        o, j, i, n = unravel(idx, C, WO, HO)
    else:
        j, i, o, n = unravel(idx, WO, HO, C)
    cr = class_of(i, head_r, tail_r, period_r)
    cc = class_of(j, head_c, tail_c, period_c)
    offset = n * s_n + o * s_c + i * s_i + j * s_j
    value = tl.load(out_ptr + offset, mask=mask)
    term = tl.load(tab_ptr + ((n * C + o) * KR + cr) * KC + cc, mask=mask, other=0)
    tl.store(out_ptr + offset, (value.to(term.dtype) + term).to(value.dtype), mask=mask)


@triton.jit
def sum_by_class_kernel(grad_ptr, sums_ptr, C, s_n, s_c, s_i, s_j, KR, KC,
                        head_r, tail_r, period_r, head_c, tail_c, period_c,
                        ACC: tl.constexpr, BLOCK: tl.constexpr):
    """sums[n, o, r, c] = the sum of grad over the rows of class r x the columns of class c;
    one program per (n * C + o, r, c)."""
    plane = tl.program_id(0).to(tl.int64)
    r = tl.program_id(1)
    c = tl.program_id(2)
    n = plane // C
    o = plane % C
    i0, ni, si = rows_of(r, head_r, tail_r, period_r)
    j0, nj, sj = rows_of(c, head_c, tail_c, period_c)
    count = ni * nj
    width = tl.maximum(nj, 1)
    base = grad_ptr + n * s_n + o * s_c
    acc = tl.zeros([BLOCK], dtype=ACC)
    for start in range(0, count, BLOCK):
        e = start + tl.arange(0, BLOCK)
        m = e < count
        i = i0 + (e // width) * si
        j = j0 + (e % width) * sj
        acc += tl.load(base + i * s_i + j * s_j, mask=m, other=0).to(ACC)
    tl.store(sums_ptr + (plane * KR + r) * KC + c, tl.sum(acc, axis=0))
