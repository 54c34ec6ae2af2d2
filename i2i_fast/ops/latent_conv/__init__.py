"""Latent injection: convolutions over a feature map with a latent code broadcast over H x W
concatenated to its channels, computed without materialising the concatenation.

``latent_conv2d`` (BicycleGAN's U-Net at every level, DRIT's generator):

    out = conv2d(pad(cat[x, z broadcast]), weight, bias, stride)
        = conv2d(pad(x), weight[:, :C_x], bias, stride) + T(z)

``latent_conv_transpose2d`` (DRIT's concat-mode generator before its transposed convolutions):

    out = conv_transpose2d(cat[x, z broadcast], weight, bias, stride, padding, output_padding)
        = conv_transpose2d(x, weight[:C_x], bias, ...) + T(z)

T needs no H x W map of z: with V = z . W_z (N x C_out x k_h x k_w), T at an output position is
the sum of V over the kernel taps that reach it from an input position, which depends on the
position only near the borders (and, for a transposed conv, on its phase modulo the stride):
a small table spread over the output (csrc/latent_conv/common.h has the plan). The convolution of
x is PyTorch's (oneDNN / cuDNN); adding T in place is one pass over the output, and the
backward's z part one pass over grad_out. Where the weight slice of latent_conv2d would be copied
at a cost larger than the concatenation (BicycleGAN's deepest levels) it convolves the
concatenation instead (plan.concatenates).

Backends: "cpu", "cuda" (the compiled operators ``torch.ops.i2i_fast.latent_conv2d`` and
``latent_conv_transpose2d``; the dispatcher runs the kernels of x's device), "triton"
(i2i_fast/ops/latent_conv/triton.py) and "reference" (the concatenation materialised). All
compute forward-mode derivatives except Triton, which refuses them by name.
"""

from __future__ import annotations

import torch

from .. import extension, triton_support
from ..backends import implement, select
from ..convolution_autocast import cast_like_conv, under_autocast
from . import checks, reference

OPS = ("latent_conv2d", "latent_conv_transpose2d")


def latent_conv2d(x: torch.Tensor, z: torch.Tensor, weight: torch.Tensor,
                  bias: torch.Tensor | None = None, stride: int = 1, padding: int = 0,
                  padding_mode: str = "zeros") -> torch.Tensor:
    """conv2d(pad(cat[x, z[:, :, None, None].expand(N, C_z, H, W)]), weight, bias, stride),
    without the concatenation.

    x (N, C_x, H, W), float16/bfloat16/float32/float64, contiguous, channels-last or any strides;
    z (N, C_z), any floating dtype (cast to x's, as the reference does); weight (C_out, C_x + C_z,
    k_h, k_w) and bias (C_out,) or None in x's dtype: the parameters of the Conv2d over the
    concatenation, unchanged. padding_mode "zeros" or "reflect" (of the concatenated map).
    Returns (N, C_out, H_out, W_out) in the layout F.conv2d gives; the z term is accumulated in
    float32 (float64 for float64). Differentiable in x, z, weight and bias.
    """
    if under_autocast(x):
        with cast_like_conv(x, z, weight, bias) as (x, z, weight, bias):
            return latent_conv2d(x, z, weight, bias, stride, padding, padding_mode)
    checks.latent_conv2d(x, z, weight, bias, stride, padding, padding_mode)
    return select("latent_conv2d", x)(x, z, weight, bias, stride, padding, padding_mode)


def latent_conv_transpose2d(x: torch.Tensor, z: torch.Tensor, weight: torch.Tensor,
                            bias: torch.Tensor | None = None, stride: int = 1, padding: int = 0,
                            output_padding: int = 0) -> torch.Tensor:
    """conv_transpose2d(cat[x, z[:, :, None, None].expand(N, C_z, H, W)], weight, bias, stride,
    padding, output_padding), without the concatenation.

    x (N, C_x, H, W), float16/bfloat16/float32/float64, any layout; z (N, C_z), any floating
    dtype (cast to x's); weight (C_x + C_z, C_out, k_h, k_w) and bias (C_out,) or None in x's
    dtype: the parameters of the ConvTranspose2d over the concatenation, unchanged;
    0 <= output_padding < stride. Returns (N, C_out, (H - 1) * stride - 2 * padding + k_h +
    output_padding, ...) in the layout F.conv_transpose2d gives; the z term is accumulated in
    float32 (float64 for float64). Differentiable in x, z, weight and bias.
    """
    if under_autocast(x):
        with cast_like_conv(x, z, weight, bias) as (x, z, weight, bias):
            return latent_conv_transpose2d(x, z, weight, bias, stride, padding, output_padding)
    checks.latent_conv_transpose2d(x, z, weight, bias, stride, padding, output_padding)
    return select("latent_conv_transpose2d", x)(x, z, weight, bias, stride, padding,
                                                output_padding)


implement("reference", "latent_conv2d", reference.latent_conv2d)
implement("reference", "latent_conv_transpose2d", reference.latent_conv_transpose2d)
if extension.state().loaded:
    from . import fake as _fake

    _fake.register()
    for _backend in ("cpu", "cuda"):  # one operator; the dispatcher runs x's device's kernels
        implement(_backend, "latent_conv2d", torch.ops.i2i_fast.latent_conv2d.default,
                  forward_ad=True)
        implement(_backend, "latent_conv_transpose2d",
                  torch.ops.i2i_fast.latent_conv_transpose2d.default, forward_ad=True)
if triton_support.state().unavailable_reason is None:
    from . import triton as _triton

    implement("triton", "latent_conv2d", _triton.latent_conv2d)
    implement("triton", "latent_conv_transpose2d", _triton.latent_conv_transpose2d)
