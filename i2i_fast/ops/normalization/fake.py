"""Fake implementations of the normalization operators, for torch.compile and FakeTensor: one per
schema, shared by the compiled operators (``i2i_fast::*``, registered by ``register`` once the
extension has loaded) and the Triton operators (``i2i_fast_triton::*``, triton.py), whose
schemas are the same.

Each runs its operator's checks (``checks``, as the kernels do) and gives every output's shape,
dtype and strides exactly as the kernels produce them, so that ``torch.library.opcheck`` passes
and compiled graphs plan their buffers correctly.
"""

from __future__ import annotations

import torch

from . import checks


def is_channels_last_dense(x: torch.Tensor) -> bool:
    """Same rule as csrc/normalization/common.h: (N, S..., C) memory order without gaps."""
    expected = 1
    if x.shape[1] != 1 and x.stride(1) != expected:
        return False
    expected *= x.shape[1]
    for d in range(x.dim() - 1, 1, -1):
        if x.shape[d] != 1 and x.stride(d) != expected:
            return False
        expected *= x.shape[d]
    return x.shape[0] == 1 or x.stride(0) == expected


def output_like(x: torch.Tensor) -> torch.Tensor:
    """The kernels keep x's strides when it is contiguous or channels-last, else go contiguous."""
    if x.is_contiguous() or is_channels_last_dense(x):
        return torch.empty_like(x)
    return x.new_empty(x.shape)


def stat_dtype(x: torch.Tensor) -> torch.dtype:
    """The statistics' dtype: float32, or float64 for a float64 x."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _with_stats(x: torch.Tensor, shape: tuple):
    """(out, mean, rstd) (or (out, mean, var) for batch statistics): the statistics of `shape`."""
    return output_like(x), x.new_empty(shape, dtype=stat_dtype(x)), x.new_empty(
        shape, dtype=stat_dtype(x))


def _grads(x: torch.Tensor, weight, bias):
    """(grad_x, grad_weight, grad_bias); an absent parameter's gradient is (C,) of x's dtype."""
    def param_grad(param):
        return x.new_empty((x.shape[1],)) if param is None else param.new_empty(param.shape)

    return output_like(x), param_grad(weight), param_grad(bias)


# ----- one fake per schema ----------------------------------------------------------------------


def adain(x, weight, bias, eps=1e-5, activation="none", negative_slope=0.2):
    checks.adain(x, weight, bias, eps, activation, negative_slope)
    return output_like(x)


def adain_forward(x, weight, bias, eps, activation, negative_slope):
    checks.adain(x, weight, bias, eps, activation, negative_slope)
    return _with_stats(x, (x.shape[0], x.shape[1]))


def adain_backward(grad_out, x, weight, bias, mean, rstd, eps, activation, negative_slope):
    checks.adain_backward(grad_out, x, weight, bias, mean, rstd, eps, activation, negative_slope)
    return _grads(x, weight, bias)


def instance_norm(x, weight=None, bias=None, eps=1e-5, activation="none", negative_slope=0.2):
    checks.instance_norm(x, weight, bias, eps, activation, negative_slope)
    return output_like(x)


def instance_norm_forward(x, weight, bias, eps, activation, negative_slope):
    checks.instance_norm(x, weight, bias, eps, activation, negative_slope)
    return _with_stats(x, (x.shape[0], x.shape[1]))


def instance_norm_backward(grad_out, x, weight, bias, mean, rstd, eps, activation,
                           negative_slope):
    checks.instance_norm_backward(grad_out, x, weight, bias, mean, rstd, eps, activation,
                                  negative_slope)
    return _grads(x, weight, bias)


def layer_norm(x, weight=None, bias=None, eps=1e-5, style="munit", activation="none",
               negative_slope=0.2):
    checks.layer_norm(x, weight, bias, eps, style, activation, negative_slope)
    return output_like(x)


def layer_norm_forward(x, weight, bias, eps, style, activation, negative_slope):
    checks.layer_norm(x, weight, bias, eps, style, activation, negative_slope)
    return _with_stats(x, (x.shape[0],))


def layer_norm_backward(grad_out, x, weight, bias, mean, rstd, eps, style, activation,
                        negative_slope):
    checks.layer_norm_backward(grad_out, x, weight, bias, mean, rstd, eps, style, activation,
                               negative_slope)
    return _grads(x, weight, bias)


def batch_norm(x, weight=None, bias=None, eps=1e-5, activation="none", negative_slope=0.2):
    return batch_norm_forward(x, weight, bias, eps, activation, negative_slope)


def batch_norm_forward(x, weight, bias, eps, activation, negative_slope):
    checks.batch_norm(x, weight, bias, eps, activation, negative_slope)
    return _with_stats(x, (x.shape[1],))


def batch_norm_backward(grad_out, x, weight, bias, mean, var, eps, activation, negative_slope):
    checks.batch_norm_backward(grad_out, x, weight, bias, mean, var, eps, activation,
                               negative_slope)
    return _grads(x, weight, bias)


# The compiled library's operators: the public ones (adain, ...) and the device ones.
COMPILED = (adain, adain_forward, adain_backward, instance_norm, instance_norm_forward,
            instance_norm_backward, layer_norm, layer_norm_forward, layer_norm_backward,
            batch_norm, batch_norm_forward, batch_norm_backward)


def register() -> None:
    """Registers the fakes of the compiled operators (once the extension has loaded)."""
    for fake in COMPILED:
        torch.library.register_fake(f"i2i_fast::{fake.__name__}", fake)
