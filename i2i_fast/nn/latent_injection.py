"""Injecting a latent code into feature maps: a convolution of the features concatenated with the
code broadcast over H x W (DRIT's G_concat and MisINS blocks, BicycleGAN's add_all U-Net).

``LatentConcatConv`` is the one place where this happens. Its forward is the plain-PyTorch
reference: ``conv(pad(cat[x, z broadcast over H x W]))``. It is the specification of the fused
latent-convolution operator (which avoids materialising the broadcast and the concatenation: the
code's channels contribute a per-sample term ``W_z · z`` summed over the kernel taps, exact
everywhere for reflection padding, border-aware for zero padding), and that operator replaces the
body of ``forward`` when it lands, nothing else.
"""

from __future__ import annotations

import torch
from torch import nn

from .conv import make_padding


def broadcast_concat(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """cat[x, z broadcast over H x W] along the channels: x (N, C, H, W), z (N, D) →
    (N, C + D, H, W)."""
    if z.dim() != 2 or z.shape[0] != x.shape[0]:
        raise ValueError(f"broadcast_concat: z: expected shape ({x.shape[0]}, D), got "
                         f"{tuple(z.shape)}")
    z_map = z.reshape(*z.shape, 1, 1).expand(-1, -1, x.shape[2], x.shape[3])
    return torch.cat([x, z_map.to(x.dtype)], dim=1)


class LatentConcatConv(nn.Module):
    """conv(pad(cat[x, z broadcast over H x W])): a Conv2d (or, with ``transposed``, a
    ConvTranspose2d with ``output_padding``) of in_channels + latent_dim input channels, with
    bias. The weight's input channels are ordered [x's, z's], as the official codes concatenate.

    forward(x (N, in_channels, H, W), z (N, latent_dim)) → the conv's output.
    """

    def __init__(self, in_channels: int, latent_dim: int, out_channels: int, kernel_size: int,
                 stride: int = 1, padding: int = 0, pad_type: str = "reflect",
                 transposed: bool = False, output_padding: int = 0):
        super().__init__()
        self.in_channels, self.latent_dim = in_channels, latent_dim
        self.transposed = transposed
        channels = in_channels + latent_dim
        if transposed:  # the padding of a transposed conv crops its output: no padding module
            self.pad = nn.Identity()
            self.conv = nn.ConvTranspose2d(channels, out_channels, kernel_size, stride, padding,
                                           output_padding, bias=True)
        else:
            if output_padding:
                raise ValueError(f"LatentConcatConv: output_padding: expected 0 for a conv "
                                 f"(transposed=False), got {output_padding}")
            self.pad = make_padding(pad_type, padding)
            self.conv = nn.Conv2d(channels, out_channels, kernel_size, stride, bias=True)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.in_channels or z.shape[-1] != self.latent_dim:
            raise ValueError(f"LatentConcatConv: expected x with {self.in_channels} channels and "
                             f"z (N, {self.latent_dim}), got x {tuple(x.shape)}, z "
                             f"{tuple(z.shape)}")
        return self.conv(self.pad(broadcast_concat(x, z)))

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, latent_dim={self.latent_dim}"
