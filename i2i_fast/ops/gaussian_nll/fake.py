"""Fake implementations of the Gaussian NLL operators, for torch.compile and FakeTensor: one per
schema, shared by the compiled operators (``i2i_fast::*``, registered by ``register`` once the
extension has loaded) and the Triton operators (``i2i_fast_triton::*``, triton.py), whose
schemas are the same. Each runs its operator's checks and gives the outputs exactly as the
kernels produce them: the loss a scalar, float32 (float64 for float64 inputs); the three
gradients contiguous, in the inputs' shape and dtype.
"""

from __future__ import annotations

import torch

from . import checks


def loss_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def gaussian_nll(z, mu, logvar, reduction="batch_sum"):
    checks.gaussian_nll(z, mu, logvar, reduction)
    return z.new_empty((), dtype=loss_dtype(z))


def gaussian_nll_backward(grad_loss, z, mu, logvar, reduction):
    checks.gaussian_nll_backward(grad_loss, z, mu, logvar, reduction)
    return tuple(z.new_empty(z.shape) for _ in range(3))


def register() -> None:
    """Registers the fakes of the compiled operators (once the extension has loaded)."""
    for fake in (gaussian_nll, gaussian_nll_backward):
        torch.library.register_fake(f"i2i_fast::{fake.__name__}", fake)
