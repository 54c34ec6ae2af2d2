"""U-Net generator with a latent code injected at every level (BicycleGAN's G_Unet_add_all).

Each level concatenates z, broadcast over its input's H x W, to its input before its 4x4
stride-2 down convolution (``LatentConv2d``); the up path is a 4x4 stride-2 transposed
convolution (``LatentConvTranspose2d`` without latent channels: the same parameters and keys as
``nn.ConvTranspose2d``); every level but the outermost returns cat[up path, its input] (the
skip carries the level's input *without* z and before any activation).

The official nonlinearities sit at the start of each path: LeakyReLU(0.2) on cat[x, z] before a
down conv (every level but the outermost), ReLU on cat[up, skip] before an up conv. Both act
element-wise, so they are applied to x and z separately (LeakyReLU(z) is an (N, nz) vector) and
the ReLU of each up path's output runs inside its instance norm (one fused operator); the skip is
activated on its own. The outputs are the official ones exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .latent_injection import LatentConv2d, LatentConvTranspose2d
from .norms import InstanceNorm

MIN_LEVELS = 6  # the innermost level and the level above it are always at 8 * ngf


class LatentUNetLevel(nn.Module):
    """One level: down (LReLU → LatentConv2d 4x4 s2 p1 → IN), the inner levels, up (ReLU →
    ConvTranspose2d 4x4 s2 p1 → IN [→ Dropout 0.5]).

    The outermost level has no LReLU and no norms and ends in tanh; the innermost one has no
    down norm (its output is 1x1 at the official size) and no inner levels. forward(x, z) returns
    the image (outermost) or ReLU(cat[up, x]), what the level above's up conv takes.
    """

    def __init__(self, in_channels: int, out_channels: int, inner_channels: int,
                 latent_channels: int, inner: LatentUNetLevel | None = None,
                 outermost: bool = False, dropout: bool = False):
        super().__init__()
        self.outermost, self.innermost = outermost, inner is None
        self.down = LatentConv2d(in_channels, latent_channels, inner_channels, 4, 2, 1)
        self.down_norm = (InstanceNorm(inner_channels) if not (outermost or self.innermost)
                          else None)
        self.inner = inner
        up_in = inner_channels if self.innermost else 2 * inner_channels
        # No latent channels: a plain transposed conv, on the operator for its small-input path.
        self.up = LatentConvTranspose2d(up_in, 0, out_channels, 4, 2, 1)
        # The ReLU of the level above (on cat[up, skip]) runs inside this norm.
        self.up_norm = None if outermost else InstanceNorm(out_channels, activation="relu")
        self.dropout = nn.Dropout(0.5) if dropout else None

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            h = self.down(x, z)
        else:
            h = self.down(F.leaky_relu(x, 0.2), F.leaky_relu(z, 0.2))
        if self.down_norm is not None:
            h = self.down_norm(h)
        h = F.relu(h) if self.inner is None else self.inner(h, z)
        h = self.up(h)
        if self.outermost:
            return torch.tanh(h)
        h = self.up_norm(h)
        if self.dropout is not None:
            h = self.dropout(h)
        return torch.cat([h, F.relu(x)], dim=1)


class LatentUNetGenerator(nn.Module):
    """BicycleGAN's G_Unet_add_all: ``num_downs`` levels, each halving the size, z at all of them.

    Widths from the innermost level out: 8ngf (innermost), num_downs - 5 levels at 8ngf (with
    dropout when ``dropout``), then 4ngf, 2ngf, ngf and the outermost (in_channels → ngf down,
    2ngf → out_channels up). An input of side 2**num_downs reaches 1x1 at the innermost level.

    forward(x (N, in_channels, H, W), z (N, latent_channels)) → (N, out_channels, H, W) in
    [-1, 1]; H and W divisible by 2**num_downs.
    """

    def __init__(self, in_channels: int, out_channels: int, latent_channels: int,
                 num_downs: int, ngf: int = 64, dropout: bool = False):
        super().__init__()
        if isinstance(num_downs, bool) or not isinstance(num_downs, int) \
                or num_downs < MIN_LEVELS:
            raise ValueError(f"LatentUNetGenerator: num_downs: expected an int >= {MIN_LEVELS}, "
                             f"got {num_downs!r}")
        self.num_downs, self.latent_channels = num_downs, latent_channels
        wide = 8 * ngf
        level = LatentUNetLevel(wide, wide, wide, latent_channels)
        for _ in range(num_downs - 5):
            level = LatentUNetLevel(wide, wide, wide, latent_channels, level, dropout=dropout)
        for width in (4 * ngf, 2 * ngf, ngf):
            level = LatentUNetLevel(width, width, 2 * width, latent_channels, level)
        self.model = LatentUNetLevel(in_channels, out_channels, ngf, latent_channels, level,
                                     outermost=True)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        multiple = 2 ** self.num_downs
        if x.dim() != 4 or x.shape[2] % multiple or x.shape[3] % multiple:
            raise ValueError(f"LatentUNetGenerator: x: expected (N, C, H, W) with H and W "
                             f"multiples of {multiple} (2**num_downs), got {tuple(x.shape)}")
        if z.dim() != 2 or z.shape != (x.shape[0], self.latent_channels):
            raise ValueError(f"LatentUNetGenerator: z: expected shape ({x.shape[0]}, "
                             f"{self.latent_channels}), got {tuple(z.shape)}")
        return self.model(x, z)
