"""The argument checks of the resampling operators: one function per public operator, which the
public functions (``__init__``) and the fake implementation of ``reflection_pad`` (``fake.py``)
run. csrc/resampling/resampling_cpu.cpp checks the compiled operators' arguments in the same
words where they are the same arguments (``reflection_pad``); ``block_repeat`` and ``block_sum``
take arguments that ``upsample_nearest`` and ``avg_pool`` derive from checked ones.
"""

from __future__ import annotations

import torch

from .. import checks


def image(op: str, x: object) -> torch.Tensor:
    """x: a floating (N, C, H, W) tensor."""
    x = checks.tensor(op, "x", x)
    if x.dim() != 4:
        raise ValueError(f"{op}: x: expected shape (N, C, H, W), got {x.dim()} dims with shape "
                         f"{tuple(x.shape)}")
    checks.floating(op, "x", x)
    return x


def integer(op: str, name: str, value: object, minimum: int) -> int:
    """An int (or a symbolic one, in a fake implementation under torch.compile) >= minimum."""
    if isinstance(value, bool) or not isinstance(value, (int, torch.SymInt)) or value < minimum:
        raise ValueError(f"{op}: {name}: expected an integer >= {minimum}, got {value!r}")
    return value


def upsample_nearest(x, factor) -> int:
    op = "upsample_nearest"
    image(op, x)
    return integer(op, "factor", factor, 1)


def avg_pool(x, factor) -> int:
    op = "avg_pool"
    x = image(op, x)
    factor = integer(op, "factor", factor, 1)
    if x.shape[2] < factor or x.shape[3] < factor:
        raise ValueError(f"{op}: x: expected H and W >= factor ({factor}), got shape "
                         f"{tuple(x.shape)}")
    return factor


def reflection_pad(x, pad) -> int:
    op = "reflection_pad"
    x = image(op, x)
    pad = integer(op, "pad", pad, 0)
    if pad >= x.shape[2] or pad >= x.shape[3]:
        raise ValueError(f"{op}: pad: expected pad < H and pad < W (reflection does not repeat "
                         f"the edge), got pad {pad} for x of shape {tuple(x.shape)}")
    return pad
