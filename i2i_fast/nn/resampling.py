"""Reflection padding and nearest upsampling as modules on the fused operators (drop-in for
nn.ReflectionPad2d and nn.Upsample(scale_factor=f); no parameters, so state dicts are unchanged)."""

from __future__ import annotations

import torch
from torch import nn

from .. import ops


class ReflectionPad(nn.Module):
    """nn.ReflectionPad2d(pad) with the same pad on all four sides."""

    def __init__(self, pad: int):
        super().__init__()
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ops.reflection_pad(x, self.pad)

    def extra_repr(self) -> str:
        return str(self.pad)


class UpsampleNearest(nn.Module):
    """nn.Upsample(scale_factor=factor), mode "nearest", for an integer factor."""

    def __init__(self, factor: int = 2):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ops.upsample_nearest(x, self.factor)

    def extra_repr(self) -> str:
        return f"factor={self.factor}"
