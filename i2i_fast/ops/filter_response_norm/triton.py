"""The Triton operators of filter response normalization + TLU: launches, and their registration
as torch operators ``i2i_fast_triton::*`` (the kernels are in triton_kernels.py).

Operators (the schemas of the compiled ``i2i_fast::*``):

    filter_response_norm_forward(x, weight, bias, tau, eps) -> (out, rstd)
    filter_response_norm_backward(grad_out, x, weight, bias, tau, rstd, eps)
        -> (grad_x, grad_weight, grad_bias, grad_tau)
The forward operator is differentiable, twice (the backend's filter_response_norm is its first
output).

Each runs its operator's checks (checks.py) and has the fake implementation of its schema
(fake.py). x is read in place when contiguous or channels-last (the output keeps that layout),
else copied to contiguous first. The gradient is the backward kernel's, or, when it must itself
be differentiable (``create_graph=True``), ``reference.filter_response_norm_backward``'s.
"""

import torch
from torch.library import wrap_triton

from .. import triton_support as ts
from ..normalization.fake import is_channels_last_dense, stat_dtype
from . import checks, fake, reference
from .triton_kernels import frn_backward_kernel, frn_forward_kernel

MAX_BLOCK = 2048  # spatial elements a program holds per tile


def _dense(x: torch.Tensor) -> torch.Tensor:
    """x itself when contiguous or channels-last, else a contiguous copy."""
    return x if x.is_contiguous() or is_channels_last_dense(x) else x.contiguous()


def _strides(t: torch.Tensor) -> tuple[int, int, int] | None:
    """(sample, channel, spatial) strides when H and W merge into one dim, else None."""
    h, w = int(t.shape[2]), int(t.shape[3])
    if w == 1:
        return int(t.stride(0)), int(t.stride(1)), int(t.stride(2))
    if h > 1 and t.stride(2) != w * t.stride(3):
        return None
    return int(t.stride(0)), int(t.stride(1)), int(t.stride(3))


def _launch_meta(x: torch.Tensor) -> dict:
    s = int(x.shape[2]) * int(x.shape[3])
    block = min(ts.next_power_of_2(s), MAX_BLOCK)
    return dict(BLOCK=block, LONG_INDEX=x.numel() >= 2**31, num_warps=ts.num_warps_for(block))


def _filter_response_norm_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                                  tau: torch.Tensor, eps: float) -> tuple[torch.Tensor,
                                                                          torch.Tensor]:
    eps = checks.filter_response_norm(x, weight, bias, tau, eps)
    xd = _dense(x)
    n, c = int(x.shape[0]), int(x.shape[1])
    y = torch.empty_like(xd)
    rstd = torch.empty((n, c), dtype=stat_dtype(x), device=x.device)
    sn, sc, ss = _strides(xd)
    wrap_triton(frn_forward_kernel)[(n * c,)](
        xd, weight, bias, tau, y, rstd, c, int(x.shape[2]) * int(x.shape[3]), sn, sc, ss, eps,
        **_launch_meta(x))
    return y, rstd


def _filter_response_norm_backward(grad_out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor,
                                   bias: torch.Tensor, tau: torch.Tensor, rstd: torch.Tensor,
                                   eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                        torch.Tensor]:
    checks.filter_response_norm_backward(grad_out, x, weight, bias, tau, rstd, eps)
    xd = _dense(x)
    n, c = int(x.shape[0]), int(x.shape[1])
    g_strides = _strides(grad_out)
    if g_strides is None:
        grad_out = grad_out.contiguous()
        g_strides = _strides(grad_out)
    dx = torch.empty_like(xd)
    sums = torch.empty((n, c, 3), dtype=stat_dtype(x), device=x.device)
    wrap_triton(frn_backward_kernel)[(n * c,)](
        grad_out, xd, weight, bias, tau, rstd.to(stat_dtype(x)).contiguous(), dx, sums, c,
        int(x.shape[2]) * int(x.shape[3]), *_strides(xd), *g_strides, **_launch_meta(x))
    per_channel = sums.sum(0)  # (C, 3): Σ g, Σ g xhat, Σ grad_out * share_tau
    # Copies: the outputs of an operator must not be views of one another.
    return (dx, per_channel[:, 1].to(weight.dtype, copy=True),
            per_channel[:, 0].to(bias.dtype, copy=True), per_channel[:, 2].to(tau.dtype, copy=True))


def _setup_context(ctx, inputs, output) -> None:
    x, weight, bias, tau, eps = inputs
    ctx.eps = eps
    _, rstd = output
    ctx.mark_non_differentiable(rstd)
    ctx.save_for_backward(x, weight, bias, tau, rstd)


def _autograd(ctx, grad_out, _grad_rstd):
    """The forward operator's backward: the backward operator, or, when the gradient must be
    differentiable (grad mode is on under create_graph=True), the plain-PyTorch formula."""
    x, weight, bias, tau, rstd = ctx.saved_tensors
    if torch.is_grad_enabled():
        grads = reference.filter_response_norm_backward(grad_out, x, weight, bias, tau, ctx.eps)
    else:
        grads = backward_op(grad_out, x, weight, bias, tau, rstd, ctx.eps)
    return (*(g if need else None for g, need in zip(grads, ctx.needs_input_grad)), None)


backward_op = ts.register_operator("filter_response_norm_backward",
                                   _filter_response_norm_backward,
                                   fake.filter_response_norm_backward)
forward_op = ts.register_operator("filter_response_norm_forward", _filter_response_norm_forward,
                                  fake.filter_response_norm_forward,
                                  setup_context=_setup_context, backward=_autograd)
OPERATORS = (forward_op, backward_op)


def filter_response_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                         tau: torch.Tensor, eps: float) -> torch.Tensor:
    """What the "triton" backend runs (arguments already checked by i2i_fast.ops)."""
    return forward_op(x, weight, bias, tau, eps)[0]
