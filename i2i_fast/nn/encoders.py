"""Content and style encoders (MUNIT's, used by the methods that disentangle content and style)."""

from __future__ import annotations

import torch
from torch import nn

from .conv import Conv2dBlock
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
