"""Autocast for the operators that replace a convolution layer (latent_conv, output_conv): their
tensor arguments cast as autocast casts those of F.conv2d and F.conv_transpose2d, so a layer over
them runs as the Conv2d it replaces does."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def under_autocast(x: object) -> bool:
    """Whether autocast is on for x's device (False for a non-tensor or a device without it)."""
    if not isinstance(x, torch.Tensor):
        return False
    device = x.device.type  # "meta" has no autocast, and asking raises
    return torch.amp.is_autocast_available(device) and torch.is_autocast_enabled(device)


@contextlib.contextmanager
def cast_like_conv(x: torch.Tensor, *tensors: object) -> Iterator[tuple]:
    """(x, *tensors) cast to autocast's lower-precision dtype for x's device (float16, bfloat16
    and float32 tensors; float64 and non-tensors are left to the checks), with autocast off
    inside, so the operator's own convolutions and products run in the dtype it chose (autocast
    would cast them again)."""
    device = x.device.type
    dtype = torch.get_autocast_dtype(device)

    def cast(t):
        lower = isinstance(t, torch.Tensor) and t.dtype in (torch.float16, torch.bfloat16,
                                                             torch.float32)
        return t.to(dtype) if lower else t

    with torch.autocast(device, enabled=False):
        yield tuple(cast(t) for t in (x, *tensors))
