"""The normalization operators: AdaIN, InstanceNorm, LayerNorm (MUNIT and standard styles) and
BatchNorm in training mode.

Each checks its arguments (``checks``: the one definition every backend and the fake
implementations run), picks a backend (see ``backends``) and runs it. Every backend computes
the function defined in ``reference`` and is differentiable in x, weight and bias. Forward-mode
derivatives (torch.func.jvp, torch.autograd.forward_ad) come from the reference backend only: the
fused backends refuse inputs with tangents with an error naming the operator (see ``backends``).

Shapes: x is (N, C, L), (N, C, H, W) or (N, C, D, H, W), contiguous, channels-last or any other
strides (the output keeps x's memory format: contiguous or channels-last; other strides give a
contiguous output). dtypes: float16, bfloat16, float32, float64; statistics accumulate in float32
(float64 for float64). weight/bias have x's dtype, or float32 when x is float16/bfloat16 (autocast).
"""

from __future__ import annotations

import torch

from .. import extension, triton_support
from ..backends import implement, select
from . import checks, reference

OPS = ("adain", "instance_norm", "layer_norm", "batch_norm")


def adain(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    eps: float = 1e-5,
    activation: str | None = None,
    negative_slope: float = 0.2,
) -> torch.Tensor:
    """Adaptive instance normalization with an optional fused activation.

    ``act((x - mean_nc) / sqrt(var_nc + eps) * weight[n, c] + bias[n, c])`` with per-(n, c) mean
    and biased variance over the spatial dims.

    Args:
        x: (N, C, *spatial).
        weight, bias: (N, C), one modulation per sample (MUNIT: from the MLP; StarGAN v2: pass
            ``1 + gamma`` and ``beta``).
        eps: added to the variance inside the square root.
        activation: None, "relu" or "leaky_relu" (with ``negative_slope``).
    Returns:
        A tensor like x.
    """
    act, eps, negative_slope = checks.adain(x, weight, bias, eps, activation, negative_slope)
    return select("adain", x)(x, weight, bias, eps, act, negative_slope)


def instance_norm(
    x: torch.Tensor,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
    activation: str | None = None,
    negative_slope: float = 0.2,
) -> torch.Tensor:
    """Instance normalization with optional per-channel affine and fused activation.

    ``act((x - mean_nc) / sqrt(var_nc + eps) * weight[c] + bias[c])``; weight/bias (C,) or None
    (``torch.nn.InstanceNorm2d(affine=False)``).
    """
    act, eps, negative_slope = checks.instance_norm(x, weight, bias, eps, activation,
                                                    negative_slope)
    return select("instance_norm", x)(x, weight, bias, eps, act, negative_slope)


def layer_norm(
    x: torch.Tensor,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
    style: str = "munit",
    activation: str | None = None,
    negative_slope: float = 0.2,
) -> torch.Tensor:
    """Layer normalization over (C, *spatial) of each sample, per-channel affine, fused activation.

    style="munit": ``(x - mean_n) / (std_n + eps)`` with the *unbiased* std, as MUNIT's
    ``networks.LayerNorm`` (differs from F.layer_norm by ~1e-3).
    style="standard": ``(x - mean_n) / sqrt(var_n + eps)`` with the biased var (F.layer_norm; DRIT).
    weight/bias: (C,) or None.
    """
    act, eps, negative_slope = checks.layer_norm(x, weight, bias, eps, style, activation,
                                                 negative_slope)
    return select("layer_norm", x)(x, weight, bias, eps, style, act, negative_slope)


def batch_norm(
    x: torch.Tensor,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
    activation: str | None = None,
    negative_slope: float = 0.2,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch normalization in training mode with an optional fused activation.

    ``act((x - mean_c) / sqrt(var_c + eps) * weight[c] + bias[c])`` with the per-channel mean and
    biased variance over (N, H, W): F.batch_norm(training=True) then the activation, as
    nn.BatchNorm2d + nn.ReLU in training mode.

    Args:
        x: (N, C, H, W) with N * H * W > 1.
        weight, bias: (C,) or None.
        eps: added to the variance inside the square root.
        activation: None, "relu" or "leaky_relu" (with ``negative_slope``).
    Returns:
        (y, mean, var): y like x; the batch mean and biased variance per channel, (C,), float32
        (float64 for a float64 x), not differentiable. The running statistics are the caller's
        (``i2i_fast.nn.BatchNorm`` updates them as nn.BatchNorm2d does).
    """
    act, eps, negative_slope = checks.batch_norm(x, weight, bias, eps, activation, negative_slope)
    return select("batch_norm", x)(x, weight, bias, eps, act, negative_slope)


# The operators with a CUDA kernel (normalization_cuda.cu): batch_norm has none yet, and runs
# on the triton backend (or the reference) on CUDA tensors.
CUDA_OPS = ("adain", "instance_norm", "layer_norm")

for _op in OPS:
    implement("reference", _op, getattr(reference, _op))
if extension.state().loaded:
    from . import fake as _fake

    _fake.register()
    # The same operators on both devices: the dispatcher runs the CPU or the CUDA kernel by the
    # device of x (the cuda backend is available only when the library has CUDA kernels).
    for _op in OPS:
        implement("cpu", _op, getattr(torch.ops.i2i_fast, _op).default)
    for _op in CUDA_OPS:
        implement("cuda", _op, getattr(torch.ops.i2i_fast, _op).default)
if triton_support.state().unavailable_reason is None:
    from . import triton as _triton

    for _op in OPS:
        implement("triton", _op, getattr(_triton, _op))
