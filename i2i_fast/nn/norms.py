"""Normalization layers on the fused operators, each with an optional fused activation.

activation: None, "relu" or "leaky_relu" (slope `negative_slope`), applied in the same kernel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import ops
from ..ops.normalization.reference import activate


class InstanceNorm(nn.Module):
    """torch.nn.InstanceNorm2d (affine=False by default, no running stats) + activation."""

    def __init__(self, num_features: int, affine: bool = False, eps: float = 1e-5,
                 activation: str | None = None, negative_slope: float = 0.2):
        super().__init__()
        self.num_features, self.eps = num_features, eps
        self.activation, self.negative_slope = activation, negative_slope
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ops.instance_norm(x, self.weight, self.bias, self.eps, self.activation,
                                 self.negative_slope)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, affine={self.weight is not None}, eps={self.eps}, "
                f"activation={self.activation}")


class MunitLayerNorm(nn.Module):
    """MUNIT's LayerNorm: per sample over (C, H, W), unbiased std, (x - mean) / (std + eps),
    per-channel gamma ~ U(0, 1) and beta = 0 at init."""

    def __init__(self, num_features: int, eps: float = 1e-5, activation: str | None = None,
                 negative_slope: float = 0.2):
        super().__init__()
        self.num_features, self.eps = num_features, eps
        self.activation, self.negative_slope = activation, negative_slope
        self.gamma = nn.Parameter(torch.rand(num_features))
        self.beta = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ops.layer_norm(x, self.gamma, self.beta, self.eps, "munit", self.activation,
                              self.negative_slope)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, activation={self.activation}"


class ChannelAffineLayerNorm(nn.Module):
    """F.layer_norm over (C, H, W), then a per-channel affine (weight 1, bias 0 at init): DRIT's
    LayerNorm. Not torch.nn.LayerNorm, whose affine has one weight per normalized element."""

    def __init__(self, num_features: int, eps: float = 1e-5, activation: str | None = None,
                 negative_slope: float = 0.2):
        super().__init__()
        self.num_features, self.eps = num_features, eps
        self.activation, self.negative_slope = activation, negative_slope
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ops.layer_norm(x, self.weight, self.bias, self.eps, "standard", self.activation,
                              self.negative_slope)


class AdaptiveInstanceNorm(nn.Module):
    """AdaIN without parameters of its own: the modulation comes with each call.

    forward(x, weight, bias) with weight, bias (N, C): MUNIT passes the MLP's slices,
    StarGAN v2 passes (1 + gamma, beta).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, activation: str | None = None,
                 negative_slope: float = 0.2):
        super().__init__()
        self.num_features, self.eps = num_features, eps
        self.activation, self.negative_slope = activation, negative_slope

    def forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return ops.adain(x, weight, bias, self.eps, self.activation, self.negative_slope)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, activation={self.activation}"


class StyleAdaIN(nn.Module):
    """AdaIN whose modulation comes from a style code through its own Linear (StarGAN v2's AdaIN).

    ``h = fc(s)`` (N, 2C); ``gamma, beta = h.chunk(2)``; ``out = act((1 + gamma) * IN(x) + beta)``
    with IN = instance norm without affine (biased variance, eps inside the square root). One
    fused operator computes the norm, the modulation and the activation.

    forward(x (N, C, *spatial), s (N, style_dim)) → like x.
    """

    def __init__(self, style_dim: int, num_features: int, eps: float = 1e-5,
                 activation: str | None = None, negative_slope: float = 0.2):
        super().__init__()
        self.num_features, self.eps = num_features, eps
        self.activation, self.negative_slope = activation, negative_slope
        self.fc = nn.Linear(style_dim, 2 * num_features)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        h = self.fc(s)
        low_precision = (torch.float16, torch.bfloat16)
        if h.dtype != x.dtype and not (h.dtype == torch.float32 and x.dtype in low_precision):
            h = h.to(x.dtype)  # e.g. a float32 x meeting a bfloat16 style under autocast
        gamma, beta = h.chunk(2, dim=1)
        return ops.adain(x, 1 + gamma, beta, self.eps, self.activation, self.negative_slope)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, activation={self.activation}"


class FilterResponseNorm(nn.Module):
    """FRN + TLU (``ops.filter_response_norm``; TUNIT's discriminator, models/blocks.py, class
    FRN) with learned per-channel weight (gamma, init 1), bias (beta, init 0) and threshold (tau,
    init 0).

    The parameters keep the official names and shapes, (1, C, 1, 1), so TUNIT's discriminator
    state dicts load as they are; they reach the operator as (C,) views.
    """

    def __init__(self, num_features: int, eps: float = 1e-6):
        super().__init__()
        self.num_features, self.eps = num_features, eps
        self.tau = nn.Parameter(torch.zeros(1, num_features, 1, 1))
        self.gamma = nn.Parameter(torch.ones(1, num_features, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, num_features, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.num_features
        return ops.filter_response_norm(x, self.gamma.view(c), self.beta.view(c),
                                        self.tau.view(c), self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


class BatchNorm(nn.BatchNorm2d):
    """torch.nn.BatchNorm2d + activation (TUNIT's guiding network: BatchNorm2d then ReLU).

    The same module as nn.BatchNorm2d: arguments, parameters and buffers (weight, bias,
    running_mean, running_var, num_batches_tracked: official checkpoints load by these keys), and
    ``self.momentum`` read at each call (None: the cumulative average, as nn.BatchNorm2d).

    Training mode (or no running statistics): the fused ``ops.batch_norm`` (batch statistics,
    affine and activation in one kernel), then, when tracking, the running statistics updated
    under no_grad exactly as aten updates them: ``running_mean = m * mean + (1 - m) *
    running_mean``, ``running_var = m * var * n / (n - 1) + (1 - m) * running_var`` (n = N*H*W),
    ``num_batches_tracked += 1``. Eval mode with running statistics: aten's F.batch_norm with
    them, then the activation (one elementwise pass; nothing to fuse the statistics into).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True,
                 activation: str | None = None, negative_slope: float = 0.2,
                 device=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.activation, self.negative_slope = activation, negative_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        if not self.training and self.running_mean is not None:
            y = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                             False, 0.0, self.eps)
            return activate(y, self.activation, self.negative_slope)
        y, mean, var = ops.batch_norm(x, self.weight, self.bias, self.eps, self.activation,
                                      self.negative_slope)
        if self.training and self.track_running_stats:
            self._update_running_stats(mean, var, x.numel() // x.shape[1])
        return y

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, n: int) -> None:
        self.num_batches_tracked.add_(1)
        if self.momentum is None:
            m = 1.0 / float(self.num_batches_tracked)
        else:
            m = self.momentum
        running_mean, running_var = self.running_mean, self.running_var
        running_mean.copy_(m * mean + (1 - m) * running_mean)
        running_var.copy_(m * (var * n / (n - 1)) + (1 - m) * running_var)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, activation={self.activation}"
