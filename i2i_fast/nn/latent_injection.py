"""Latent injection: a convolution over a feature map with a latent code broadcast over H x W
concatenated to its channels (BicycleGAN's U-Net at all its levels, DRIT's generator).

``latent_conv2d(x, z, weight, bias, stride, padding, padding_mode)`` is the reference definition
of the future fused operator ``ops.latent_conv2d`` (same signature):

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

``LatentConv2d`` is the module every network uses (a Conv2d subclass: its weight, bias, init and
state-dict keys are those of the Conv2d over the concatenation); its forward is the one line that
will call the fused operator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PADDING_MODES = ("zeros", "reflect")


def _check(x: object, z: object, weight: object, bias: object, stride: object, padding: object,
           padding_mode: object) -> None:
    op = "latent_conv2d"
    for name, t in (("x", x), ("z", z), ("weight", weight)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise TypeError(f"{op}: {name}: expected a floating point tensor, got "
                            f"{getattr(t, 'dtype', type(t).__name__)}")
    if x.dim() != 4:
        raise ValueError(f"{op}: x: expected shape (N, C_x, H, W), got {tuple(x.shape)}")
    if z.dim() != 2 or z.shape[0] != x.shape[0]:
        raise ValueError(f"{op}: z: expected shape ({x.shape[0]}, C_z) (one code per sample of "
                         f"x), got {tuple(z.shape)}")
    expected_in = x.shape[1] + z.shape[1]
    if weight.dim() != 4 or weight.shape[1] != expected_in:
        raise ValueError(f"{op}: weight: expected shape (C_out, {expected_in}, k_h, k_w) "
                         f"(C_x {x.shape[1]} + C_z {z.shape[1]} input channels), got "
                         f"{tuple(weight.shape)}")
    if bias is not None and (not isinstance(bias, torch.Tensor)
                             or tuple(bias.shape) != (weight.shape[0],)):
        raise ValueError(f"{op}: bias: expected None or shape ({weight.shape[0]},), got "
                         f"{tuple(bias.shape) if isinstance(bias, torch.Tensor) else bias!r}")
    for name, value, minimum in (("stride", stride, 1), ("padding", padding, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{op}: {name}: expected an int >= {minimum}, got {value!r}")
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"{op}: padding_mode: expected one of {', '.join(PADDING_MODES)}, got "
                         f"{padding_mode!r}")
    if padding_mode == "reflect" and (padding >= x.shape[2] or padding >= x.shape[3]):
        raise ValueError(f"{op}: padding: reflect padding needs padding < H and < W, got "
                         f"padding {padding} for x of shape {tuple(x.shape)}")


def latent_conv2d(x: torch.Tensor, z: torch.Tensor, weight: torch.Tensor,
                  bias: torch.Tensor | None = None, stride: int = 1, padding: int = 0,
                  padding_mode: str = "zeros") -> torch.Tensor:
    """conv2d(cat[x, z broadcast over H x W], weight, bias, stride, padding), the concatenation
    materialised: the reference definition of ops.latent_conv2d (see the module docstring).

    x (N, C_x, H, W); z (N, C_z), cast to x's dtype; weight (C_out, C_x + C_z, k_h, k_w); bias
    (C_out,) or None; padding_mode "zeros" or "reflect" (of the concatenated map). Returns
    (N, C_out, H_out, W_out) as F.conv2d.
    """
    _check(x, z, weight, bias, stride, padding, padding_mode)
    n, _, h, w = x.shape
    z_map = z.to(x.dtype)[:, :, None, None].expand(n, z.shape[1], h, w)
    xz = torch.cat([x, z_map], dim=1)
    if padding_mode == "reflect" and padding > 0:
        xz = F.pad(xz, (padding, padding, padding, padding), mode="reflect")
        padding = 0
    return F.conv2d(xz, weight, bias, stride, padding)


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
        return latent_conv2d(x, z, self.weight, self.bias, self.stride[0], self.padding[0],
                             self.padding_mode)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, latent_channels={self.latent_channels}"
