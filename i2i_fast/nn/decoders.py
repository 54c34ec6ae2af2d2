"""Decoders from a content code and a style / attribute code: the AdaIN decoder (AdaIN ResBlocks,
upsampling convs with LayerNorm in MUNIT or AdaIN in TUNIT, the output conv) and DRIT's two (the
code injected by concatenation: before four convs, or through fused residual blocks)."""

from __future__ import annotations

import torch
from torch import nn

from .conv import Conv2dBlock, ConvTranspose2dBlock
from .latent_injection import LatentConvTranspose2d
from .mlp import MLP
from .norms import ChannelAffineLayerNorm
from .resampling import UpsampleNearest
from .resblocks import (  # noqa: F401 - split_adain_params re-exported
    AdaINResBlocks, LatentConcatResBlock, LatentFusionResBlock, ResBlock, split_adain_params,
)

UPSAMPLE_NORMS = ("ln", "adain")


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
        self.resblocks = AdaINResBlocks(n_res, dim, activation, pad_type, residual_scale)
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
        return (self.resblocks.adain_channels
                + [m.conv.out_channels for m in self._adain_upsamplers()])

    @property
    def num_adain_params(self) -> int:
        return 2 * sum(self.adain_channels)

    def forward(self, content: torch.Tensor, adain_params: torch.Tensor) -> torch.Tensor:
        pairs = split_adain_params(adain_params, self.adain_channels)
        x = self.resblocks.apply_pairs(content, pairs)
        following = iter(pairs[self.resblocks.num_pairs:])
        for layer in self.upsample:
            if isinstance(layer, Conv2dBlock) and layer.norm_kind == "adain":
                x = layer(x, next(following))
            else:
                x = layer(x)
        return x


class ConcatLatentDecoder(nn.Module):
    """One domain's decoder of DRIT's G_concat (``--concat 1``): the latent code z (N, latent_dim)
    is concatenated, broadcast over H x W, before each of four convs.

    cat z → n_res ResBlocks at dim + latent_dim (the first a LatentConcatResBlock) → cat z →
    ConvTranspose 3x3 stride 2 to half the channels, LayerNorm (F.layer_norm over C, H, W,
    per-channel affine), ReLU → cat z → the same again → cat z → ConvTranspose 1x1 to
    out_channels → tanh. 256 + 8 channels: 264 → 272 → 136, 144 → 72, 80 → 3.

    forward(content (N, dim, h, w), z (N, latent_dim)) → (N, out_channels, 4h, 4w).
    """

    def __init__(self, dim: int, latent_dim: int, out_channels: int, n_res: int = 3):
        super().__init__()
        if n_res < 1:
            raise ValueError(f"ConcatLatentDecoder: n_res: expected at least 1, got {n_res}")
        width = dim + latent_dim
        self.res_first = LatentConcatResBlock(dim, latent_dim)
        self.res_rest = nn.Sequential(*(ResBlock(width, "in", "relu", "reflect")
                                        for _ in range(n_res - 1)))
        up1 = (width + latent_dim) // 2
        self.up1 = LatentConvTranspose2d(width, latent_dim, up1, 3, 2, 1, output_padding=1)
        self.norm1 = ChannelAffineLayerNorm(up1, activation="relu")
        up2 = (up1 + latent_dim) // 2
        self.up2 = LatentConvTranspose2d(up1, latent_dim, up2, 3, 2, 1, output_padding=1)
        self.norm2 = ChannelAffineLayerNorm(up2, activation="relu")
        self.to_image = LatentConvTranspose2d(up2, latent_dim, out_channels, 1)

    def forward(self, content: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        x = self.res_rest(self.res_first(content, z))
        x = self.norm1(self.up1(x, z))
        x = self.norm2(self.up2(x, z))
        return torch.tanh(self.to_image(x, z))


class FusionLatentDecoder(nn.Module):
    """One domain's decoder of DRIT's G (``--concat 0``, the "feature-wise transform"): an MLP maps
    z (N, latent_dim) to n_blocks codes of dim values; n_blocks LatentFusionResBlocks (MisINS),
    block i fused with code i; two ConvTranspose 3x3 stride 2 + LayerNorm + ReLU halving the
    channels; ConvTranspose 1x1 to out_channels; tanh. Official: 4 blocks, MLP 8 → 256 → 256 →
    1024.

    forward(content (N, dim, h, w), z (N, latent_dim)) → (N, out_channels, 4h, 4w).
    """

    def __init__(self, dim: int, latent_dim: int, out_channels: int, n_blocks: int = 4,
                 mlp_dim: int = 256):
        super().__init__()
        self.dim = dim
        self.mlp = MLP(latent_dim, n_blocks * dim, mlp_dim, 3, "relu")
        self.blocks = nn.ModuleList(LatentFusionResBlock(dim, dim) for _ in range(n_blocks))
        self.up = nn.Sequential(
            ConvTranspose2dBlock(dim, dim // 2, 3, 2, 1, 1, norm="ln_standard",
                                 activation="relu"),
            ConvTranspose2dBlock(dim // 2, dim // 4, 3, 2, 1, 1, norm="ln_standard",
                                 activation="relu"),
            ConvTranspose2dBlock(dim // 4, out_channels, 1, 1, 0, 0, norm="none",
                                 activation="tanh"))

    def forward(self, content: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        codes = self.mlp(z).split(self.dim, dim=1)
        x = content
        for block, code in zip(self.blocks, codes):
            x = block(x, code)
        return self.up(x)
