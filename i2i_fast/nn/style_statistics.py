"""Per-class statistics of style codes, to translate into a class (a domain or a cluster) without
a reference image: its mean style, or draws from a normal distribution with the class's
per-dimension mean and variance.

The statistics are buffers (saved and resumed with the module): weighted counts, sums and sums
of squares per class, exponentially weighted when ``add`` is given a decay < 1 (a running estimate
during training) or plain sums (an estimate over a data set).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ClassStyleStatistics(nn.Module):
    """Weighted counts ``weight`` (K,), sums ``total`` and sums of squares ``squares`` (K, D) of
    the style codes (dimension D) of K classes."""

    def __init__(self, num_classes: int, style_dim: int):
        super().__init__()
        self.register_buffer("weight", torch.zeros(num_classes))
        self.register_buffer("total", torch.zeros(num_classes, style_dim))
        self.register_buffer("squares", torch.zeros(num_classes, style_dim))

    @torch.no_grad()
    def add(self, styles: torch.Tensor, labels: torch.Tensor, decay: float = 1.0) -> None:
        """Old statistics times `decay`, plus the styles (N, D) of classes `labels` (N,)."""
        one_hot = F.one_hot(labels, self.weight.shape[0]).to(self.total.dtype)
        styles = styles.to(self.total.dtype)
        for stat, new in ((self.weight, one_hot.sum(0)), (self.total, one_hot.t() @ styles),
                          (self.squares, one_hot.t() @ styles.square())):
            stat.mul_(decay).add_(new)

    def reset(self) -> None:
        for stat in (self.weight, self.total, self.squares):
            stat.zero_()

    def empty_classes(self, labels: torch.Tensor) -> list[int]:
        """The classes among `labels` with no statistics (sorted)."""
        return sorted({int(k) for k in labels if float(self.weight[k]) <= 0})

    def mean_and_std(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(K, D) means and standard deviations; a class with no weight: 0 and 1."""
        weight = self.weight.clamp_min(1e-12).unsqueeze(1)
        mean = self.total / weight
        var = (self.squares / weight - mean.square()).clamp_min(0)
        empty = (self.weight <= 0).unsqueeze(1)
        return (torch.where(empty, torch.zeros_like(mean), mean),
                torch.where(empty, torch.ones_like(var), var.sqrt()))

    def draws(self, labels: torch.Tensor, n_styles: int,
              generator: torch.Generator | None = None) -> torch.Tensor:
        """(N * n_styles, D): for each of the N labels, its class's mean style, then
        n_styles - 1 draws from N(mean, diag(std²)) (from `generator`)."""
        mean, std = self.mean_and_std()
        mean, std = mean[labels], std[labels]  # (N, D)
        noise = torch.randn(labels.shape[0], n_styles, mean.shape[1], device=mean.device,
                            dtype=mean.dtype, generator=generator)
        noise[:, 0] = 0
        return (mean.unsqueeze(1) + std.unsqueeze(1) * noise).flatten(0, 1)
