"""Fake implementations of the Gaussian latent terms' operators, for torch.compile and
FakeTensor: one per schema, shared by the compiled operators (``i2i_fast::*``, registered by
``register`` once the extension has loaded) and the Triton operators (``i2i_fast_triton::*``,
triton.py), whose schemas are the same. Each runs its operator's checks and gives the outputs
exactly as the kernels produce them: the loss a scalar, float32 (float64 for float64 inputs); the
gradients contiguous, in the inputs' shape and dtype.
"""

from __future__ import annotations

import torch

from . import checks


def loss_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _loss(first: torch.Tensor) -> torch.Tensor:
    return first.new_empty((), dtype=loss_dtype(first))


def _grads(first: torch.Tensor, count: int) -> tuple[torch.Tensor, ...]:
    return tuple(first.new_empty(first.shape) for _ in range(count))


def gaussian_nll(z, mu, logvar, reduction="batch_sum"):
    checks.gaussian_nll(z, mu, logvar, reduction)
    return _loss(z)


def gaussian_nll_backward(grad_loss, z, mu, logvar, reduction):
    checks.gaussian_nll_backward(grad_loss, z, mu, logvar, reduction)
    return _grads(z, 3)


def gaussian_kl(mu, logvar, reduction="sum"):
    checks.gaussian_kl(mu, logvar, reduction)
    return _loss(mu)


def gaussian_kl_backward(grad_loss, mu, logvar, reduction):
    checks.gaussian_kl_backward(grad_loss, mu, logvar, reduction)
    return _grads(mu, 2)


def register() -> None:
    """Registers the fakes of the compiled operators (once the extension has loaded)."""
    for fake in (gaussian_nll, gaussian_nll_backward, gaussian_kl, gaussian_kl_backward):
        torch.library.register_fake(f"i2i_fast::{fake.__name__}", fake)
