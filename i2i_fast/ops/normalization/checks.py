"""The argument checks of the normalization operators: one function per operator.

The one definition that every Python entry point runs: the public functions (``__init__``), the
Triton operators (``triton.py``) and the fake implementations (``fake.py``, what torch.compile
and FakeTensor run). ``csrc/normalization/checks.h`` is its C++ mirror for the compiled kernels:
the same checks in the same order with the same words, which tests/test_operator_checks.py
compares on every entry point.

Each forward check returns the arguments as the kernels take them: (activation, eps,
negative_slope), activation None given as "none".
"""

from __future__ import annotations

import torch

from .. import checks

STYLES = ("munit", "standard")


def adain(x, weight, bias, eps, activation, negative_slope, op: str = "adain"):
    """x (N, C, *spatial); weight and bias (N, C), one modulation per sample."""
    x = checks.norm_input(op, x)
    nc = (x.shape[0], x.shape[1])
    checks.norm_param(op, "weight", weight, nc, x)
    checks.norm_param(op, "bias", bias, nc, x)
    return (checks.activation(op, activation), checks.eps(op, eps),
            checks.negative_slope(op, negative_slope))


def instance_norm(x, weight, bias, eps, activation, negative_slope,
                  op: str = "instance_norm"):
    """x (N, C, *spatial); weight and bias (C,) or None."""
    x = checks.norm_input(op, x)
    _per_channel_params(op, x, weight, bias)
    return (checks.activation(op, activation), checks.eps(op, eps),
            checks.negative_slope(op, negative_slope))


def layer_norm(x, weight, bias, eps, style, activation, negative_slope,
               op: str = "layer_norm"):
    """instance_norm's arguments and style "munit" or "standard"."""
    x = checks.norm_input(op, x)
    _per_channel_params(op, x, weight, bias)
    if style not in STYLES:
        raise ValueError(f"{op}: style: expected 'munit' or 'standard', got {style!r}")
    return (checks.activation(op, activation), checks.eps(op, eps),
            checks.negative_slope(op, negative_slope))


def batch_norm(x, weight, bias, eps, activation, negative_slope, op: str = "batch_norm"):
    """x (N, C, H, W) with more than one value per channel; weight and bias (C,) or None."""
    x = checks.tensor(op, "x", x)
    if x.dim() != 4:
        raise ValueError(f"{op}: x: expected shape (N, C, H, W), got {x.dim()} dims with shape "
                         f"{tuple(x.shape)}")
    checks.floating(op, "x", x)
    checks.non_empty(op, "x", x)
    if x.shape[0] * x.shape[2] * x.shape[3] == 1:  # F.batch_norm's condition in training mode
        raise ValueError(f"{op}: x: expected more than 1 value per channel (N * H * W > 1, as "
                         f"F.batch_norm in training mode), got shape {tuple(x.shape)}")
    _per_channel_params(op, x, weight, bias)
    return (checks.activation(op, activation), checks.eps(op, eps),
            checks.negative_slope(op, negative_slope))


def adain_backward(grad_out, x, weight, bias, mean, rstd, eps, activation, negative_slope):
    op = "adain_backward"
    adain(x, weight, bias, eps, activation, negative_slope, op)
    backward_inputs(op, grad_out, x, mean, rstd, _instance_stats(x))


def instance_norm_backward(grad_out, x, weight, bias, mean, rstd, eps, activation,
                           negative_slope):
    op = "instance_norm_backward"
    instance_norm(x, weight, bias, eps, activation, negative_slope, op)
    backward_inputs(op, grad_out, x, mean, rstd, _instance_stats(x))


def layer_norm_backward(grad_out, x, weight, bias, mean, rstd, eps, style, activation,
                        negative_slope):
    op = "layer_norm_backward"
    layer_norm(x, weight, bias, eps, style, activation, negative_slope, op)
    backward_inputs(op, grad_out, x, mean, rstd, (x.shape[0],))


def batch_norm_backward(grad_out, x, weight, bias, mean, var, eps, activation, negative_slope):
    """The batch statistics are (C,): the mean and the biased variance (not rstd)."""
    op = "batch_norm_backward"
    batch_norm(x, weight, bias, eps, activation, negative_slope, op)
    backward_inputs(op, grad_out, x, mean, var, (x.shape[1],), second="var")


def _instance_stats(x: torch.Tensor) -> tuple[int, int]:
    return (x.shape[0], x.shape[1])


def _per_channel_params(op: str, x: torch.Tensor, weight, bias) -> None:
    c = (x.shape[1],)
    if weight is not None:
        checks.norm_param(op, "weight", weight, c, x)
    if bias is not None:
        checks.norm_param(op, "bias", bias, c, x)


def backward_inputs(op: str, grad_out, x: torch.Tensor, mean, rstd, stat_shape: tuple,
                    second: str = "rstd") -> None:
    """What a backward operator takes besides its forward operator's arguments: grad_out like x,
    and the statistics the forward operator returned (of stat_shape: (N, C) for instance
    statistics, (N,) for layer statistics, (C,) for batch statistics; the second named `second`),
    all floating and on x's device. The kernels index them by x's shape."""
    if grad_out.shape != x.shape:
        raise ValueError(f"{op}: grad_out: expected shape {tuple(x.shape)} (the shape of x), got "
                         f"{tuple(grad_out.shape)}")
    for name, t in (("grad_out", grad_out), ("mean", mean), (second, rstd)):
        if t.device != x.device:
            raise ValueError(f"{op}: {name}: expected device {x.device} (the device of x), got "
                             f"{t.device}")
        checks.floating(op, name, t)
    for name, t in (("mean", mean), (second, rstd)):
        if t.shape != stat_shape:
            raise ValueError(f"{op}: {name}: expected shape {tuple(stat_shape)} (what the forward "
                             f"operator returned), got {tuple(t.shape)}")
