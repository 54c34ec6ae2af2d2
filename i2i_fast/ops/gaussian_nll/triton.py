"""The Triton operators of the Gaussian latent terms: launches, and their registration as torch
operators ``i2i_fast_triton::*`` (the kernels are in triton_kernels.py).

Operators (the schemas of the compiled ``i2i_fast::*``):

    gaussian_nll(z, mu, logvar, reduction) -> loss                     differentiable once
    gaussian_nll_backward(grad_loss, z, mu, logvar, reduction) -> (dz, dmu, dlogvar)
    gaussian_kl(mu, logvar, reduction) -> loss                         differentiable once
    gaussian_kl_backward(grad_loss, mu, logvar, reduction) -> (dmu, dlogvar)

Each runs its operator's checks (checks.py) and has the fake implementation of its schema
(fake.py). The inputs are read as contiguous memory (other layouts are copied first); the
gradients are contiguous.
"""

import torch
from torch.library import wrap_triton

from .. import triton_support as ts
from . import checks, fake
from .fake import loss_dtype
from .triton_kernels import (
    kl_grads_kernel,
    kl_partials_kernel,
    nll_grads_kernel,
    nll_partials_kernel,
    term_finalize_kernel,
)

BLOCK = 1024  # elements per program, forward and backward
FINALIZE_BLOCK = 256  # partial sums per step of the finalize program
DIVISORS = {"batch_sum": lambda n, numel: float(n), "sum": lambda n, numel: 1.0,
            "mean": lambda n, numel: float(numel)}


class _Problem:
    """The launch geometry of a term over its inputs (of one shape): contiguous copies of them,
    the element count, the block and the number of programs."""

    def __init__(self, inputs: tuple[torch.Tensor, ...], reduction: str):
        self.inputs = tuple(t.contiguous() for t in inputs)
        first = self.inputs[0]
        self.numel = first.numel()
        self.block = min(ts.next_power_of_2(self.numel), BLOCK)
        self.programs = ts.cdiv(self.numel, self.block)
        self.divisor = DIVISORS[reduction](first.shape[0], self.numel)
        self.acc = loss_dtype(first)
        self.meta = dict(BLOCK=self.block, num_warps=ts.num_warps_for(self.block))

    def partials(self) -> torch.Tensor:
        return torch.empty((self.programs,), dtype=self.acc, device=self.inputs[0].device)

    def grads(self, grad_loss: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(g in the accumulation dtype, empty gradients of the inputs)."""
        return grad_loss.to(self.acc), [torch.empty_like(t) for t in self.inputs]


def _finalize(p: _Problem, partials: torch.Tensor) -> torch.Tensor:
    """The loss: the partial sums added in float64 in a fixed order, divided."""
    out = torch.empty((), dtype=p.acc, device=partials.device)
    wrap_triton(term_finalize_kernel)[(1,)](
        partials, out, p.programs, p.divisor, BLOCK=FINALIZE_BLOCK,
        num_warps=ts.num_warps_for(FINALIZE_BLOCK))
    return out


def _gaussian_nll(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                  reduction: str) -> torch.Tensor:
    checks.gaussian_nll(z, mu, logvar, reduction)
    p = _Problem((z, mu, logvar), reduction)
    partials = p.partials()
    wrap_triton(nll_partials_kernel)[(p.programs,)](*p.inputs, partials, p.numel, **p.meta)
    return _finalize(p, partials)


def _gaussian_nll_backward(grad_loss: torch.Tensor, z: torch.Tensor, mu: torch.Tensor,
                           logvar: torch.Tensor,
                           reduction: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    checks.gaussian_nll_backward(grad_loss, z, mu, logvar, reduction)
    p = _Problem((z, mu, logvar), reduction)
    g, grads = p.grads(grad_loss)
    wrap_triton(nll_grads_kernel)[(p.programs,)](*p.inputs, g, *grads, p.numel, p.divisor,
                                                 **p.meta)
    return tuple(grads)


def _gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor, reduction: str) -> torch.Tensor:
    checks.gaussian_kl(mu, logvar, reduction)
    p = _Problem((mu, logvar), reduction)
    partials = p.partials()
    wrap_triton(kl_partials_kernel)[(p.programs,)](*p.inputs, partials, p.numel, **p.meta)
    return _finalize(p, partials)


def _gaussian_kl_backward(grad_loss: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                          reduction: str) -> tuple[torch.Tensor, torch.Tensor]:
    checks.gaussian_kl_backward(grad_loss, mu, logvar, reduction)
    p = _Problem((mu, logvar), reduction)
    g, grads = p.grads(grad_loss)
    wrap_triton(kl_grads_kernel)[(p.programs,)](*p.inputs, g, *grads, p.numel, p.divisor,
                                                **p.meta)
    return tuple(grads)


# ----- autograd (one pair for both operators: the inputs are every argument but the last) ------


def _setup_context(ctx, inputs, output) -> None:
    *tensors, reduction = inputs
    ctx.reduction = reduction
    ctx.save_for_backward(*tensors)


def _autograd_of(backward_op):
    def _autograd(ctx, grad):
        grads = backward_op(grad, *ctx.saved_tensors, ctx.reduction)
        return (*(d if needs else None for d, needs in zip(grads, ctx.needs_input_grad)), None)

    return _autograd


gaussian_nll_backward_op = ts.register_operator("gaussian_nll_backward", _gaussian_nll_backward,
                                                fake.gaussian_nll_backward)
gaussian_nll_op = ts.register_operator("gaussian_nll", _gaussian_nll, fake.gaussian_nll,
                                       setup_context=_setup_context,
                                       backward=_autograd_of(gaussian_nll_backward_op))
gaussian_kl_backward_op = ts.register_operator("gaussian_kl_backward", _gaussian_kl_backward,
                                               fake.gaussian_kl_backward)
gaussian_kl_op = ts.register_operator("gaussian_kl", _gaussian_kl, fake.gaussian_kl,
                                      setup_context=_setup_context,
                                      backward=_autograd_of(gaussian_kl_backward_op))

OPERATORS = (gaussian_nll_op, gaussian_nll_backward_op, gaussian_kl_op, gaussian_kl_backward_op)


# ----- what the "triton" backend runs (arguments already checked by i2i_fast.ops) -----------------


def gaussian_nll(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                 reduction: str) -> torch.Tensor:
    return gaussian_nll_op(z, mu, logvar, reduction)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor, reduction: str) -> torch.Tensor:
    return gaussian_kl_op(mu, logvar, reduction)
