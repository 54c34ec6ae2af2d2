"""The Triton backend of latent_conv2d: host side (plans, launches, the operators and their
registration). The convolution of x and its backward are PyTorch's (cuDNN); the z term is added
into the convolution's output in place by ``add_table_kernel`` and its backward reads grad_out
once in ``sum_by_class_kernel`` (triton_kernels.py); the small tables between them (N x C_out x a
few dozen values) are tensor products, as in csrc/latent_conv/latent_conv_common.h.

Operators ``i2i_fast_triton::latent_conv2d_forward`` (differentiable) and
``i2i_fast_triton::latent_conv2d_backward``, with the compiled operators' schemas and fakes.
Forward-mode AD is not implemented here (the backend refuses tangents, naming the operator).
"""

# No `from __future__ import annotations`: triton_op reads the operators' annotations as types.
from typing import Optional

import torch
import triton.language as tl
from torch.library import wrap_triton

from .. import triton_support as ts
from . import checks, fake
from .plan import axis_plan, tap_mask
from .triton_kernels import add_table_kernel, sum_by_class_kernel

BLOCK = 1024


class _Problem:
    """A checked call: sizes, row and column plans, and the tables' dtype."""

    def __init__(self, x, z, weight, stride, padding, padding_mode):
        self.n, self.cx, self.h, self.w = x.shape
        self.cz = z.shape[1]
        self.out_channels, _, self.kh, self.kw = weight.shape
        self.stride, self.padding = stride, padding
        self.reflect = padding_mode == "reflect"
        self.rows = axis_plan(self.h, self.kh, stride, padding, self.reflect)
        self.cols = axis_plan(self.w, self.kw, stride, padding, self.reflect)
        self.acc = torch.float64 if x.dtype == torch.float64 else torch.float32
        self.device = x.device

    def masks(self):
        args = (self.stride, self.padding, self.reflect, self.acc, self.device)
        return (tap_mask(self.rows, self.h, self.kh, *args),
                tap_mask(self.cols, self.w, self.kw, *args))

    def classes(self):
        return (self.rows.classes, self.cols.classes, self.rows.head, self.rows.tail,
                self.cols.head, self.cols.tail)

    def conv_input(self, x):
        if self.reflect and self.padding > 0:
            return torch.nn.functional.pad(x, (self.padding,) * 4, mode="reflect"), 0
        return x, self.padding


def _strides(t: torch.Tensor):
    return t.stride(0), t.stride(1), t.stride(2), t.stride(3)


def _forward(x: torch.Tensor, z: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],
             stride: int, padding: int, padding_mode: str) -> torch.Tensor:
    checks.latent_conv2d(x, z, weight, bias, stride, padding, padding_mode)
    pr = _Problem(x, z, weight, stride, padding, padding_mode)
    xp, p = pr.conv_input(x)
    out = torch.nn.functional.conv2d(xp, weight[:, :pr.cx], bias, stride, p)
    if pr.cz == 0:
        return out
    wz = weight[:, pr.cx:].to(pr.acc)
    v = (z.to(x.dtype).to(pr.acc) @ wz.permute(1, 0, 2, 3).reshape(pr.cz, -1)).view(
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


def _backward(grad: torch.Tensor, x: torch.Tensor, z: torch.Tensor, weight: torch.Tensor,
              stride: int, padding: int, padding_mode: str, output_mask: list[bool]
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    checks.latent_conv2d_backward(grad, x, z, weight, stride, padding, padding_mode)
    pr = _Problem(x, z, weight, stride, padding, padding_mode)
    grad_x = grad_z = grad_weight = grad_bias = grad_wx = None
    if output_mask[0] or output_mask[2]:
        xp, p = pr.conv_input(x)
        grad_x, grad_wx, _ = torch.ops.aten.convolution_backward(
            grad, xp, weight[:, :pr.cx], None, [stride] * 2, [p] * 2, [1, 1], False, [0, 0], 1,
            [output_mask[0], output_mask[2], False])
        if output_mask[0] and xp is not x:
            grad_x = torch.ops.aten.reflection_pad2d_backward(grad_x, x, [padding] * 4)
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
        wz_rows = weight[:, pr.cx:].to(pr.acc).permute(1, 0, 2, 3).reshape(pr.cz, -1)
        if output_mask[1]:
            grad_z = (g @ wz_rows.t()).to(z.dtype)
        if output_mask[2]:
            gwz = (z.to(x.dtype).to(pr.acc).t() @ g).view(
                pr.cz, pr.out_channels, pr.kh, pr.kw).permute(1, 0, 2, 3).to(weight.dtype)
            grad_weight = torch.cat([grad_wx, gwz], 1).contiguous()
    return grad_x, grad_z, grad_weight, grad_bias


def _setup_context(ctx, inputs, output):
    x, z, weight, bias, stride, padding, padding_mode = inputs
    ctx.save_for_backward(x, z, weight)
    ctx.args = (stride, padding, padding_mode, bias is not None)


def _autograd(ctx, grad):
    x, z, weight = ctx.saved_tensors
    stride, padding, padding_mode, has_bias = ctx.args
    mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[2],
            has_bias and ctx.needs_input_grad[3]]
    gx, gz, gw, gb = backward_op(grad.contiguous() if grad.stride().count(0) else grad, x, z,
                                 weight, stride, padding, padding_mode, mask)
    return gx, gz, gw, gb, None, None, None


backward_op = ts.register_operator("latent_conv2d_backward", _backward,
                                   fake.latent_conv2d_backward)
forward_op = ts.register_operator("latent_conv2d_forward", _forward, fake.latent_conv2d_forward,
                                  setup_context=_setup_context, backward=_autograd)
OPERATORS = (forward_op, backward_op)


def latent_conv2d(x, z, weight, bias, stride, padding, padding_mode):
    """What the "triton" backend runs (arguments already checked by i2i_fast.ops)."""
    return forward_op(x, z, weight, bias, stride, padding, padding_mode)
