"""Additive Gaussian noise in training mode (DRIT's GaussianNoiseLayer, at the end of its shared
content encoder block)."""

from __future__ import annotations

import torch
from torch import nn


@torch.compiler.disable
def standard_normal(shape: torch.Size, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """torch.randn, always eager: inside a torch.compile'd graph inductor would draw other
    numbers (its own generator), and a compiled run would no longer be the eager run."""
    return torch.randn(shape, dtype=dtype, device=device)


class GaussianNoise(nn.Module):
    """x + sigma · N(0, I) in training mode, x in eval mode.

    The noise is drawn from the global generator of x's device (the one the trainer seeds and
    saves in checkpoints), in x's dtype, as a contiguous (N, C, H, W) draw whatever x's memory
    format, so a channels-last run draws the same values for the same elements; eagerly, also
    inside a compiled network, so a compiled run draws what the eager one does.
    """

    def __init__(self, sigma: float = 1.0):
        super().__init__()
        self.sigma = sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        noise = standard_normal(x.shape, x.dtype, x.device)
        return x + noise if self.sigma == 1.0 else x + self.sigma * noise

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"
