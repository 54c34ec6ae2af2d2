"""Fake (meta) implementations of the compiled latent_conv2d operators (and the Triton operators,
which have the same schemas): they run the checks and give the outputs' shapes, dtypes and
strides as the kernels produce them, by running ATen's own convolution (and its backward) on the
fake inputs: the kernels' output is the convolution's output, written in place.
"""

from __future__ import annotations

import torch
from torch._prims_common import suggest_memory_format

from . import checks


def _padded(x: torch.Tensor, padding: int, padding_mode: str) -> tuple[torch.Tensor, int]:
    if padding_mode == "reflect" and padding > 0:
        return torch.ops.aten.reflection_pad2d(x, [padding] * 4), 0
    return x, padding


def latent_conv2d_forward(x, z, weight, bias, stride, padding, padding_mode):
    checks.latent_conv2d(x, z, weight, bias, stride, padding, padding_mode)
    xp, p = _padded(x, padding, padding_mode)
    return torch.ops.aten.convolution(xp, weight[:, :x.shape[1]], bias, [stride] * 2, [p] * 2,
                                      [1, 1], False, [0, 0], 1)


def latent_conv2d(x, z, weight, bias=None, stride=1, padding=0, padding_mode="zeros"):
    return latent_conv2d_forward(x, z, weight, bias, stride, padding, padding_mode)


def latent_conv2d_backward(grad, x, z, weight, stride, padding, padding_mode, output_mask):
    checks.latent_conv2d_backward(grad, x, z, weight, stride, padding, padding_mode)
    grad_x = grad_z = grad_weight = grad_bias = None
    if output_mask[0]:
        xp, p = _padded(x, padding, padding_mode)
        grad_x = torch.ops.aten.convolution_backward(
            grad, xp, weight[:, :x.shape[1]], None, [stride] * 2, [p] * 2, [1, 1], False,
            [0, 0], 1, [True, False, False])[0]
        if xp is not x:  # ATen's reflection_pad2d_backward: in x's suggested memory format
            grad_x = torch.empty_like(x, memory_format=suggest_memory_format(x))
    if output_mask[1]:
        grad_z = z.new_empty(z.shape)
    if output_mask[2]:
        grad_weight = weight.new_empty(weight.shape)
    if output_mask[3]:
        grad_bias = weight.new_empty((weight.shape[0],))
    return grad_x, grad_z, grad_weight, grad_bias


def register() -> None:
    """For the compiled operators (once the extension library has loaded)."""
    for fake in (latent_conv2d, latent_conv2d_forward, latent_conv2d_backward):
        torch.library.register_fake(f"i2i_fast::{fake.__name__}", fake)
