"""Fake implementations of the filter response normalization operators, for torch.compile and
FakeTensor: one per schema, shared by the compiled operators (``i2i_fast::*``, registered by
``register`` once the extension has loaded) and the Triton operators (``i2i_fast_triton::*``,
triton.py), whose schemas are the same.

Each runs its operator's checks and gives every output's shape, dtype and strides as the kernels
produce them: the output keeps x's memory format when x is contiguous or channels-last (else it
is contiguous), rstd is (N, C) float32 (float64 for a float64 x), each parameter's gradient has
its parameter's shape and dtype. The double backward's gradient of grad_out has grad_out's dtype
(the compiled operators only: the Triton backend differentiates its gradient in plain PyTorch).
"""

from __future__ import annotations

import torch

from ..normalization.fake import output_like, stat_dtype
from . import checks


def filter_response_norm(x, weight, bias, tau, eps=1e-6):
    checks.filter_response_norm(x, weight, bias, tau, eps)
    return output_like(x)


def filter_response_norm_forward(x, weight, bias, tau, eps):
    checks.filter_response_norm(x, weight, bias, tau, eps)
    return output_like(x), x.new_empty((x.shape[0], x.shape[1]), dtype=stat_dtype(x))


def filter_response_norm_backward(grad_out, x, weight, bias, tau, rstd, eps):
    checks.filter_response_norm_backward(grad_out, x, weight, bias, tau, rstd, eps)
    return (output_like(x), weight.new_empty(weight.shape), bias.new_empty(bias.shape),
            tau.new_empty(tau.shape))


def filter_response_norm_double_backward(grad_grad_x, grad_out, x, weight, bias, tau, rstd, eps):
    checks.filter_response_norm_double_backward(grad_grad_x, grad_out, x, weight, bias, tau, rstd,
                                                eps)
    return (output_like(x).to(grad_out.dtype), output_like(x), weight.new_empty(weight.shape))


COMPILED = (filter_response_norm, filter_response_norm_forward, filter_response_norm_backward,
            filter_response_norm_double_backward)


def register() -> None:
    """Registers the fakes of the compiled operators (once the extension has loaded)."""
    for fake in COMPILED:
        torch.library.register_fake(f"i2i_fast::{fake.__name__}", fake)
