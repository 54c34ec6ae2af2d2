"""Fake (meta) implementations of the compiled GAN loss operators, for torch.compile and FakeTensor.

They give each output's shape, dtype and strides exactly as the kernels produce them. Imported only
once the extension library (which defines the operators) has loaded.
"""

from __future__ import annotations

import torch

from .. import checks


def loss_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def is_batch_major_dense(x: torch.Tensor) -> bool:
    """Same rule as csrc/gan_loss/cpu.cpp: dense without gaps or overlaps, and each sample one
    run of memory (contiguous, channels-last, ...)."""
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


def register() -> None:
    lib = "i2i_fast::"

    @torch.library.register_fake(lib + "gan_loss")
    def _gan_loss(outputs, mode, target, label=0.0, domain=None, reduction="mean"):
        # The checks of the compiled kernels on what is known without reading values. Besides
        # FakeTensors under torch.compile, this runs as the Meta kernel, which the dispatcher also
        # picks for a list mixing CPU and meta tensors: it must refuse that call, as gan_loss's
        # fast path counts on the kernel that runs checking its outputs.
        checks.loss_outputs("gan_loss", list(outputs), heads=domain is not None)
        if domain is not None:
            checks.domain_metadata("gan_loss", domain, outputs)
        x = outputs[0]
        shape = (x.shape[0],) if reduction == "none" else ()
        return x.new_empty(shape, dtype=loss_dtype(x))

    @torch.library.register_fake(lib + "gan_loss_backward")
    def _gan_loss_backward(grad_loss, outputs, mode, target, label, domain, reduction):
        return [x.new_empty(x.shape) for x in outputs]

    @torch.library.register_fake(lib + "r1_penalty")
    def _r1_penalty(grads, weight=1.0, reduction="mean"):
        shape = (grads.shape[0],) if reduction == "none" else ()
        return grads.new_empty(shape, dtype=loss_dtype(grads))

    @torch.library.register_fake(lib + "r1_penalty_backward")
    def _r1_penalty_backward(grad_loss, grads, weight, reduction):
        if is_batch_major_dense(grads):
            return torch.empty_strided(grads.shape, grads.stride(), dtype=grads.dtype,
                                       device=grads.device)
        return grads.new_empty(grads.shape)
