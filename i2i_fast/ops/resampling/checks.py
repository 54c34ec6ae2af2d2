"""The argument checks of the resampling operators: one function per public operator, which the
public functions (``__init__``) and the fake implementation of ``reflection_pad`` (``fake.py``)
run. csrc/resampling/resampling_cpu.cpp checks the compiled operators' arguments in the same
words where they are the same arguments (``reflection_pad``, and ``block_max``, whose checks are
``max_pool``'s under its own name); ``block_repeat`` and ``block_sum`` take arguments that
``upsample_nearest`` and ``avg_pool`` derive from checked ones.
"""

from __future__ import annotations

import torch

from .. import checks


def image(op: str, x: object, name: str = "x") -> torch.Tensor:
    """x: a floating (N, C, H, W) tensor."""
    x = checks.tensor(op, name, x)
    if x.dim() != 4:
        raise ValueError(f"{op}: {name}: expected shape (N, C, H, W), got {x.dim()} dims with "
                         f"shape {tuple(x.shape)}")
    checks.floating(op, name, x)
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


def pool(op: str, x, factor) -> int:
    """A pooling by whole factor x factor blocks: x an image with H and W >= factor."""
    x = image(op, x)
    factor = integer(op, "factor", factor, 1)
    if x.shape[2] < factor or x.shape[3] < factor:
        raise ValueError(f"{op}: x: expected H and W >= factor ({factor}), got shape "
                         f"{tuple(x.shape)}")
    return factor


def avg_pool(x, factor) -> int:
    return pool("avg_pool", x, factor)


def max_pool(x, factor) -> int:
    return pool("max_pool", x, factor)


def block_max(x, factor) -> int:
    """The compiled max pooling operators (block_max, block_max_forward)."""
    return pool("block_max", x, factor)


def index_dtype(factor: int) -> torch.dtype:
    """The dtype of block_max_forward's window positions: uint8 for factor <= 16 (factor^2 <= 256
    positions), else int32 (csrc/resampling/resampling_cpu.cpp)."""
    return torch.uint8 if factor <= 16 else torch.int32


def block_max_route(op: str, t, index, factor, out_h, out_w) -> None:
    """block_max_scatter(grad, index, factor, out_h, out_w), the gradient of block_max to x's
    size out_h x out_w, and block_max_gather(x, index, factor, out_h, out_w), its adjoint to the
    pooled size: index holds block_max_forward's window positions of the pooled side."""
    scatter = op == "block_max_scatter"
    name = "grad" if scatter else "x"
    t = image(op, t, name)
    factor = integer(op, "factor", factor, 1)
    n, c, h, w = t.shape
    full, pooled = ((out_h, out_w), (h, w)) if scatter else ((h, w), (out_h, out_w))
    if full[0] // factor != pooled[0] or full[1] // factor != pooled[1]:
        expected = (f"[{factor * h}, {factor * h + factor}) x [{factor * w}, "
                    f"{factor * w + factor})" if scatter else f"{h // factor} x {w // factor}")
        raise ValueError(f"{op}: out_h, out_w: expected {expected} for {name} of shape "
                         f"{tuple(t.shape)} and factor {factor}, got {out_h} x {out_w}")
    index = checks.tensor(op, "index", index)
    shape = (n, c, *pooled)
    dtype = index_dtype(factor)
    if tuple(index.shape) != shape or index.dtype != dtype:
        raise ValueError(f"{op}: index: expected block_max_forward's window positions of shape "
                         f"{shape} and dtype {dtype}, got shape {tuple(index.shape)} and dtype "
                         f"{index.dtype}")
    if index.device != t.device:
        raise ValueError(f"{op}: index: expected device {t.device} (the device of {name}), got "
                         f"{index.device}")


def reflection_pad(x, pad) -> int:
    op = "reflection_pad"
    x = image(op, x)
    pad = integer(op, "pad", pad, 0)
    if pad >= x.shape[2] or pad >= x.shape[3]:
        raise ValueError(f"{op}: pad: expected pad < H and pad < W (reflection does not repeat "
                         f"the edge), got pad {pad} for x of shape {tuple(x.shape)}")
    return pad
