"""The Triton backend of latent_conv2d and latent_conv_transpose2d: host side (plans, launches,
the operators and their registration). The convolution of x and its backward are PyTorch's
(cuDNN); the z term is added into the convolution's output in place by ``add_table_kernel`` and
its backward reads grad_out once in ``sum_by_class_kernel`` (triton_kernels.py); the small tables
between them (N x C_out x a few dozen values) are tensor products, as in
csrc/latent_conv/common.h (where latent_conv2d convolves the concatenation instead, plan.py's
``concatenates``, so does this backend).

Operators ``i2i_fast_triton::latent_conv2d_forward`` and
``i2i_fast_triton::latent_conv_transpose2d_forward`` (differentiable), and their ``_backward``
operators, with the compiled operators' schemas and fakes. Forward-mode AD is not implemented
here (the backend refuses tangents, naming the operator).
"""

# No `from __future__ import annotations`: triton_op reads the operators' annotations as types.
from typing import Optional

import torch
import triton.language as tl
from torch.library import wrap_triton

from .. import triton_support as ts
from . import checks, fake
from .plan import (axis_plan, concatenates, concatenation, tap_mask, transposed_axis_plan)
from .triton_kernels import add_table_kernel, sum_by_class_kernel

BLOCK = 1024


class _Problem:
    """A checked call: sizes, row and column plans, the path, and the tables' dtype. `last` is
    padding_mode (conv2d) or output_padding (transposed)."""

    def __init__(self, x, z, weight, stride, padding, last, transposed):
        self.n, self.cx, self.h, self.w = x.shape
        self.cz = z.shape[1]
        self.transposed = transposed
        self.in_dim = 0 if transposed else 1
        self.out_channels = weight.shape[1 - self.in_dim]
        self.kh, self.kw = weight.shape[2], weight.shape[3]
        self.stride, self.padding = stride, padding
        if transposed:
            self.output_padding, self.reflect = last, False
            self.rows = transposed_axis_plan(self.h, self.kh, stride, padding, last)
            self.cols = transposed_axis_plan(self.w, self.kw, stride, padding, last)
            self.concatenates = False
        else:
            self.output_padding, self.reflect = 0, last == "reflect"
            self.rows = axis_plan(self.h, self.kh, stride, padding, self.reflect)
            self.cols = axis_plan(self.w, self.kw, stride, padding, self.reflect)
            self.concatenates = concatenates(x, z, weight)
        self.acc = torch.float64 if x.dtype == torch.float64 else torch.float32
        self.device = x.device

    def masks(self):
        args = (self.stride, self.padding, self.reflect, self.transposed, self.acc, self.device)
        return (tap_mask(self.rows, self.h, self.kh, *args),
                tap_mask(self.cols, self.w, self.kw, *args))

    def classes(self):
        r, c = self.rows, self.cols
        return (r.classes, c.classes, r.head, r.tail, r.period, c.head, c.tail, c.period)

    def _padded(self, input):
        if self.reflect and self.padding > 0:
            return torch.ops.aten.reflection_pad2d(input, [self.padding] * 4), 0
        return input, self.padding

    def convolve(self, input, weight, bias):
        xp, p = self._padded(input)
        return torch.ops.aten.convolution(xp, weight, bias, [self.stride] * 2, [p] * 2, [1, 1],
                                          self.transposed, [self.output_padding] * 2, 1)

    def convolve_backward(self, grad, input, weight, input_grad, weight_grad):
        xp, p = self._padded(input)
        grad_input, grad_weight, _ = torch.ops.aten.convolution_backward(
            grad, xp, weight, None, [self.stride] * 2, [p] * 2, [1, 1], self.transposed,
            [self.output_padding] * 2, 1, [input_grad, weight_grad, False])
        if input_grad and xp is not input:
            grad_input = torch.ops.aten.reflection_pad2d_backward(grad_input, input,
                                                                  [self.padding] * 4)
        return grad_input, grad_weight

    def z_weight_rows(self, weight):
        """W_z as (C_z, O * kh * kw) rows, in the accumulation dtype."""
        wz = weight.narrow(self.in_dim, self.cx, self.cz).to(self.acc)
        return (wz if self.transposed else wz.permute(1, 0, 2, 3)).reshape(
            self.cz, self.out_channels * self.kh * self.kw)


def _strides(t: torch.Tensor):
    return t.stride(0), t.stride(1), t.stride(2), t.stride(3)


def _forward(pr: _Problem, x, z, weight, bias):
    if pr.concatenates:
        return pr.convolve(concatenation(x, z), weight, bias)
    out = pr.convolve(x, weight.narrow(pr.in_dim, 0, pr.cx), bias)
    if pr.cz == 0:
        return out
    v = (z.to(x.dtype).to(pr.acc) @ pr.z_weight_rows(weight)).view(
        pr.n, pr.out_channels, pr.kh, pr.kw)
    rows, cols = pr.masks()
    table = (rows @ v @ cols.t()).contiguous()  # (N, O, Kr, Kc)
    channels_last = not out.is_contiguous() and out.is_contiguous(
        memory_format=torch.channels_last)
    target = out if out.is_contiguous() or channels_last else out.contiguous()
    total = target.numel()
    wrap_triton(add_table_kernel)[(ts.cdiv(total, BLOCK),)](
        target, table, total, pr.out_channels, pr.rows.out, pr.cols.out, *_strides(target),
        *pr.classes(), CHANNELS_LAST=channels_last, BLOCK=BLOCK)
    if target is not out:
        out.copy_(target)
    return out


def _backward_concatenated(pr: _Problem, grad, x, z, weight, output_mask):
    from torch._prims_common import suggest_memory_format

    grad_x = grad_z = grad_weight = grad_bias = None
    if output_mask[0] or output_mask[1] or output_mask[2]:
        grad_input, grad_weight = pr.convolve_backward(
            grad, concatenation(x, z), weight, output_mask[0] or output_mask[1], output_mask[2])
        if output_mask[0]:
            grad_x = torch.empty_like(x, memory_format=suggest_memory_format(x))
            grad_x.copy_(grad_input[:, :pr.cx])
        if output_mask[1]:
            grad_z = grad_input[:, pr.cx:].sum((2, 3), dtype=pr.acc).to(z.dtype)
        if output_mask[2]:
            grad_weight = grad_weight.contiguous()
    if output_mask[3]:
        grad_bias = grad.sum((0, 2, 3), dtype=pr.acc).to(weight.dtype)
    return grad_x, grad_z, grad_weight, grad_bias


def _backward(pr: _Problem, grad, x, z, weight, output_mask):
    if pr.concatenates:
        return _backward_concatenated(pr, grad, x, z, weight, output_mask)
    grad_x = grad_z = grad_weight = grad_bias = grad_wx = None
    if output_mask[0] or output_mask[2]:
        grad_x, grad_wx = pr.convolve_backward(grad, x, weight.narrow(pr.in_dim, 0, pr.cx),
                                               output_mask[0], output_mask[2])
    if output_mask[1] or output_mask[2] or output_mask[3]:
        kr, kc = pr.rows.classes, pr.cols.classes
        sums = torch.empty((pr.n, pr.out_channels, kr, kc), dtype=pr.acc, device=pr.device)
        wrap_triton(sum_by_class_kernel)[(pr.n * pr.out_channels, kr, kc)](
            grad, sums, pr.out_channels, *_strides(grad), *pr.classes(),
            ACC=tl.float64 if pr.acc == torch.float64 else tl.float32, BLOCK=BLOCK)
        if output_mask[3]:
            grad_bias = sums.sum((0, 2, 3)).to(weight.dtype)
        rows, cols = pr.masks()
        g = (rows.t() @ sums @ cols).reshape(pr.n, -1)  # G (N, O kh kw)
        if output_mask[1]:
            grad_z = (g @ pr.z_weight_rows(weight).t()).to(z.dtype)
        if output_mask[2]:
            gwz = (z.to(x.dtype).to(pr.acc).t() @ g).view(pr.cz, pr.out_channels, pr.kh, pr.kw)
            if not pr.transposed:
                gwz = gwz.permute(1, 0, 2, 3)
            grad_weight = torch.cat([grad_wx, gwz.to(weight.dtype)], pr.in_dim).contiguous()
    return grad_x, grad_z, grad_weight, grad_bias


def _conv2d_forward(x: torch.Tensor, z: torch.Tensor, weight: torch.Tensor,
                    bias: Optional[torch.Tensor], stride: int, padding: int,
                    padding_mode: str) -> torch.Tensor:
    checks.latent_conv2d(x, z, weight, bias, stride, padding, padding_mode)
    return _forward(_Problem(x, z, weight, stride, padding, padding_mode, False), x, z, weight,
                    bias)


def _conv2d_backward(grad: torch.Tensor, x: torch.Tensor, z: torch.Tensor, weight: torch.Tensor,
                     stride: int, padding: int, padding_mode: str, output_mask: list[bool]
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    checks.latent_conv2d_backward(grad, x, z, weight, stride, padding, padding_mode)
    return _backward(_Problem(x, z, weight, stride, padding, padding_mode, False), grad, x, z,
                     weight, output_mask)


def _transpose2d_forward(x: torch.Tensor, z: torch.Tensor, weight: torch.Tensor,
                         bias: Optional[torch.Tensor], stride: int, padding: int,
                         output_padding: int) -> torch.Tensor:
    checks.latent_conv_transpose2d(x, z, weight, bias, stride, padding, output_padding)
    return _forward(_Problem(x, z, weight, stride, padding, output_padding, True), x, z, weight,
                    bias)


def _transpose2d_backward(grad: torch.Tensor, x: torch.Tensor, z: torch.Tensor,
                          weight: torch.Tensor, stride: int, padding: int, output_padding: int,
                          output_mask: list[bool]
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    checks.latent_conv_transpose2d_backward(grad, x, z, weight, stride, padding, output_padding)
    return _backward(_Problem(x, z, weight, stride, padding, output_padding, True), grad, x, z,
                     weight, output_mask)


def _setup_context(ctx, inputs, output):
    x, z, weight, bias, stride, padding, last = inputs
    ctx.save_for_backward(x, z, weight)
    ctx.args = (stride, padding, last, bias is not None)


def _autograd(backward_op):
    def backward(ctx, grad):
        x, z, weight = ctx.saved_tensors
        stride, padding, last, has_bias = ctx.args
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[2],
                has_bias and ctx.needs_input_grad[3]]
        gx, gz, gw, gb = backward_op(grad.contiguous() if grad.stride().count(0) else grad, x,
                                     z, weight, stride, padding, last, mask)
        return gx, gz, gw, gb, None, None, None

    return backward


conv2d_backward_op = ts.register_operator("latent_conv2d_backward", _conv2d_backward,
                                          fake.latent_conv2d_backward)
conv2d_forward_op = ts.register_operator("latent_conv2d_forward", _conv2d_forward,
                                         fake.latent_conv2d_forward,
                                         setup_context=_setup_context,
                                         backward=_autograd(conv2d_backward_op))
transpose2d_backward_op = ts.register_operator("latent_conv_transpose2d_backward",
                                               _transpose2d_backward,
                                               fake.latent_conv_transpose2d_backward)
transpose2d_forward_op = ts.register_operator("latent_conv_transpose2d_forward",
                                              _transpose2d_forward,
                                              fake.latent_conv_transpose2d_forward,
                                              setup_context=_setup_context,
                                              backward=_autograd(transpose2d_backward_op))
OPERATORS = (conv2d_forward_op, conv2d_backward_op, transpose2d_forward_op,
             transpose2d_backward_op)


def latent_conv2d(x, z, weight, bias, stride, padding, padding_mode):
    """What the "triton" backend runs (arguments already checked by i2i_fast.ops)."""
    return conv2d_forward_op(x, z, weight, bias, stride, padding, padding_mode)


def latent_conv_transpose2d(x, z, weight, bias, stride, padding, output_padding):
    """What the "triton" backend runs (arguments already checked by i2i_fast.ops)."""
    return transpose2d_forward_op(x, z, weight, bias, stride, padding, output_padding)
