"""Content and style encoders (MUNIT's, used by the methods that disentangle content and style),
and the variational ResNet encoder of DRIT and BicycleGAN."""

from __future__ import annotations

import torch
from torch import nn

from .conv import Conv2dBlock, make_padding
from .resblocks import ResBlock, ResidualDownBlock


class ContentEncoder(nn.Module):
    """7x7 conv, n_downsample 4x4 stride-2 convs doubling the width, n_res ResBlocks.

    (N, in, H, W) → (N, dim * 2**n_downsample, H / 2**n_downsample, W / 2**n_downsample).

    MUNIT's by default. Options for DRIT's per-domain content encoder: ``down_kernel`` 3 (3x3
    stride-2 convs, padding 1), and a first conv with its own ``first_norm`` / ``first_activation``
    (DRIT: no norm, LeakyReLU of slope ``negative_slope`` 0.01).
    """

    def __init__(self, n_downsample: int, n_res: int, in_channels: int, dim: int,
                 norm: str = "in", activation: str = "relu", pad_type: str = "reflect",
                 down_kernel: int = 4, first_norm: str | None = None,
                 first_activation: str | None = None, negative_slope: float = 0.2):
        super().__init__()
        if down_kernel not in (3, 4):
            raise ValueError(f"ContentEncoder: down_kernel: expected 3 or 4, got {down_kernel}")
        layers = [Conv2dBlock(in_channels, dim, 7, 1, 3, first_norm or norm,
                              first_activation or activation, pad_type,
                              negative_slope=negative_slope)]
        for _ in range(n_downsample):
            layers.append(Conv2dBlock(dim, 2 * dim, down_kernel, 2, 1, norm, activation,
                                      pad_type, negative_slope=negative_slope))
            dim *= 2
        layers += [ResBlock(dim, norm, activation, pad_type) for _ in range(n_res)]
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


class VariationalEncoder(nn.Module):
    """A ResNet encoder predicting a diagonal Gaussian (DRIT's E_attr_concat per domain,
    BicycleGAN's E_ResNet): 4x4 stride-2 conv (padding 1 of `pad_type`) to dim; n_blocks - 1
    ResidualDownBlocks, block n from dim · min(max_mult, n) to dim · min(max_mult, n + 1)
    channels; LeakyReLU; global average pooling; two Linear heads, ``fc`` (mu) and ``fc_var``
    (logvar). DRIT: dim 64, 4 blocks, max_mult 4 (64 → 128 → 192 → 256), no norm, reflection
    padding, slope 0.2.

    forward(x (N, in, H, W)) → (mu, logvar), each (N, latent_dim).
    """

    def __init__(self, in_channels: int, latent_dim: int, dim: int = 64, n_blocks: int = 4,
                 max_mult: int = 4, norm: str = "none", pad_type: str = "reflect",
                 negative_slope: float = 0.2):
        super().__init__()
        if n_blocks < 2:
            raise ValueError(f"VariationalEncoder: n_blocks: expected at least 2, got {n_blocks}")
        layers = [make_padding(pad_type, 1), nn.Conv2d(in_channels, dim, 4, 2, 0, bias=True)]
        for n in range(1, n_blocks):
            layers.append(ResidualDownBlock(dim * min(max_mult, n), dim * min(max_mult, n + 1),
                                            norm, pad_type, negative_slope))
        layers += [nn.LeakyReLU(negative_slope), nn.AdaptiveAvgPool2d(1)]
        self.conv = nn.Sequential(*layers)
        self.out_channels = dim * min(max_mult, n_blocks)
        self.fc = nn.Linear(self.out_channels, latent_dim)
        self.fc_var = nn.Linear(self.out_channels, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.conv(x).flatten(1)
        return self.fc(h), self.fc_var(h)
