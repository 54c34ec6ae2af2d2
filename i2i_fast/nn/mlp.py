"""The MLP that maps a style code to AdaIN parameters (MUNIT)."""

from __future__ import annotations

import torch
from torch import nn

from .conv import LinearBlock


class MLP(nn.Module):
    """n_blk Linear layers: in → dim (act) → ... → dim (act) → out (no activation).

    The input is flattened per sample, so a (N, style_dim, 1, 1) style code is accepted.
    """

    def __init__(self, in_features: int, out_features: int, dim: int, n_blk: int,
                 activation: str = "relu"):
        super().__init__()
        if n_blk < 2:
            raise ValueError(f"MLP: n_blk: expected at least 2, got {n_blk}")
        layers = [LinearBlock(in_features, dim, activation)]
        layers += [LinearBlock(dim, dim, activation) for _ in range(n_blk - 2)]
        layers += [LinearBlock(dim, out_features, "none")]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.reshape(x.shape[0], -1))
