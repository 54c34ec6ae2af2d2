"""Content and style encoders (MUNIT's, used by the methods that disentangle content and style),
and BicycleGAN's variational encoder."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import ops
from .conv import Conv2dBlock
from .preact_resblocks import PreActDownBlock
from .resblocks import ResBlock


class ContentEncoder(nn.Module):
    """7x7 conv, n_downsample 4x4 stride-2 convs doubling the width, n_res ResBlocks (their
    residual branch scaled by ``residual_scale``: 1 in MUNIT, 0.1 in TUNIT).

    (N, in, H, W) → (N, dim * 2**n_downsample, H / 2**n_downsample, W / 2**n_downsample).
    """

    def __init__(self, n_downsample: int, n_res: int, in_channels: int, dim: int,
                 norm: str = "in", activation: str = "relu", pad_type: str = "reflect",
                 residual_scale: float = 1.0):
        super().__init__()
        layers = [Conv2dBlock(in_channels, dim, 7, 1, 3, norm, activation, pad_type)]
        for _ in range(n_downsample):
            layers.append(Conv2dBlock(dim, 2 * dim, 4, 2, 1, norm, activation, pad_type))
            dim *= 2
        layers += [ResBlock(dim, norm, activation, pad_type, residual_scale)
                   for _ in range(n_res)]
        self.model = nn.Sequential(*layers)
        self.out_channels = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class StyleEncoder(nn.Module):
    """7x7 conv; two 4x4 stride-2 convs doubling the width; n_downsample - 2 more at that width;
    global average pooling; 1x1 conv to style_dim. (N, in, H, W) → (N, style_dim, 1, 1)."""

    def __init__(self, n_downsample: int, in_channels: int, dim: int, style_dim: int,
                 norm: str = "none", activation: str = "relu", pad_type: str = "reflect"):
        super().__init__()
        if n_downsample < 2:
            raise ValueError(f"StyleEncoder: n_downsample: expected at least 2, got {n_downsample}")
        layers = [Conv2dBlock(in_channels, dim, 7, 1, 3, norm, activation, pad_type)]
        for _ in range(2):
            layers.append(Conv2dBlock(dim, 2 * dim, 4, 2, 1, norm, activation, pad_type))
            dim *= 2
        for _ in range(n_downsample - 2):
            layers.append(Conv2dBlock(dim, dim, 4, 2, 1, norm, activation, pad_type))
        layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, style_dim, 1, 1, 0)]
        self.model = nn.Sequential(*layers)
        self.out_channels = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class VariationalResNetEncoder(nn.Module):
    """BicycleGAN's E_ResNet (vaeLike): a Gaussian posterior (mu, logvar) over a latent code.

    4x4 stride-2 conv (in → dim); n_blocks - 1 PreActDownBlocks, block n (1-based) from
    dim * min(max_mult, n) to dim * min(max_mult, n + 1) channels, each halving the size;
    LeakyReLU(0.2); average pooling over the last pool x pool map; two Linear heads (mu, logvar).
    The official resnet_256 is n_blocks 5 (256 → 8 x 8 before the pooling), resnet_128 is 4: the
    input side must be pool * 2**n_blocks (``input_size``).

    forward(x (N, in, S, S)) → (mu, logvar), each (N, latent_dim).
    """

    def __init__(self, in_channels: int, latent_dim: int, dim: int = 64, n_blocks: int = 5,
                 max_mult: int = 4, normalize: bool = True, pool: int = 8):
        super().__init__()
        if isinstance(n_blocks, bool) or not isinstance(n_blocks, int) or n_blocks < 1:
            raise ValueError(f"VariationalResNetEncoder: n_blocks: expected an int >= 1, got "
                             f"{n_blocks!r}")
        self.pool = pool
        self.input_size = pool * 2 ** n_blocks
        self.conv = nn.Conv2d(in_channels, dim, 4, 2, 1)
        widths = [dim * min(max_mult, n) for n in range(1, n_blocks + 1)]
        self.blocks = nn.Sequential(*(PreActDownBlock(widths[i], widths[i + 1], normalize)
                                      for i in range(n_blocks - 1)))
        self.out_channels = widths[-1]
        self.fc = nn.Linear(self.out_channels, latent_dim)
        self.fc_var = nn.Linear(self.out_channels, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 4 or x.shape[2] != self.input_size or x.shape[3] != self.input_size:
            raise ValueError(f"VariationalResNetEncoder: x: expected (N, C, {self.input_size}, "
                             f"{self.input_size}) (its last map is pooled over "
                             f"{self.pool}x{self.pool}), got {tuple(x.shape)}")
        h = F.leaky_relu(self.blocks(self.conv(x)), 0.2)
        h = ops.avg_pool(h, self.pool).flatten(1)
        return self.fc(h), self.fc_var(h)
