"""The row and column classes of the latent_conv operators' z term, for the Triton host code and
the fakes (the compiled kernels have the same in csrc/latent_conv/common.h: ``AxisPlan``,
``tap_mask``, ``concatenates``).

Output rows fall into classes that share the kernel taps reaching them: each of the first `head`
rows (clipped by the top border) is a class, the interior rows [head, tail) form `period`
classes by their phase (i - head) mod period (period 1 for conv2d: one class; stride for a
transposed conv), each row from `tail` on (clipped at the bottom) is one. With reflect padding
every tap of a conv2d is valid: one class.
"""

from __future__ import annotations

import dataclasses

import torch
from torch._prims_common import suggest_memory_format


@dataclasses.dataclass(frozen=True)
class AxisPlan:
    head: int
    tail: int
    out: int
    period: int = 1

    @property
    def classes(self) -> int:
        return self.head + self.period + (self.out - self.tail)

    def rows_of(self, r: int) -> range:
        """The rows of class r (none for an interior phase that no row has)."""
        if r < self.head:
            return range(r, r + 1)
        if r < self.head + self.period:
            return range(r, max(r, self.tail), self.period)
        first = self.tail + (r - self.head - self.period)
        return range(first, first + 1)


def axis_plan(size: int, taps: int, stride: int, padding: int, reflect: bool) -> AxisPlan:
    """One axis of a conv2d."""
    out = (size + 2 * padding - taps) // stride + 1
    if reflect:
        return AxisPlan(0, out, out)
    head = min(out, -(-padding // stride))
    room = size + padding - taps
    tail = 0 if room < 0 else room // stride + 1
    return AxisPlan(head, max(head, min(out, tail)), out)


def transposed_axis_plan(size: int, taps: int, stride: int, padding: int,
                         output_padding: int) -> AxisPlan:
    """One axis of a transposed conv: row i is clipped at the top when i < taps - 1 - padding,
    at the bottom when i > stride * (size - 1) - padding."""
    out = (size - 1) * stride - 2 * padding + taps + output_padding
    head = min(out, max(0, taps - 1 - padding))
    return AxisPlan(head, max(head, min(out, stride * (size - 1) - padding + 1)), out, stride)


def tap_reaches(row: int, tap: int, size: int, stride: int, padding: int, reflect: bool,
                transposed: bool) -> bool:
    """Whether kernel tap `tap` reaches output row `row` from an input row in [0, size)."""
    if transposed:
        d = row + padding - tap
        return d >= 0 and d % stride == 0 and d // stride < size
    return reflect or 0 <= row * stride - padding + tap < size


def tap_mask(plan: AxisPlan, size: int, taps: int, stride: int, padding: int, reflect: bool,
             transposed: bool, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(classes, taps): 1 where tap a reaches the rows of class r (a class without rows is never
    read)."""
    rows = []
    for r in range(plan.classes):
        row = min(plan.rows_of(r).start, plan.out - 1)
        rows.append([1.0 if tap_reaches(row, a, size, stride, padding, reflect, transposed)
                     else 0.0 for a in range(taps)])
    return torch.tensor(rows, dtype=dtype, device=device)


def concatenates(x: torch.Tensor, z: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether latent_conv2d convolves the concatenation rather than x and the z term: where the
    weight slice W_x (a strided view, which oneDNN and cuDNN copy on every call) holds more
    elements than the concatenated input (BicycleGAN's deepest levels)."""
    n, cx, h, w = x.shape
    cz = z.shape[1]
    return cz > 0 and weight.shape[0] * cx * weight.shape[2] * weight.shape[3] > n * (cx + cz) * h * w


def broadcast_concat(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """cat[x, z broadcast over H x W] along the channels, z cast to x's dtype (the input the
    latent convolutions stand for)."""
    n, _, h, w = x.shape
    return torch.cat([x, z.to(x.dtype)[:, :, None, None].expand(n, z.shape[1], h, w)], dim=1)


def concatenation(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """broadcast_concat(x, z) in x's suggested memory format (what latent_conv2d convolves where
    it `concatenates`)."""
    return broadcast_concat(x, z).contiguous(memory_format=suggest_memory_format(x))
