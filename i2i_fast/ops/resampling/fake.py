"""Fake (meta) implementations of the compiled resampling operators, for torch.compile.

Outputs follow csrc/resampling/resampling_cpu.cpp: channels-last when the input is channels-last
and not contiguous, else contiguous (``is_channels_last``). reflection_pad and the block_max
operators run their checks (``checks``); block_repeat, block_sum and reflection_pad_backward take
arguments that the public functions derive from checked ones. block_max_forward's window
positions are uint8 for factor <= 16, else int32, in the output's layout. The block_max fakes
serve the compiled and the Triton operators; ``register`` (the compiled ones') runs only once the
extension library has loaded.
"""

from __future__ import annotations

import torch

from . import checks


def is_channels_last(x: torch.Tensor) -> bool:
    """The kernels' layout rule: channels-last when x is channels-last and not contiguous."""
    return not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


def _empty(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    fmt = torch.channels_last if is_channels_last(x) else torch.contiguous_format
    return torch.empty((x.shape[0], x.shape[1], height, width), dtype=x.dtype, device=x.device,
                       memory_format=fmt)


def _pooled(x: torch.Tensor, factor: int) -> torch.Tensor:
    return _empty(x, x.shape[2] // factor, x.shape[3] // factor)


def block_max(x, factor):
    checks.block_max(x, factor)
    return _pooled(x, factor)


def block_max_forward(x, factor):
    checks.block_max(x, factor)
    out = _pooled(x, factor)
    return out, torch.empty_like(out, dtype=checks.index_dtype(factor))


def block_max_scatter(grad, index, factor, out_h, out_w):
    checks.block_max_route("block_max_scatter", grad, index, factor, out_h, out_w)
    return _empty(grad, out_h, out_w)


def block_max_gather(x, index, factor, out_h, out_w):
    checks.block_max_route("block_max_gather", x, index, factor, out_h, out_w)
    return _empty(x, out_h, out_w)


def register() -> None:
    lib = "i2i_fast::"

    @torch.library.register_fake(lib + "block_repeat")
    def _block_repeat(x, factor, divisor, out_h, out_w):
        return _empty(x, out_h, out_w)

    @torch.library.register_fake(lib + "block_sum")
    def _block_sum(x, factor, divisor):
        return _pooled(x, factor)

    for fake in (block_max, block_max_forward, block_max_scatter, block_max_gather):
        torch.library.register_fake(lib + fake.__name__, fake)

    @torch.library.register_fake(lib + "reflection_pad")
    def _reflection_pad(x, pad):
        checks.reflection_pad(x, pad)
        return _empty(x, x.shape[2] + 2 * pad, x.shape[3] + 2 * pad)

    @torch.library.register_fake(lib + "reflection_pad_backward")
    def _reflection_pad_backward(grad, pad):
        return _empty(grad, grad.shape[2] - 2 * pad, grad.shape[3] - 2 * pad)
