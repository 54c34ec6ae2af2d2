"""Fake (meta) implementations of the compiled latent_conv operators (and the Triton operators,
which have the same schemas): they run the checks and give the outputs' shapes, dtypes and
strides as the kernels produce them, by running ATen's own convolution (and its backward) on the
fake inputs along the path the kernels take: the kernels' output is the convolution's output,
written in place (or, where latent_conv2d convolves the concatenation, plan.concatenates, that
convolution's output).
"""

from __future__ import annotations

import torch
from torch._prims_common import suggest_memory_format

from . import checks
from .plan import concatenates, concatenation


def _padded(x: torch.Tensor, padding: int, padding_mode: str) -> tuple[torch.Tensor, int]:
    if padding_mode == "reflect" and padding > 0:
        return torch.ops.aten.reflection_pad2d(x, [padding] * 4), 0
    return x, padding


def _conv2d_input(x, z, weight):
    """What latent_conv2d's convolution reads, and with which weight."""
    if concatenates(x, z, weight):
        return concatenation(x, z), weight
    return x, weight[:, :x.shape[1]]


def latent_conv2d_forward(x, z, weight, bias, stride, padding, padding_mode):
    checks.latent_conv2d(x, z, weight, bias, stride, padding, padding_mode)
    conv_in, conv_weight = _conv2d_input(x, z, weight)
    xp, p = _padded(conv_in, padding, padding_mode)
    return torch.ops.aten.convolution(xp, conv_weight, bias, [stride] * 2, [p] * 2, [1, 1], False,
                                      [0, 0], 1)


def latent_conv2d(x, z, weight, bias=None, stride=1, padding=0, padding_mode="zeros"):
    return latent_conv2d_forward(x, z, weight, bias, stride, padding, padding_mode)


def _parameter_grads(x, z, weight, output_mask, out_channels):
    grad_z = z.new_empty(z.shape) if output_mask[1] else None
    grad_weight = weight.new_empty(weight.shape) if output_mask[2] else None
    grad_bias = weight.new_empty((out_channels,)) if output_mask[3] else None
    return grad_z, grad_weight, grad_bias


def latent_conv2d_backward(grad, x, z, weight, stride, padding, padding_mode, output_mask):
    checks.latent_conv2d_backward(grad, x, z, weight, stride, padding, padding_mode)
    grad_x = None
    if output_mask[0]:
        conv_in, conv_weight = _conv2d_input(x, z, weight)
        xp, p = _padded(conv_in, padding, padding_mode)
        if xp is not x:  # through the concatenation or ATen's reflection_pad2d_backward: in
            grad_x = torch.empty_like(x, memory_format=suggest_memory_format(x))  # x's format
        else:
            grad_x = torch.ops.aten.convolution_backward(
                grad, xp, conv_weight, None, [stride] * 2, [p] * 2, [1, 1], False, [0, 0], 1,
                [True, False, False])[0]
    return (grad_x, *_parameter_grads(x, z, weight, output_mask, weight.shape[0]))


def latent_conv_transpose2d_forward(x, z, weight, bias, stride, padding, output_padding):
    checks.latent_conv_transpose2d(x, z, weight, bias, stride, padding, output_padding)
    return torch.ops.aten.convolution(x, weight[:x.shape[1]], bias, [stride] * 2, [padding] * 2,
                                      [1, 1], True, [output_padding] * 2, 1)


def latent_conv_transpose2d(x, z, weight, bias=None, stride=1, padding=0, output_padding=0):
    return latent_conv_transpose2d_forward(x, z, weight, bias, stride, padding, output_padding)


def latent_conv_transpose2d_backward(grad, x, z, weight, stride, padding, output_padding,
                                     output_mask):
    checks.latent_conv_transpose2d_backward(grad, x, z, weight, stride, padding, output_padding)
    grad_x = None
    if output_mask[0]:
        grad_x = torch.ops.aten.convolution_backward(
            grad, x, weight[:x.shape[1]], None, [stride] * 2, [padding] * 2, [1, 1], True,
            [output_padding] * 2, 1, [True, False, False])[0]
    return (grad_x, *_parameter_grads(x, z, weight, output_mask, weight.shape[1]))


def register() -> None:
    """For the compiled operators (once the extension library has loaded)."""
    for fake in (latent_conv2d, latent_conv2d_forward, latent_conv2d_backward,
                 latent_conv_transpose2d, latent_conv_transpose2d_forward,
                 latent_conv_transpose2d_backward):
        torch.library.register_fake(f"i2i_fast::{fake.__name__}", fake)
