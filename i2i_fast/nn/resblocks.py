"""Residual blocks: x + conv-norm-act-conv-norm(x), with instance norm or AdaIN; a stack of AdaIN
blocks modulated by one flat parameter vector (MUNIT's decoder, MISO's conditional content
encoder); blocks that inject a latent code by concatenation (DRIT).

``residual_scale`` multiplies the residual branch before the skip is added: 1 in MUNIT (the sum
is then ``x + residual``, nothing multiplied), 0.1 in TUNIT (``x + 0.1 * residual``).
"""

from __future__ import annotations

import torch
from torch import nn

from .conv import Conv2dBlock
from .latent_injection import LatentConv2d, broadcast_concat
from .norms import InstanceNorm


class ResBlock(nn.Module):
    """MUNIT's ResBlock: two 3x3 Conv2dBlocks (norm + activation, then norm only) plus the skip."""

    def __init__(self, dim: int, norm: str = "in", activation: str = "relu",
                 pad_type: str = "zero", residual_scale: float = 1.0):
        super().__init__()
        self.residual_scale = float(residual_scale)
        self.conv1 = Conv2dBlock(dim, dim, 3, 1, 1, norm=norm, activation=activation,
                                 pad_type=pad_type)
        self.conv2 = Conv2dBlock(dim, dim, 3, 1, 1, norm=norm, activation="none",
                                 pad_type=pad_type)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _add_residual(x, self.conv2(self.conv1(x)), self.residual_scale)


class AdaINResBlock(nn.Module):
    """ResBlock with AdaIN: conv → AdaIN → act → conv → AdaIN, plus the skip.

    forward(x, adain) with adain = [(weight1, bias1), (weight2, bias2)], each (N, dim).
    """

    adain_layers = 2

    def __init__(self, dim: int, activation: str = "relu", pad_type: str = "zero",
                 residual_scale: float = 1.0):
        super().__init__()
        self.dim = dim
        self.residual_scale = float(residual_scale)
        self.conv1 = Conv2dBlock(dim, dim, 3, 1, 1, norm="adain", activation=activation,
                                 pad_type=pad_type)
        self.conv2 = Conv2dBlock(dim, dim, 3, 1, 1, norm="adain", activation="none",
                                 pad_type=pad_type)

    def forward(self, x: torch.Tensor, adain: list[tuple[torch.Tensor, torch.Tensor]]
                ) -> torch.Tensor:
        return _add_residual(x, self.conv2(self.conv1(x, adain[0]), adain[1]),
                             self.residual_scale)


def _add_residual(x: torch.Tensor, residual: torch.Tensor, scale: float) -> torch.Tensor:
    return x + residual if scale == 1.0 else x + scale * residual


def split_adain_params(params: torch.Tensor, channels: list[int]
                       ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(N, 2 * sum(channels)) → one (weight, bias) per AdaIN layer, in order.

    MUNIT's layout: for each layer, the first C values are the bias, the next C the weight.
    """
    expected = 2 * sum(channels)
    if not isinstance(params, torch.Tensor) or params.dim() != 2 or params.shape[1] != expected:
        shape = tuple(params.shape) if isinstance(params, torch.Tensor) else type(params).__name__
        raise ValueError(f"adain_params: expected shape (N, {expected}), got {shape}")
    out, offset = [], 0
    for c in channels:
        bias = params[:, offset:offset + c]
        weight = params[:, offset + c:offset + 2 * c]
        out.append((weight, bias))
        offset += 2 * c
    return out


class AdaINResBlocks(nn.ModuleList):
    """n AdaINResBlocks at `dim`, all modulated by one flat vector of AdaIN parameters (MUNIT's
    layout, see split_adain_params), which an MLP computes from a style code.

    forward(x (N, dim, H, W), adain_params (N, num_adain_params)) → (N, dim, H, W). A ModuleList,
    so its blocks' state-dict keys are ``<name>.<i>.conv1...`` (MUNIT's decoder keeps its keys).
    """

    def __init__(self, n_blocks: int, dim: int, activation: str = "relu",
                 pad_type: str = "zero", residual_scale: float = 1.0):
        super().__init__(AdaINResBlock(dim, activation, pad_type, residual_scale)
                         for _ in range(n_blocks))

    @property
    def adain_channels(self) -> list[int]:
        return [block.dim for block in self for _ in range(block.adain_layers)]

    @property
    def num_adain_params(self) -> int:
        return 2 * sum(self.adain_channels)

    @property
    def num_pairs(self) -> int:
        """How many (weight, bias) pairs the stack takes."""
        return len(self.adain_channels)

    def apply_pairs(self, x: torch.Tensor, pairs: list[tuple[torch.Tensor, torch.Tensor]]
                    ) -> torch.Tensor:
        """The stack on x with its (weight, bias) pairs (the first num_pairs of `pairs`)."""
        layers = AdaINResBlock.adain_layers
        for i, block in enumerate(self):
            x = block(x, pairs[layers * i:layers * (i + 1)])
        return x

    def forward(self, x: torch.Tensor, adain_params: torch.Tensor) -> torch.Tensor:
        return self.apply_pairs(x, split_adain_params(adain_params, self.adain_channels))


class LatentConcatResBlock(nn.Module):
    """ResBlock on cat[x, z broadcast] (the first decoder block of DRIT's G_concat):
    h = cat[x, z]; out = h + IN(conv(ReLU(IN(conv(h))))), 3x3 convs of dim + latent_dim channels,
    reflection padding. The first conv is a LatentConv2d (the latent-injection seam); the
    skip adds the concatenation itself. forward(x (N, dim, H, W), z (N, latent_dim)) →
    (N, dim + latent_dim, H, W)."""

    def __init__(self, dim: int, latent_dim: int):
        super().__init__()
        width = dim + latent_dim
        self.conv1 = LatentConv2d(dim, latent_dim, width, 3, 1, 1, padding_mode="reflect")
        self.norm1 = InstanceNorm(width, activation="relu")
        self.conv2 = Conv2dBlock(width, width, 3, 1, 1, norm="in", activation="none",
                                 pad_type="reflect")

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return broadcast_concat(x, z) + self.conv2(self.norm1(self.conv1(x, z)))


class LatentFusionResBlock(nn.Module):
    """DRIT's MisINSResBlock (its "feature-wise transform", concat = 0): injection by
    concatenation and 1x1-conv fusion, not AdaIN. With z (N, latent_dim) broadcast over H x W:
    o1 = IN(conv3x3(x)); o2 = ReLU(1x1(ReLU(1x1(cat[o1, z])))); o3 = IN(conv3x3(o2));
    out = ReLU(1x1(ReLU(1x1(cat[o3, z])))) + x. The 1x1 convs map dim + latent_dim →
    dim + latent_dim → dim; the 3x3 convs are reflection padded."""

    def __init__(self, dim: int, latent_dim: int):
        super().__init__()
        width = dim + latent_dim
        self.conv1 = Conv2dBlock(dim, dim, 3, 1, 1, norm="in", activation="none",
                                 pad_type="reflect")
        self.fuse1 = LatentConv2d(dim, latent_dim, width, 1)
        self.out1 = Conv2dBlock(width, dim, 1, 1, 0, norm="none", activation="relu")
        self.conv2 = Conv2dBlock(dim, dim, 3, 1, 1, norm="in", activation="none",
                                 pad_type="reflect")
        self.fuse2 = LatentConv2d(dim, latent_dim, width, 1)
        self.out2 = Conv2dBlock(width, dim, 1, 1, 0, norm="none", activation="relu")

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        o2 = self.out1(torch.relu(self.fuse1(self.conv1(x), z)))
        return self.out2(torch.relu(self.fuse2(self.conv2(o2), z))) + x
