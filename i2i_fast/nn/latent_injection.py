"""Latent injection: a convolution over a feature map with a latent code broadcast over H x W
concatenated to its channels (BicycleGAN's U-Net at all its levels; DRIT's G_concat before four
of its convolutions, two of them transposed, and its MisINS blocks' 1x1 fusions).

``latent_conv2d(x, z, weight, bias, stride, padding, padding_mode)`` is the reference definition
(``ops.reference.latent_conv2d``) of the fused operator ``ops.latent_conv2d`` (same signature;
i2i_fast/ops/latent_conv/), which ``LatentConv2d`` calls:

    conv2d(cat[x, z broadcast to (N, C_z, H, W)], weight, bias, stride, padding)

with the padding of the concatenated map ("zeros": zeros around both parts; "reflect": both parts
reflected, so the z part stays constant). ``weight`` is the (C_out, C_x + C_z, k_h, k_w) weight of
that convolution, unchanged: an existing Conv2d's parameters serve as they are. Split it as
``W = [W_x | W_z]`` along its input channels; then

    out = conv2d(x, W_x, bias) + conv2d(z broadcast, W_z)

and the z term needs no H x W map: for every output position (i, j) it is
``sum_c z[n, c] * sum_{taps (u, v) inside the input} W_z[o, c, u, v]``. With reflect padding (or
a 1x1 kernel, or padding 0) every tap is inside, so it is a per-(sample, output channel) constant
``W_z.sum((2, 3)) @ z``; with zero padding the taps that fall on the padding drop out, so it is
that constant minus a border correction that depends on (i, j) only near the edges. The fused
operator computes exactly this (tests/test_latent_injection.py checks the decomposition), without
materialising the concatenation (N, C_x + C_z, H, W).

The transposed variant ``latent_conv_transpose2d(x, z, weight, bias, stride, padding,
output_padding)`` (the reference definition of ``ops.latent_conv_transpose2d``, which
``LatentConvTranspose2d`` calls; DRIT's G_concat) is ``conv_transpose2d(cat[x, z broadcast],
weight, bias, stride, padding, output_padding)`` with
``weight`` (C_x + C_z, C_out, k_h, k_w) = ``[W_x; W_z]``. Its z term is
``conv_transpose2d(z broadcast, W_z)``: the output position (i, j) receives the taps (u, v) with
(i + padding − u) and (j + padding − v) multiples of stride whose input position lies inside
the H x W map, so it is ``sum_c z[n, c] * sum_{those taps} W_z[c, o, u, v]``: per sample and
output channel a constant for a 1x1 stride-1 kernel (DRIT's last layer: a per-sample bias
``W_z[:, :, 0, 0].T @ z``), and for DRIT's 3x3 stride-2 (padding 1, output_padding 1) one of
four constants chosen by the parity of (i, j), less the taps that fall outside at the last row
and column.

``LatentConv2d`` and ``LatentConvTranspose2d`` are the modules every network uses (Conv2d and
ConvTranspose2d subclasses: their weight, bias, init and state-dict keys are those of the layer
over the concatenation). They call the fused ``ops.latent_conv2d`` and
``ops.latent_conv_transpose2d`` (under ``ops.use_backend("reference")``: the concatenations
above).
"""

from __future__ import annotations

import torch
from torch import nn

from .. import ops
from ..ops.latent_conv import plan
from ..ops.latent_conv.checks import PADDING_MODES
from ..ops.latent_conv.reference import (  # noqa: F401 - the references, re-exported
    latent_conv2d, latent_conv_transpose2d)


def broadcast_concat(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """cat[x, z broadcast over H x W] along the channels, z cast to x's dtype: x (N, C_x, H, W),
    z (N, C_z) → (N, C_x + C_z, H, W) (the input the latent convolutions stand for; DRIT's
    LatentConcatResBlock also adds it as its skip)."""
    if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[0] != x.shape[0]:
        raise ValueError(f"broadcast_concat: z: expected shape ({x.shape[0]}, C_z) (one code per "
                         f"sample of x), got {tuple(getattr(z, 'shape', ())) or type(z).__name__}")
    return plan.broadcast_concat(x, z)


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


class LatentConvTranspose2d(nn.ConvTranspose2d):
    """A ConvTranspose2d over cat[x, z broadcast over H x W]: forward(x (N, C_x, H, W),
    z (N, C_z)).

    Its parameters are those of ``nn.ConvTranspose2d(in_channels + latent_channels,
    out_channels, ...)`` (same shapes, init and state-dict keys).

    With latent_channels 0 it is a plain transposed convolution, forward(x) (z may be left
    out): the operator's CPU path then still computes a small input (at most 64 positions over
    the batch, e.g. a U-Net's innermost levels) as one matrix product over the batch, where
    oneDNN is several times slower (csrc/latent_conv/gemm_convolution.h); the reference backend
    is F.conv_transpose2d.
    """

    def __init__(self, in_channels: int, latent_channels: int, out_channels: int,
                 kernel_size: int, stride: int = 1, padding: int = 0, output_padding: int = 0,
                 bias: bool = True):
        super().__init__(in_channels + latent_channels, out_channels, kernel_size, stride,
                         padding, output_padding, bias=bias)
        self.latent_channels = latent_channels

    def forward(self, x: torch.Tensor,  # type: ignore[override]
                z: torch.Tensor | None = None) -> torch.Tensor:
        if z is None:
            if self.latent_channels:
                raise ValueError(f"LatentConvTranspose2d: z: expected (N, "
                                 f"{self.latent_channels}) latent codes, got None")
            z = x.new_empty((x.shape[0], 0))
        return ops.latent_conv_transpose2d(x, z, self.weight, self.bias, self.stride[0],
                                           self.padding[0], self.output_padding[0])

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, latent_channels={self.latent_channels}"
