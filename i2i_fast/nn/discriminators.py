"""Multi-scale PatchGAN discriminator (MUNIT's MsImageDis, BicycleGAN's D): one PatchGAN per
scale on a pyramid made by AvgPool2d(3, stride 2, padding 1, count_include_pad=False)."""

from __future__ import annotations

import torch
from torch import nn

from .conv import Conv2dBlock


class MultiScalePatchDiscriminator(nn.Module):
    """num_scales PatchGANs: 4x4 stride-2 conv (no norm), n_layer - 1 more doubling the width
    (with `norm`), 1x1 conv to one logit map. forward(x) → [outputs per scale], finest first."""

    def __init__(self, in_channels: int = 3, dim: int = 64, n_layer: int = 4,
                 num_scales: int = 3, norm: str = "none", activation: str = "lrelu",
                 pad_type: str = "reflect"):
        super().__init__()
        self.cnns = nn.ModuleList(self._make_net(in_channels, dim, n_layer, norm, activation,
                                                 pad_type) for _ in range(num_scales))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    @staticmethod
    def _make_net(in_channels: int, dim: int, n_layer: int, norm: str, activation: str,
                  pad_type: str) -> nn.Sequential:
        layers = [Conv2dBlock(in_channels, dim, 4, 2, 1, "none", activation, pad_type)]
        for _ in range(n_layer - 1):
            layers.append(Conv2dBlock(dim, 2 * dim, 4, 2, 1, norm, activation, pad_type))
            dim *= 2
        layers.append(nn.Conv2d(dim, 1, 1, 1, 0))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for i, cnn in enumerate(self.cnns):
            if i > 0:
                x = self.downsample(x)
            outputs.append(cnn(x))
        return outputs
