"""Residual blocks: x + conv-norm-act-conv-norm(x), with instance norm or AdaIN; a stack of AdaIN
blocks modulated by one flat parameter vector (MUNIT's decoder, MISO's conditional content
encoder)."""

from __future__ import annotations

import torch
from torch import nn

from .conv import Conv2dBlock


class ResBlock(nn.Module):
    """MUNIT's ResBlock: two 3x3 Conv2dBlocks (norm + activation, then norm only) plus the skip."""

    def __init__(self, dim: int, norm: str = "in", activation: str = "relu",
                 pad_type: str = "zero"):
        super().__init__()
        self.conv1 = Conv2dBlock(dim, dim, 3, 1, 1, norm=norm, activation=activation,
                                 pad_type=pad_type)
        self.conv2 = Conv2dBlock(dim, dim, 3, 1, 1, norm=norm, activation="none",
                                 pad_type=pad_type)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.conv1(x))


class AdaINResBlock(nn.Module):
    """ResBlock with AdaIN: conv → AdaIN → act → conv → AdaIN, plus the skip.

    forward(x, adain) with adain = [(weight1, bias1), (weight2, bias2)], each (N, dim).
    """

    adain_layers = 2

    def __init__(self, dim: int, activation: str = "relu", pad_type: str = "zero"):
        super().__init__()
        self.dim = dim
        self.conv1 = Conv2dBlock(dim, dim, 3, 1, 1, norm="adain", activation=activation,
                                 pad_type=pad_type)
        self.conv2 = Conv2dBlock(dim, dim, 3, 1, 1, norm="adain", activation="none",
                                 pad_type=pad_type)

    def forward(self, x: torch.Tensor, adain: list[tuple[torch.Tensor, torch.Tensor]]
                ) -> torch.Tensor:
        return x + self.conv2(self.conv1(x, adain[0]), adain[1])


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
                 pad_type: str = "zero"):
        super().__init__(AdaINResBlock(dim, activation, pad_type) for _ in range(n_blocks))

    @property
    def adain_channels(self) -> list[int]:
        return [block.dim for block in self for _ in range(block.adain_layers)]

    @property
    def num_adain_params(self) -> int:
        return 2 * sum(self.adain_channels)

    def forward(self, x: torch.Tensor, adain_params: torch.Tensor) -> torch.Tensor:
        pairs = split_adain_params(adain_params, self.adain_channels)
        layers = AdaINResBlock.adain_layers
        for i, block in enumerate(self):
            x = block(x, pairs[layers * i:layers * (i + 1)])
        return x
