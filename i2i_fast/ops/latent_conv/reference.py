"""The reference definitions of latent_conv2d and latent_conv_transpose2d: the concatenation
materialised, then the convolution (the specification every backend is tested against)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import checks
from .plan import broadcast_concat


def _input(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """cat[x, z broadcast]; x itself where z has no channels and needs no gradient (a plain
    convolution: no copy of x)."""
    if z.shape[1] == 0 and not z.requires_grad:
        return x
    return broadcast_concat(x, z)


def latent_conv2d(x: torch.Tensor, z: torch.Tensor, weight: torch.Tensor,
                  bias: torch.Tensor | None = None, stride: int = 1, padding: int = 0,
                  padding_mode: str = "zeros") -> torch.Tensor:
    """conv2d(pad(cat[x, z broadcast over H x W]), weight, bias, stride).

    x (N, C_x, H, W); z (N, C_z), cast to x's dtype; weight (C_out, C_x + C_z, k_h, k_w), x's
    dtype; bias (C_out,) or None; padding_mode "zeros" or "reflect" (of the concatenated map).
    Returns (N, C_out, H_out, W_out) as F.conv2d.
    """
    checks.latent_conv2d(x, z, weight, bias, stride, padding, padding_mode)
    xz = _input(x, z)
    if padding_mode == "reflect" and padding > 0:
        xz = F.pad(xz, (padding, padding, padding, padding), mode="reflect")
        padding = 0
    return F.conv2d(xz, weight, bias, stride, padding)


def latent_conv_transpose2d(x: torch.Tensor, z: torch.Tensor, weight: torch.Tensor,
                            bias: torch.Tensor | None = None, stride: int = 1, padding: int = 0,
                            output_padding: int = 0) -> torch.Tensor:
    """conv_transpose2d(cat[x, z broadcast over H x W], weight, bias, stride, padding,
    output_padding).

    x (N, C_x, H, W); z (N, C_z), cast to x's dtype; weight (C_x + C_z, C_out, k_h, k_w), x's
    dtype; bias (C_out,) or None; 0 <= output_padding < stride. Returns (N, C_out, H_out, W_out)
    as F.conv_transpose2d.
    """
    checks.latent_conv_transpose2d(x, z, weight, bias, stride, padding, output_padding)
    xz = _input(x, z)
    return F.conv_transpose2d(xz, weight, bias, stride, padding, output_padding)
