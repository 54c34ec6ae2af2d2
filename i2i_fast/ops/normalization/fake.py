"""Fake (meta) implementations of the compiled operators, for torch.compile and FakeTensor.

They give each output's shape, dtype and strides exactly as the kernels produce them, so that
`torch.library.opcheck` passes and compiled graphs plan their buffers correctly. Imported only
once the extension library (which defines the operators) has loaded.
"""

from __future__ import annotations

import torch


def is_channels_last_dense(x: torch.Tensor) -> bool:
    """Same rule as csrc/common/normalization.h: (N, S..., C) memory order without gaps."""
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


def _stat_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _instance_stats(x: torch.Tensor):
    shape = (x.shape[0], x.shape[1])
    return x.new_empty(shape, dtype=_stat_dtype(x)), x.new_empty(shape, dtype=_stat_dtype(x))


def _layer_stats(x: torch.Tensor):
    shape = (x.shape[0],)
    return x.new_empty(shape, dtype=_stat_dtype(x)), x.new_empty(shape, dtype=_stat_dtype(x))


def _param_grad(param: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    if param is None:
        return x.new_empty((x.shape[1],))
    return param.new_empty(param.shape)


def register() -> None:
    lib = "i2i_fast::"

    @torch.library.register_fake(lib + "adain")
    def _adain(x, weight, bias, eps=1e-5, activation="none", negative_slope=0.2):
        return output_like(x)

    @torch.library.register_fake(lib + "adain_forward")
    def _adain_forward(x, weight, bias, eps, activation, negative_slope):
        return (output_like(x), *_instance_stats(x))

    @torch.library.register_fake(lib + "adain_backward")
    def _adain_backward(grad_out, x, weight, bias, mean, rstd, eps, activation, negative_slope):
        return output_like(x), _param_grad(weight, x), _param_grad(bias, x)

    @torch.library.register_fake(lib + "instance_norm")
    def _instance_norm(x, weight=None, bias=None, eps=1e-5, activation="none",
                       negative_slope=0.2):
        return output_like(x)

    @torch.library.register_fake(lib + "instance_norm_forward")
    def _instance_norm_forward(x, weight, bias, eps, activation, negative_slope):
        return (output_like(x), *_instance_stats(x))

    @torch.library.register_fake(lib + "instance_norm_backward")
    def _instance_norm_backward(grad_out, x, weight, bias, mean, rstd, eps, activation,
                                negative_slope):
        return output_like(x), _param_grad(weight, x), _param_grad(bias, x)

    @torch.library.register_fake(lib + "layer_norm")
    def _layer_norm(x, weight=None, bias=None, eps=1e-5, style="munit", activation="none",
                    negative_slope=0.2):
        return output_like(x)

    @torch.library.register_fake(lib + "layer_norm_forward")
    def _layer_norm_forward(x, weight, bias, eps, style, activation, negative_slope):
        return (output_like(x), *_layer_stats(x))

    @torch.library.register_fake(lib + "layer_norm_backward")
    def _layer_norm_backward(grad_out, x, weight, bias, mean, rstd, eps, style, activation,
                             negative_slope):
        return output_like(x), _param_grad(weight, x), _param_grad(bias, x)
