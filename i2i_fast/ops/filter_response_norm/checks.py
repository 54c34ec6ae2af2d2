"""The argument checks of the filter response normalization operators.

The one definition that every Python entry point runs: the public function (``__init__``), the
Triton operators (``triton.py``) and the fake implementations (``fake.py``).
``csrc/filter_response_norm/checks.h`` is its C++ mirror for the compiled kernels: the same
checks in the same order with the same words (tests/test_operator_checks.py compares them).
"""

from __future__ import annotations

import torch

from .. import checks

PARAMETERS = ("weight", "bias", "tau")


def filter_response_norm(x, weight, bias, tau, eps, op: str = "filter_response_norm"):
    """x (N, C, H, W) floating, non-empty; weight, bias, tau (C,) each, with x's device and dtype
    (or float32 for a float16/bfloat16 x); eps finite and > 0. Returns eps."""
    x = checks.tensor(op, "x", x)
    if x.dim() != 4:
        raise ValueError(f"{op}: x: expected shape (N, C, H, W), got {x.dim()} dims with shape "
                         f"{tuple(x.shape)}")
    checks.floating(op, "x", x)
    if x.numel() == 0:
        raise ValueError(f"{op}: x: expected a non-empty tensor, got shape {tuple(x.shape)}")
    c = (x.shape[1],)
    for name, p in zip(PARAMETERS, (weight, bias, tau)):
        checks.norm_param(op, name, p, c, x)
    return checks.eps(op, eps, positive=True)


def filter_response_norm_backward(grad_out, x, weight, bias, tau, rstd, eps,
                                  op: str = "filter_response_norm_backward"):
    """The forward operator's checks, then grad_out (x's shape) and rstd ((N, C), what the
    forward operator returned), both floating and on x's device."""
    eps = filter_response_norm(x, weight, bias, tau, eps, op)
    grad_out = checks.tensor(op, "grad_out", grad_out)
    rstd = checks.tensor(op, "rstd", rstd)
    if grad_out.shape != x.shape:
        raise ValueError(f"{op}: grad_out: expected shape {tuple(x.shape)} (the shape of x), got "
                         f"{tuple(grad_out.shape)}")
    stat_shape = (x.shape[0], x.shape[1])
    if rstd.shape != stat_shape:
        raise ValueError(f"{op}: rstd: expected shape {stat_shape} (what the forward operator "
                         f"returned), got {tuple(rstd.shape)}")
    for name, t in (("grad_out", grad_out), ("rstd", rstd)):
        if t.device != x.device:
            raise ValueError(f"{op}: {name}: expected device {x.device} (the device of x), got "
                             f"{t.device}")
        checks.floating(op, name, t)
    return eps


def filter_response_norm_double_backward(grad_grad_x, grad_out, x, weight, bias, tau, rstd, eps):
    """The backward operator's checks, then grad_grad_x (the gradient of grad_x: x's shape),
    floating and on x's device."""
    op = "filter_response_norm_double_backward"
    eps = filter_response_norm_backward(grad_out, x, weight, bias, tau, rstd, eps, op)
    grad_grad_x = checks.tensor(op, "grad_grad_x", grad_grad_x)
    if grad_grad_x.shape != x.shape:
        raise ValueError(f"{op}: grad_grad_x: expected shape {tuple(x.shape)} (the shape of x), "
                         f"got {tuple(grad_grad_x.shape)}")
    if grad_grad_x.device != x.device:
        raise ValueError(f"{op}: grad_grad_x: expected device {x.device} (the device of x), got "
                         f"{grad_grad_x.device}")
    checks.floating(op, "grad_grad_x", grad_grad_x)
    return eps
