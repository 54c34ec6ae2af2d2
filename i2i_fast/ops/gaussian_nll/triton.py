"""The Triton operators of the Gaussian NLL family: launches, and their registration as torch
operators ``i2i_fast_triton::*`` (the kernels are in triton_kernels.py).

Operators (the schemas of the compiled ``i2i_fast::*``):

    gaussian_nll(z, mu, logvar, reduction) -> loss                     differentiable once
    gaussian_nll_backward(grad_loss, z, mu, logvar, reduction) -> (dz, dmu, dlogvar)

Each runs its operator's checks (checks.py) and has the fake implementation of its schema
(fake.py). The inputs are read as contiguous memory (other layouts are copied first); the
gradients are contiguous.
"""

import torch
from torch.library import wrap_triton

from .. import triton_support as ts
from . import checks, fake
from .fake import loss_dtype
from .triton_kernels import nll_finalize_kernel, nll_grads_kernel, nll_partials_kernel

BLOCK = 1024  # elements per program, forward and backward
FINALIZE_BLOCK = 256  # partial sums per step of the finalize program
DIVISORS = {"batch_sum": lambda n, numel: float(n), "sum": lambda n, numel: 1.0,
            "mean": lambda n, numel: float(numel)}


def _dense(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor):
    return z.contiguous(), mu.contiguous(), logvar.contiguous()


def _gaussian_nll(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                  reduction: str) -> torch.Tensor:
    checks.gaussian_nll(z, mu, logvar, reduction)
    z, mu, logvar = _dense(z, mu, logvar)
    numel = z.numel()
    block = min(ts.next_power_of_2(numel), BLOCK)
    programs = ts.cdiv(numel, block)
    acc = loss_dtype(z)
    partials = torch.empty((programs,), dtype=acc, device=z.device)
    wrap_triton(nll_partials_kernel)[(programs,)](
        z, mu, logvar, partials, numel, BLOCK=block, num_warps=ts.num_warps_for(block))
    out = torch.empty((), dtype=acc, device=z.device)
    wrap_triton(nll_finalize_kernel)[(1,)](
        partials, out, programs, DIVISORS[reduction](z.shape[0], numel), BLOCK=FINALIZE_BLOCK,
        num_warps=ts.num_warps_for(FINALIZE_BLOCK))
    return out


def _gaussian_nll_backward(grad_loss: torch.Tensor, z: torch.Tensor, mu: torch.Tensor,
                           logvar: torch.Tensor,
                           reduction: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    checks.gaussian_nll_backward(grad_loss, z, mu, logvar, reduction)
    z, mu, logvar = _dense(z, mu, logvar)
    numel = z.numel()
    g = grad_loss.to(loss_dtype(z))
    dz, dmu, dlogvar = (torch.empty_like(z) for _ in range(3))
    block = min(ts.next_power_of_2(numel), BLOCK)
    wrap_triton(nll_grads_kernel)[(ts.cdiv(numel, block),)](
        z, mu, logvar, g, dz, dmu, dlogvar, numel, DIVISORS[reduction](z.shape[0], numel),
        BLOCK=block, num_warps=ts.num_warps_for(block))
    return dz, dmu, dlogvar


# ----- autograd --------------------------------------------------------------------------------


def _setup_context(ctx, inputs, output) -> None:
    z, mu, logvar, reduction = inputs
    ctx.reduction = reduction
    ctx.save_for_backward(z, mu, logvar)


def _autograd(ctx, grad):
    z, mu, logvar = ctx.saved_tensors
    dz, dmu, dlogvar = gaussian_nll_backward_op(grad, z, mu, logvar, ctx.reduction)
    needs = ctx.needs_input_grad
    return (dz if needs[0] else None, dmu if needs[1] else None, dlogvar if needs[2] else None,
            None)


gaussian_nll_backward_op = ts.register_operator("gaussian_nll_backward", _gaussian_nll_backward,
                                                fake.gaussian_nll_backward)
gaussian_nll_op = ts.register_operator("gaussian_nll", _gaussian_nll, fake.gaussian_nll,
                                       setup_context=_setup_context, backward=_autograd)

OPERATORS = (gaussian_nll_op, gaussian_nll_backward_op)


# ----- what the "triton" backend runs (arguments already checked by i2i_fast.ops) -----------------


def gaussian_nll(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                 reduction: str) -> torch.Tensor:
    return gaussian_nll_op(z, mu, logvar, reduction)
