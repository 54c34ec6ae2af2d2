"""The resampling operators: nearest upsampling, average and max pooling and reflection padding
by integer amounts, the data movement around the convolutions of MUNIT, StarGAN v2 and TUNIT.

Each checks its arguments (``checks``), picks a backend (see ``backends``) and runs it. Every
backend computes the PyTorch function given in ``reference`` and is differentiable any number of
times (the operators are linear, max pooling once its winners are known; StarGAN v2's R1 penalty
differentiates the discriminator's pooling twice), in reverse and in forward mode (torch.func.jvp,
torch.autograd.forward_ad).

Backends: "cpu" (csrc/resampling/resampling_cpu.cpp: one gather pass, no zero fill, no layout
round trip, contiguous and channels-last), "triton" (max_pool only: triton.py) and "reference"
(PyTorch's own kernels, used for CUDA tensors by the other operators: this family has no CUDA
kernels yet). Shapes: (N, C, H, W), contiguous, channels-last or any strides (the output keeps
the layout: channels-last for a channels-last input, else contiguous).
dtypes: float16, bfloat16, float32, float64; sums accumulate in float32 (float64 for float64).
"""

from __future__ import annotations

import torch

from .. import extension, triton_support
from ..backends import implement, select
from . import checks, reference

OPS = ("upsample_nearest", "avg_pool", "max_pool", "reflection_pad")


def upsample_nearest(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Nearest-neighbour upsampling by an integer factor: (N, C, H, W) → (N, C, fH, fW),
    ``out[h, w] = x[h // f, w // f]`` (``nn.Upsample(scale_factor=f)``)."""
    factor = checks.upsample_nearest(x, factor)
    return select("upsample_nearest", x)(x, factor)


def avg_pool(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Average pooling over f x f blocks with stride f (``F.avg_pool2d(x, f)``): (N, C, H, W) →
    (N, C, H // f, W // f); a remainder of fewer than f rows or columns is dropped."""
    factor = checks.avg_pool(x, factor)
    return select("avg_pool", x)(x, factor)


def max_pool(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Max pooling over f x f blocks with stride f (``F.max_pool2d(x, f, f)``): (N, C, H, W) →
    (N, C, H // f, W // f); a remainder of fewer than f rows or columns is dropped. Values and
    gradients are aten's exactly: each output's gradient goes to the one element aten picks, the
    first maximum of its block in row-major order (ties, e.g. ReLU's zeros, included), or the
    block's last NaN. The cpu backend saves one byte per output for the backward (the window
    position; int32 for f > 16) where aten saves an int64 index."""
    factor = checks.max_pool(x, factor)
    return select("max_pool", x)(x, factor)


def reflection_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Reflection padding by `pad` on all four sides (``nn.ReflectionPad2d(pad)``): (N, C, H, W)
    → (N, C, H + 2 pad, W + 2 pad); the edge row or column is not repeated, so pad < H and W."""
    pad = checks.reflection_pad(x, pad)
    return select("reflection_pad", x)(x, pad)


# The cpu backend's implementations: the compiled kernels, in every layout (contiguous and
# channels-last natively, other strides made contiguous first). Multi-threaded, they beat
# PyTorch's kernels in NCHW by 1.3x to 10x at the methods' shapes, and in channels-last for padding
# and pooling; channels-last nearest upsampling is about even (README, "Resampling").
def _upsample_nearest_kernel(x: torch.Tensor, factor: int) -> torch.Tensor:
    return torch.ops.i2i_fast.block_repeat(x, factor, 1.0, x.shape[2] * factor,
                                           x.shape[3] * factor)


def _avg_pool_kernel(x: torch.Tensor, factor: int) -> torch.Tensor:
    return torch.ops.i2i_fast.block_sum(x, factor, float(factor * factor))


for _op in OPS:
    implement("reference", _op, getattr(reference, _op))
if extension.state().loaded:
    from . import fake as _fake

    _fake.register()
    # The kernels' autograd computes forward-mode derivatives too (csrc/resampling/ops.cpp).
    implement("cpu", "upsample_nearest", _upsample_nearest_kernel, forward_ad=True)
    implement("cpu", "avg_pool", _avg_pool_kernel, forward_ad=True)
    implement("cpu", "max_pool", torch.ops.i2i_fast.block_max, forward_ad=True)
    implement("cpu", "reflection_pad", torch.ops.i2i_fast.reflection_pad, forward_ad=True)
if triton_support.state().unavailable_reason is None:
    from . import triton as _triton

    implement("triton", "max_pool", _triton.max_pool)
