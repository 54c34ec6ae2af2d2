"""Reflection padding, nearest upsampling and max pooling as modules on the fused operators
(drop-in for nn.ReflectionPad2d, nn.Upsample(scale_factor=f) and nn.MaxPool2d(f, f); no
parameters or buffers, so state dicts are unchanged)."""

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


class MaxPool(nn.Module):
    """nn.MaxPool2d(kernel_size, stride) for stride == kernel_size (TUNIT's guiding network:
    nn.MaxPool2d(2, 2)), no padding, dilation 1, floor mode, without indices: ops.max_pool.

    The operator's automatic backend choice runs the CPU kernel on CPU tensors, the Triton kernel
    on CUDA tensors where Triton is installed, and PyTorch's F.max_pool2d (the reference)
    wherever neither can run."""

    def __init__(self, kernel_size: int | tuple[int, int] = 2,
                 stride: int | tuple[int, int] | None = None, padding: int = 0,
                 dilation: int = 1, return_indices: bool = False, ceil_mode: bool = False):
        super().__init__()
        factor = _square(kernel_size, "kernel_size")
        if stride is not None and _square(stride, "stride") != factor:
            raise ValueError(f"MaxPool: stride: expected the kernel size ({factor}) or None, got "
                             f"{stride!r}")
        for name, value, supported in (("padding", padding, 0), ("dilation", dilation, 1),
                                       ("return_indices", return_indices, False),
                                       ("ceil_mode", ceil_mode, False)):
            if value != supported or isinstance(value, bool) != isinstance(supported, bool):
                raise ValueError(f"MaxPool: {name}: expected {supported!r} (not supported "
                                 f"otherwise), got {value!r}")
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ops.max_pool(x, self.factor)

    def extra_repr(self) -> str:
        return f"kernel_size={self.factor}, stride={self.factor}"


def _square(value: object, name: str) -> int:
    """An int >= 1, or a pair of two equal ones (nn.MaxPool2d's forms of a square window)."""
    if isinstance(value, (tuple, list)) and len(value) == 2 and value[0] == value[1]:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"MaxPool: {name}: expected an integer >= 1 or a pair of equal ones, "
                         f"got {value!r}")
    return value
