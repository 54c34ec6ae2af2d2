"""Fake implementations of the GAN loss operators, for torch.compile and FakeTensor: one per
schema, shared by the compiled operators (``i2i_fast::*``, registered by ``register`` once the
extension has loaded) and the Triton operators (``i2i_fast_triton::*``, triton.py), whose
schemas are the same.

Each runs its operator's checks (``checks``, on what is known without reading values) and gives
every output's shape, dtype and strides exactly as the kernels produce them. Besides FakeTensors
under torch.compile, a fake runs as the Meta kernel, which the dispatcher also picks for a list
mixing CPU and meta tensors: it must refuse that call, as gan_loss's fast path counts on the
kernel that runs checking its outputs.
"""

from __future__ import annotations

import torch

from . import checks


def loss_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def is_batch_major_dense(x: torch.Tensor) -> bool:
    """Same rule as csrc/gan_loss/gan_loss_cpu.cpp: dense without gaps or overlaps, and each
    sample one run of memory (contiguous, channels-last, ...)."""
    n = x.shape[0]
    if n != 1 and x.stride(0) != x.numel() // n:
        return False
    expected = 1
    for stride, size in sorted((x.stride(d), x.shape[d]) for d in range(1, x.dim())
                               if x.shape[d] != 1):
        if stride != expected:
            return False
        expected *= size
    return True


def _loss_like(x: torch.Tensor, reduction: str) -> torch.Tensor:
    """A loss: (N,) for reduction "none", else a scalar; float32 (float64 for float64 x)."""
    return x.new_empty((x.shape[0],) if reduction == "none" else (), dtype=loss_dtype(x))


# ----- one fake per schema ----------------------------------------------------------------------


def gan_loss(outputs, mode, target, label=0.0, domain=None, reduction="mean"):
    checks.gan_loss(list(outputs), mode, target, label, domain, reduction)
    return _loss_like(outputs[0], reduction)


def gan_loss_backward(grad_loss, outputs, mode, target, label, domain, reduction):
    checks.gan_loss_backward(grad_loss, list(outputs), mode, target, label, domain, reduction)
    return [x.new_empty(x.shape) for x in outputs]


def r1_penalty(grads, weight=1.0, reduction="mean"):
    checks.r1_penalty(grads, weight, reduction)
    return _loss_like(grads, reduction)


def r1_penalty_backward(grad_loss, grads, weight, reduction):
    """The gradient keeps the layout of a batch-major dense `grads`, else is contiguous."""
    checks.r1_penalty_backward(grad_loss, grads, weight, reduction)
    if is_batch_major_dense(grads):
        return torch.empty_strided(grads.shape, grads.stride(), dtype=grads.dtype,
                                   device=grads.device)
    return grads.new_empty(grads.shape)


def register() -> None:
    """Registers the fakes of the compiled operators (once the extension has loaded)."""
    for fake in (gan_loss, gan_loss_backward, r1_penalty, r1_penalty_backward):
        torch.library.register_fake(f"i2i_fast::{fake.__name__}", fake)
