"""Latent injection: a convolution over a feature map with a latent code broadcast over H x W
concatenated to its channels (BicycleGAN's U-Net at all its levels, DRIT's generator).

``LatentConv2d`` is the module every network uses (a Conv2d subclass: its weight, bias, init and
state-dict keys are those of the Conv2d over the concatenation); its forward calls the fused
operator ``i2i_fast.ops.latent_conv2d(x, z, weight, bias, stride, padding, padding_mode)``, which
computes ``conv2d(pad(cat[x, z broadcast to (N, C_z, H, W)]), weight, bias, stride)`` without
materialising the concatenation (i2i_fast/ops/latent_conv/). Under
``ops.use_backend("reference")`` it is the plain concatenation + convolution,
``latent_conv2d`` below (= ``ops.reference.latent_conv2d``).
"""

from __future__ import annotations

import torch
from torch import nn

from .. import ops
from ..ops.latent_conv.checks import PADDING_MODES
from ..ops.latent_conv.reference import latent_conv2d

__all__ = ["PADDING_MODES", "LatentConv2d", "latent_conv2d"]


class LatentConv2d(nn.Conv2d):
    """A Conv2d over cat[x, z broadcast over H x W]: forward(x (N, C_x, H, W), z (N, C_z)).

    Its parameters are those of ``nn.Conv2d(in_channels + latent_channels, out_channels, ...)``
    (same shapes, init and state-dict keys). padding_mode: "zeros" or "reflect".
    """

    def __init__(self, in_channels: int, latent_channels: int, out_channels: int,
                 kernel_size: int, stride: int = 1, padding: int = 0,
                 padding_mode: str = "zeros", bias: bool = True):
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"LatentConv2d: padding_mode: expected one of "
                             f"{', '.join(PADDING_MODES)}, got {padding_mode!r}")
        super().__init__(in_channels + latent_channels, out_channels, kernel_size, stride,
                         padding, bias=bias, padding_mode=padding_mode)
        self.latent_channels = latent_channels

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return ops.latent_conv2d(x, z, self.weight, self.bias, self.stride[0], self.padding[0],
                             self.padding_mode)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, latent_channels={self.latent_channels}"
