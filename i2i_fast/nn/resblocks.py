"""Residual blocks: x + conv-norm-act-conv-norm(x), with instance norm or AdaIN.

``residual_scale`` multiplies the residual branch before the skip is added: 1 in MUNIT (the sum
is then ``x + residual``, nothing multiplied), 0.1 in TUNIT (``x + 0.1 * residual``).
"""

from __future__ import annotations

import torch
from torch import nn

from .conv import Conv2dBlock


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
