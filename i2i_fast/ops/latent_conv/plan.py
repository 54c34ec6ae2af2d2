"""The row and column classes of latent_conv2d's z term, for the Triton host code (the compiled
kernels have the same in csrc/latent_conv/latent_conv_common.h: ``AxisPlan``, ``tap_mask``).

Output rows fall into classes that share their valid kernel taps: each of the first `head` rows
(clipped by the top zero padding) is a class, the interior rows [head, tail) are one, each row
from `tail` on (clipped at the bottom) is one. With reflect padding every tap is valid: one class.
"""

from __future__ import annotations

import dataclasses

import torch


@dataclasses.dataclass(frozen=True)
class AxisPlan:
    head: int
    tail: int
    out: int

    @property
    def classes(self) -> int:
        return self.head + 1 + (self.out - self.tail)

    def rows_of(self, r: int) -> tuple[int, int]:
        if r < self.head:
            return r, r + 1
        if r == self.head:
            return self.head, self.tail
        first = self.tail + (r - self.head - 1)
        return first, first + 1


def axis_plan(size: int, taps: int, stride: int, padding: int, reflect: bool) -> AxisPlan:
    out = (size + 2 * padding - taps) // stride + 1
    if reflect:
        return AxisPlan(0, out, out)
    head = min(out, -(-padding // stride))
    room = size + padding - taps
    tail = 0 if room < 0 else room // stride + 1
    return AxisPlan(head, max(head, min(out, tail)), out)


def tap_mask(plan: AxisPlan, size: int, taps: int, stride: int, padding: int, reflect: bool,
             dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(classes, taps): 1 where tap a is valid for the rows of class r."""
    rows = []
    for r in range(plan.classes):
        row = min(plan.rows_of(r)[0], plan.out - 1)
        rows.append([1.0 if reflect or 0 <= row * stride - padding + a < size else 0.0
                     for a in range(taps)])
    return torch.tensor(rows, dtype=dtype, device=device)
