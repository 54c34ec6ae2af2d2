"""Fake (meta) implementations of the compiled output_conv2d operators: they run the checks and
give the outputs' shapes, dtypes and strides as the kernels produce them (the output and grad_x
in x's suggested memory format, grad_weight contiguous, grad_bias the bias's shape)."""

from __future__ import annotations

import torch
from torch._prims_common import suggest_memory_format

from . import checks


def output_conv2d_forward(x, weight, bias, padding, padding_mode, activation):
    checks.output_conv2d(x, weight, bias, padding, padding_mode, activation)
    h_out = x.shape[2] + 2 * padding - weight.shape[2] + 1
    w_out = x.shape[3] + 2 * padding - weight.shape[3] + 1
    return x.new_empty((x.shape[0], weight.shape[0], h_out, w_out)).contiguous(
        memory_format=suggest_memory_format(x))


def output_conv2d(x, weight, bias=None, padding=0, padding_mode="zeros", activation="none"):
    return output_conv2d_forward(x, weight, bias, padding, padding_mode, activation)


def output_conv2d_backward(grad, x, weight, out, padding, padding_mode, activation,
                           per_sample_bias, output_mask):
    checks.output_conv2d_backward(grad, x, weight, out, padding, padding_mode, activation)
    grad_x = (torch.empty_like(x, memory_format=suggest_memory_format(x)) if output_mask[0]
              else None)
    grad_weight = (weight.new_empty(weight.shape) if output_mask[1] else None)
    bias_shape = (x.shape[0], weight.shape[0]) if per_sample_bias else (weight.shape[0],)
    grad_bias = weight.new_empty(bias_shape) if output_mask[2] else None
    return grad_x, grad_weight, grad_bias


def register() -> None:
    """For the compiled operators (once the extension library has loaded)."""
    for fake in (output_conv2d, output_conv2d_forward, output_conv2d_backward):
        torch.library.register_fake(f"i2i_fast::{fake.__name__}", fake)
