"""The resampling operators: nearest upsampling, average pooling and reflection padding by
integer amounts, the data movement around the convolutions of MUNIT and StarGAN v2.

Each checks its arguments, picks a backend (see ``backends``) and runs it. Every backend computes
the PyTorch function given in ``reference`` and is differentiable any number of times (the
operators are linear; StarGAN v2's R1 penalty differentiates the discriminator's pooling twice),
in reverse and in forward mode (torch.func.jvp, torch.autograd.forward_ad).

Backends: "cpu" (csrc/resampling/cpu.cpp: one gather pass, no zero fill, no layout round trip,
contiguous and channels-last) and "reference" (PyTorch's own kernels, used for CUDA tensors: this
family has no CUDA or Triton kernels yet). Shapes: (N, C, H, W), contiguous, channels-last or any
strides (the output keeps the layout: channels-last for a channels-last input, else contiguous).
dtypes: float16, bfloat16, float32, float64; sums accumulate in float32 (float64 for float64).
"""

from __future__ import annotations

import torch

from .. import checks, extension
from ..backends import implement, select
from . import reference

OPS = ("upsample_nearest", "avg_pool", "reflection_pad")


def _image(op: str, x: object) -> torch.Tensor:
    x = checks.tensor(op, "x", x)
    if x.dim() != 4:
        raise ValueError(f"{op}: x: expected shape (N, C, H, W), got {x.dim()} dims with shape "
                         f"{tuple(x.shape)}")
    checks.floating(op, "x", x)
    return x


def _positive_int(op: str, name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{op}: {name}: expected an integer >= {minimum}, got {value!r}")
    return value


def upsample_nearest(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Nearest-neighbour upsampling by an integer factor: (N, C, H, W) → (N, C, fH, fW),
    ``out[h, w] = x[h // f, w // f]`` (``nn.Upsample(scale_factor=f)``)."""
    op = "upsample_nearest"
    x = _image(op, x)
    factor = _positive_int(op, "factor", factor, 1)
    return select(op, x)(x, factor)


def avg_pool(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Average pooling over f x f blocks with stride f (``F.avg_pool2d(x, f)``): (N, C, H, W) →
    (N, C, H // f, W // f); a remainder of fewer than f rows or columns is dropped."""
    op = "avg_pool"
    x = _image(op, x)
    factor = _positive_int(op, "factor", factor, 1)
    if x.shape[2] < factor or x.shape[3] < factor:
        raise ValueError(f"{op}: x: expected H and W >= factor ({factor}), got shape "
                         f"{tuple(x.shape)}")
    return select(op, x)(x, factor)


def reflection_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Reflection padding by `pad` on all four sides (``nn.ReflectionPad2d(pad)``): (N, C, H, W)
    → (N, C, H + 2 pad, W + 2 pad); the edge row or column is not repeated, so pad < H and W."""
    op = "reflection_pad"
    x = _image(op, x)
    pad = _positive_int(op, "pad", pad, 0)
    if pad >= x.shape[2] or pad >= x.shape[3]:
        raise ValueError(f"{op}: pad: expected pad < H and pad < W (reflection does not repeat "
                         f"the edge), got pad {pad} for x of shape {tuple(x.shape)}")
    return select(op, x)(x, pad)


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
    implement("cpu", "reflection_pad", torch.ops.i2i_fast.reflection_pad, forward_ad=True)
