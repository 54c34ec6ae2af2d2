"""The AdaIN decoder: AdaIN ResBlocks, then upsampling convs with LayerNorm, then the output conv."""

from __future__ import annotations

import torch
from torch import nn

from .conv import Conv2dBlock
from .resampling import UpsampleNearest
from .resblocks import AdaINResBlocks, split_adain_params  # noqa: F401 - re-exported


class AdaINDecoder(nn.Module):
    """n_res AdaIN ResBlocks at `dim`; n_upsample × (nearest ×2, 5x5 conv halving the width,
    MUNIT LayerNorm, activation); 7x7 conv to out_channels, tanh.

    forward(content, adain_params) with adain_params (N, num_adain_params).
    """

    def __init__(self, n_upsample: int, n_res: int, dim: int, out_channels: int,
                 activation: str = "relu", pad_type: str = "reflect"):
        super().__init__()
        self.resblocks = AdaINResBlocks(n_res, dim, activation, pad_type)
        up = []
        for _ in range(n_upsample):
            up += [UpsampleNearest(2),
                   Conv2dBlock(dim, dim // 2, 5, 1, 2, norm="ln", activation=activation,
                               pad_type=pad_type)]
            dim //= 2
        up.append(Conv2dBlock(dim, out_channels, 7, 1, 3, norm="none", activation="tanh",
                              pad_type=pad_type))
        self.upsample = nn.Sequential(*up)

    @property
    def adain_channels(self) -> list[int]:
        return self.resblocks.adain_channels

    @property
    def num_adain_params(self) -> int:
        return self.resblocks.num_adain_params

    def forward(self, content: torch.Tensor, adain_params: torch.Tensor) -> torch.Tensor:
        return self.upsample(self.resblocks(content, adain_params))
