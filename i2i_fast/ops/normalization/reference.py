"""Reference definitions: the specification every fused backend is tested against.

Plain PyTorch, written to read like the formulas of the official implementations (METHODS.md),
quirks included (MUNIT's LayerNorm divides by the unbiased std plus eps). Differentiable by
autograd. batch_norm is the official code itself: F.batch_norm in training mode, then the
activation (its eager speed is aten's). float16/bfloat16 inputs are computed in float32 and the result cast back, matching the
fused kernels' float32 accumulation; float64 stays float64.

These functions do not validate their arguments: ``i2i_fast.ops`` does that before any backend
runs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def activate(y: torch.Tensor, activation: str | None, negative_slope: float) -> torch.Tensor:
    if activation is None or activation == "none":
        return y
    if activation == "relu":
        return torch.relu(y)
    if activation == "leaky_relu":
        return F.leaky_relu(y, negative_slope)
    raise ValueError(f"activation: expected None, 'relu' or 'leaky_relu', got {activation!r}")


def _spatial_dims(x: torch.Tensor) -> tuple[int, ...]:
    return tuple(range(2, x.dim()))


def _per_sample(p: torch.Tensor, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(N, C) → broadcastable against x."""
    return p.to(dtype).reshape(p.shape + (1,) * (x.dim() - 2))


def _per_channel(p: torch.Tensor, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(C,) → broadcastable against x."""
    return p.to(dtype).reshape((1, -1) + (1,) * (x.dim() - 2))


def _instance_normalized(xf: torch.Tensor, eps: float) -> torch.Tensor:
    dims = _spatial_dims(xf)
    mean = xf.mean(dims, keepdim=True)
    var = xf.var(dims, unbiased=False, keepdim=True)
    return (xf - mean) / torch.sqrt(var + eps)


def _modulated(y: torch.Tensor, x: torch.Tensor, scale: torch.Tensor | None,
               shift: torch.Tensor | None, activation: str | None, negative_slope: float
               ) -> torch.Tensor:
    """act(y * scale + shift), cast to x's dtype; a None scale or shift is left out."""
    if scale is not None:
        y = y * scale
    if shift is not None:
        y = y + shift
    return activate(y, activation, negative_slope).to(x.dtype)


def _channel_affine(y: torch.Tensor, x: torch.Tensor, weight: torch.Tensor | None,
                    bias: torch.Tensor | None, activation: str | None, negative_slope: float
                    ) -> torch.Tensor:
    """The per-channel (C,) affine (either may be None) and the activation of normalized y."""
    per_channel = [None if p is None else _per_channel(p, x, y.dtype) for p in (weight, bias)]
    return _modulated(y, x, *per_channel, activation, negative_slope)


def adain(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    eps: float = 1e-5,
    activation: str | None = None,
    negative_slope: float = 0.2,
) -> torch.Tensor:
    """AdaIN: per-(n, c) mean and biased variance, eps inside the sqrt, per-sample (N, C) affine."""
    dtype = compute_dtype(x)
    y = _instance_normalized(x.to(dtype), eps)
    return _modulated(y, x, _per_sample(weight, x, dtype), _per_sample(bias, x, dtype),
                      activation, negative_slope)


def instance_norm(
    x: torch.Tensor,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
    activation: str | None = None,
    negative_slope: float = 0.2,
) -> torch.Tensor:
    """InstanceNorm: per-(n, c) mean and biased variance, optional per-channel (C,) affine."""
    y = _instance_normalized(x.to(compute_dtype(x)), eps)
    return _channel_affine(y, x, weight, bias, activation, negative_slope)


def layer_norm(
    x: torch.Tensor,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
    style: str = "munit",
    activation: str | None = None,
    negative_slope: float = 0.2,
) -> torch.Tensor:
    """LayerNorm over (C, spatial) per sample, optional per-channel (C,) affine.

    style="munit": (x - mean) / (std + eps) with the unbiased std (MUNIT's networks.LayerNorm).
    style="standard": (x - mean) / sqrt(var + eps) with the biased var (F.layer_norm, DRIT).
    """
    dtype = compute_dtype(x)
    xf = x.to(dtype)
    n = x.shape[0]
    flat = xf.reshape(n, -1)
    stat_shape = (n,) + (1,) * (x.dim() - 1)
    mean = flat.mean(1).reshape(stat_shape)
    if style == "munit":
        y = (xf - mean) / (flat.std(1).reshape(stat_shape) + eps)
    elif style == "standard":
        y = (xf - mean) / torch.sqrt(flat.var(1, unbiased=False).reshape(stat_shape) + eps)
    else:
        raise ValueError(f"style: expected 'munit' or 'standard', got {style!r}")
    return _channel_affine(y, x, weight, bias, activation, negative_slope)


def batch_norm(x: torch.Tensor, weight: torch.Tensor | None = None,
               bias: torch.Tensor | None = None, eps: float = 1e-5,
               activation: str | None = None, negative_slope: float = 0.2
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """BatchNorm in training mode (nn.BatchNorm2d + nn.ReLU as TUNIT's guiding network runs them):
    F.batch_norm(training=True), per-channel mean and biased variance over (N, H, W), then the
    activation. Returns (y, mean, var): the batch mean and biased variance per channel (C,), in
    float32 (float64 for a float64 x), not differentiable (what the running statistics take).

    One aten call, as the official module makes it: F.batch_norm with running statistics of
    zeros and momentum 1 leaves the batch mean and the unbiased variance in them (aten's own
    statistics, no second pass); the biased variance is the unbiased one times (n - 1) / n.
    A float16/bfloat16 x is computed in float32 (the family's rule; float32 and float64 run as
    they are).
    """
    dtype = compute_dtype(x)
    c = x.shape[1]
    mean = x.new_zeros(c, dtype=dtype)
    unbiased_var = x.new_zeros(c, dtype=dtype)
    params = [None if p is None else p.to(dtype) for p in (weight, bias)]
    y = F.batch_norm(x.to(dtype), mean, unbiased_var, *params, training=True, momentum=1.0,
                     eps=eps)
    n = x.numel() // c
    return activate(y, activation, negative_slope).to(x.dtype), mean, unbiased_var * ((n - 1) / n)
