"""The Triton operators of max pooling: launches, and their registration as torch operators
``i2i_fast_triton::*`` (the kernels are in triton_kernels.py).

Operators (the schemas of the compiled ``i2i_fast::*``, csrc/resampling/resampling_ops.cpp):

    block_max_forward(x, factor) -> (out, index)          differentiable in x (out's gradient)
    block_max_scatter(grad, index, factor, out_h, out_w)  its backward; differentiable in grad
    block_max_gather(x, index, factor, out_h, out_w)      the scatter's adjoint; likewise

The scatter and the gather are each other's backward, so max pooling is differentiable any number
of times, as the compiled operators. Forward-mode AD is not implemented here (the backend
selection refuses tangents, naming max_pool). Each runs its checks (checks.py) and has the fake
implementation of its schema (fake.py), whose outputs it fills: every tensor is addressed by its
strides (no copies), the outputs are laid out as the compiled kernels' (channels-last for a
channels-last input, else contiguous).
"""

import torch
from torch.library import wrap_triton

from .. import triton_support as ts
from . import checks, fake
from .triton_kernels import block_max_forward_kernel, block_max_route_kernel

BLOCK = 1024  # elements of the output per program


def _launch(out: torch.Tensor, factor: int, *tensors: torch.Tensor) -> dict:
    """The grid and meta-parameters of a launch over `out`'s elements, and the strides of
    `tensors` (input, index, output) in the kernels' argument order."""
    total = out.numel()
    block = min(BLOCK, ts.next_power_of_2(total))
    reach = max(sum((s - 1) * st for s, st in zip(t.shape, t.stride())) + 1 for t in tensors)
    strides = [int(s) for t in tensors for s in t.stride()]
    return dict(grid=(ts.cdiv(total, block),), strides=strides, total=total,
                meta=dict(F=factor, BLOCK=block, LONG_INDEX=reach >= 2**31 or total >= 2**31,
                          num_warps=ts.num_warps_for(block)))


def _block_max_forward(x: torch.Tensor, factor: int) -> tuple[torch.Tensor, torch.Tensor]:
    out, index = fake.block_max_forward(x, factor)  # checks, and the outputs' layout
    if out.numel() == 0:
        return out, index
    p = _launch(out, factor, x, index, out)
    wrap_triton(block_max_forward_kernel)[p["grid"]](
        x, out, index, int(x.shape[1]), int(out.shape[2]), int(out.shape[3]), p["total"],
        *p["strides"], **p["meta"])
    return out, index


def _route(scatter: bool, t: torch.Tensor, index: torch.Tensor, factor: int, out_h: int,
           out_w: int) -> torch.Tensor:
    """block_max_scatter (t the pooled gradient, out_h x out_w x's size) or block_max_gather (t is
    x, out_h x out_w the pooled size)."""
    checked = fake.block_max_scatter if scatter else fake.block_max_gather
    out = checked(t, index, factor, out_h, out_w)
    if out.numel() == 0:
        return out
    full, pooled = (out, t) if scatter else (t, out)
    p = _launch(out, factor, t, index, out)
    wrap_triton(block_max_route_kernel)[p["grid"]](
        t, index, out, int(t.shape[1]), int(full.shape[2]), int(full.shape[3]),
        int(pooled.shape[2]), int(pooled.shape[3]), p["total"], *p["strides"], SCATTER=scatter,
        **p["meta"])
    return out


def _block_max_scatter(grad: torch.Tensor, index: torch.Tensor, factor: int, out_h: int,
                       out_w: int) -> torch.Tensor:
    return _route(True, grad, index, factor, out_h, out_w)


def _block_max_gather(x: torch.Tensor, index: torch.Tensor, factor: int, out_h: int,
                      out_w: int) -> torch.Tensor:
    return _route(False, x, index, factor, out_h, out_w)


def _save(ctx, index: torch.Tensor, factor: int, t: torch.Tensor) -> None:
    """What each operator's backward needs: the window positions, the factor and the size of the
    operator's input (that of the gradient it returns)."""
    ctx.save_for_backward(index)
    ctx.factor = factor
    ctx.size = (int(t.shape[2]), int(t.shape[3]))


def _save_forward(ctx, inputs, output) -> None:
    x, factor = inputs
    ctx.mark_non_differentiable(output[1])
    _save(ctx, output[1], factor, x)


def _save_route(ctx, inputs, output) -> None:
    t, index, factor, _, _ = inputs
    _save(ctx, index, factor, t)


def _routed(op):
    """The backward that routes the incoming gradient with `op` (scatter or gather), back to the
    size of the forward's input; the other arguments get none."""

    def backward(ctx, grad, *_):
        (index,) = ctx.saved_tensors
        routed = op()(grad, index, ctx.factor, *ctx.size)
        return (routed, *(None for _ in ctx.needs_input_grad[1:]))

    return backward


forward_op = ts.register_operator("block_max_forward", _block_max_forward,
                                  fake.block_max_forward, setup_context=_save_forward,
                                  backward=_routed(lambda: scatter_op))
scatter_op = ts.register_operator("block_max_scatter", _block_max_scatter,
                                  fake.block_max_scatter, setup_context=_save_route,
                                  backward=_routed(lambda: gather_op))
gather_op = ts.register_operator("block_max_gather", _block_max_gather, fake.block_max_gather,
                                 setup_context=_save_route, backward=_routed(lambda: scatter_op))
OPERATORS = (forward_op, scatter_op, gather_op)


def max_pool(x: torch.Tensor, factor: int) -> torch.Tensor:
    """What the "triton" backend runs (arguments already checked by i2i_fast.ops)."""
    return forward_op(x, factor)[0]
