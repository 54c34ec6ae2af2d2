"""The AdaIN decoder: AdaIN ResBlocks, then upsampling convs (LayerNorm in MUNIT, AdaIN in
TUNIT), then the output conv."""

from __future__ import annotations

import torch
from torch import nn

from .conv import Conv2dBlock
from .resampling import UpsampleNearest
from .resblocks import AdaINResBlock

UPSAMPLE_NORMS = ("ln", "adain")


def split_adain_params(params: torch.Tensor, channels: list[int]
                       ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(N, 2 * sum(channels)) → one (weight, bias) per AdaIN layer, in order.

    MUNIT's (and TUNIT's) layout: for each layer, the first C values are the bias, the next C the
    weight.
    """
    expected = 2 * sum(channels)
    if params.dim() != 2 or params.shape[1] != expected:
        raise ValueError(f"adain_params: expected shape (N, {expected}), got {tuple(params.shape)}")
    out, offset = [], 0
    for c in channels:
        bias = params[:, offset:offset + c]
        weight = params[:, offset + c:offset + 2 * c]
        out.append((weight, bias))
        offset += 2 * c
    return out


class AdaINDecoder(nn.Module):
    """n_res AdaIN ResBlocks at `dim` (residual branch scaled by ``residual_scale``: 1 in MUNIT,
    0.1 in TUNIT); n_upsample × (nearest ×2, 5x5 conv halving the width, ``upsample_norm``,
    activation); 7x7 conv to out_channels, tanh.

    upsample_norm: "ln" (MUNIT's LayerNorm, learned affine) or "adain" (TUNIT: the upsampling
    convs take AdaIN parameters from the style too).

    forward(content, adain_params) with adain_params (N, num_adain_params): the layers' (bias,
    weight) pairs in module order (the ResBlocks', then the upsampling convs').
    """

    def __init__(self, n_upsample: int, n_res: int, dim: int, out_channels: int,
                 activation: str = "relu", pad_type: str = "reflect",
                 upsample_norm: str = "ln", residual_scale: float = 1.0):
        super().__init__()
        if upsample_norm not in UPSAMPLE_NORMS:
            raise ValueError(f"AdaINDecoder: upsample_norm: expected one of "
                             f"{', '.join(UPSAMPLE_NORMS)}, got {upsample_norm!r}")
        self.resblocks = nn.ModuleList(AdaINResBlock(dim, activation, pad_type, residual_scale)
                                       for _ in range(n_res))
        up = []
        for _ in range(n_upsample):
            up += [UpsampleNearest(2),
                   Conv2dBlock(dim, dim // 2, 5, 1, 2, norm=upsample_norm, activation=activation,
                               pad_type=pad_type)]
            dim //= 2
        up.append(Conv2dBlock(dim, out_channels, 7, 1, 3, norm="none", activation="tanh",
                              pad_type=pad_type))
        self.upsample = nn.Sequential(*up)

    def _adain_upsamplers(self) -> list[Conv2dBlock]:
        return [m for m in self.upsample
                if isinstance(m, Conv2dBlock) and m.norm_kind == "adain"]

    @property
    def adain_channels(self) -> list[int]:
        return ([block.dim for block in self.resblocks for _ in range(block.adain_layers)]
                + [m.conv.out_channels for m in self._adain_upsamplers()])

    @property
    def num_adain_params(self) -> int:
        return 2 * sum(self.adain_channels)

    def forward(self, content: torch.Tensor, adain_params: torch.Tensor) -> torch.Tensor:
        pairs = split_adain_params(adain_params, self.adain_channels)
        x = content
        for i, block in enumerate(self.resblocks):
            x = block(x, pairs[2 * i:2 * i + 2])
        following = iter(pairs[2 * len(self.resblocks):])
        for layer in self.upsample:
            if isinstance(layer, Conv2dBlock) and layer.norm_kind == "adain":
                x = layer(x, next(following))
            else:
                x = layer(x)
        return x
