"""Reference definitions of the resampling operators: the PyTorch functions they replace."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def upsample_nearest(x: torch.Tensor, factor: int) -> torch.Tensor:
    """``nn.Upsample(scale_factor=factor)`` (mode "nearest"): out[h, w] = x[h // f, w // f]."""
    # float(): the same result, and torch.compile traces it when the factor is symbolic (a
    # symbolic int as scale_factor fails there).
    return F.interpolate(x, scale_factor=float(factor), mode="nearest")


def avg_pool(x: torch.Tensor, factor: int) -> torch.Tensor:
    """``F.avg_pool2d(x, factor)``: the mean of each whole factor x factor block."""
    return F.avg_pool2d(x, factor)


def max_pool(x: torch.Tensor, factor: int) -> torch.Tensor:
    """``F.max_pool2d(x, factor, factor)``: the maximum of each whole factor x factor block; the
    gradient goes to the first maximum of a block in row-major order (a NaN wins, the last one)."""
    return F.max_pool2d(x, factor, factor)


def reflection_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """``nn.ReflectionPad2d(pad)``: mirror `pad` rows and columns on each side, edge not repeated."""
    return F.pad(x, (pad, pad, pad, pad), mode="reflect")
