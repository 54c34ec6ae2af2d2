"""Multi-domain networks with one output head per domain (StarGAN v2's mapping network, style
encoder and discriminator; TUNIT's discriminator shares the design).

Each computes a shared trunk, then every domain's head, and returns the head of each sample's
domain ``y`` (``select_domain``). Child names follow the official StarGAN v2 code (shared,
unshared, main), so state dicts have the official keys (TUNIT's discriminator has the same
``main`` layout).

The downsampling trunk is a sequence of *stages*, each halving the resolution: StarGAN v2's is
one PreActResBlock (LeakyReLU, no norm) per stage (``preact_stage``); TUNIT's is two FRN blocks
per stage, the first at the stage's input width without downsampling, the second doubling the
width and halving the resolution (``frn_stage``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from .preact_resblocks import FRNPreActResBlock, PreActResBlock

Stage = Callable[[int, int], list[nn.Module]]


def preact_stage(dim_in: int, dim_out: int) -> list[nn.Module]:
    """StarGAN v2: one PreActResBlock (no norm) halving the resolution."""
    return [PreActResBlock(dim_in, dim_out, downsample=True)]


def frn_stage(dim_in: int, dim_out: int) -> list[nn.Module]:
    """TUNIT: an FRN block at dim_in, then one to dim_out halving the resolution."""
    return [FRNPreActResBlock(dim_in, dim_in), FRNPreActResBlock(dim_in, dim_out, downsample=True)]


def first_width(image_size: int, dim_in: int | None) -> int:
    """The width of the first conv: dim_in, or the official 2**14 // image_size."""
    return dim_in if dim_in is not None else 2 ** 14 // image_size


def select_domain(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(N, K, ...) → (N, ...): the head y[n] of each sample n."""
    return out[torch.arange(out.shape[0], device=out.device), y]


def downsampling_trunk(image_size: int, max_conv_dim: int, dim_in: int | None,
                       stage: Stage = preact_stage) -> tuple[list[nn.Module], int]:
    """The shared layers of the style encoder and the discriminator: 3x3 conv, log2(S) - 2
    stages (``stage(dim_in, min(2 dim_in, max_conv_dim))``) halving to 4x4, LReLU, 4x4 conv,
    LReLU → (N, dim_out, 1, 1). Returns (layers, dim_out)."""
    dim_in = first_width(image_size, dim_in)
    blocks: list[nn.Module] = [nn.Conv2d(3, dim_in, 3, 1, 1)]
    dim_out = dim_in
    for _ in range(int(math.log2(image_size)) - 2):
        dim_out = min(dim_in * 2, max_conv_dim)
        blocks += stage(dim_in, dim_out)
        dim_in = dim_out
    blocks += [nn.LeakyReLU(0.2), nn.Conv2d(dim_out, dim_out, 4, 1, 0), nn.LeakyReLU(0.2)]
    return blocks, dim_out


class MappingNetwork(nn.Module):
    """F(z (N, latent_dim), y (N,) int64) → s (N, style_dim)."""

    def __init__(self, latent_dim: int = 16, style_dim: int = 64, num_domains: int = 2,
                 hidden_dim: int = 512):
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(latent_dim, hidden_dim), nn.ReLU()]
        for _ in range(3):
            layers += [nn.Linear(hidden_dim, hidden_dim), nn.ReLU()]
        self.shared = nn.Sequential(*layers)
        self.unshared = nn.ModuleList(
            nn.Sequential(nn.Linear(hidden_dim, hidden_dim), nn.ReLU(),
                          nn.Linear(hidden_dim, hidden_dim), nn.ReLU(),
                          nn.Linear(hidden_dim, hidden_dim), nn.ReLU(),
                          nn.Linear(hidden_dim, style_dim))
            for _ in range(num_domains))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.shared(z)
        out = torch.stack([head(h) for head in self.unshared], dim=1)  # (N, K, style_dim)
        return select_domain(out, y)


class MultiHeadStyleEncoder(nn.Module):
    """E(x (N, 3, S, S), y (N,) int64) → s (N, style_dim)."""

    def __init__(self, image_size: int = 256, style_dim: int = 64, num_domains: int = 2,
                 max_conv_dim: int = 512, dim_in: int | None = None):
        super().__init__()
        blocks, dim_out = downsampling_trunk(image_size, max_conv_dim, dim_in)
        self.shared = nn.Sequential(*blocks)
        self.unshared = nn.ModuleList(nn.Linear(dim_out, style_dim) for _ in range(num_domains))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.shared(x).flatten(1)
        out = torch.stack([head(h) for head in self.unshared], dim=1)  # (N, K, style_dim)
        return select_domain(out, y)


class MultiHeadDiscriminator(nn.Module):
    """D(x (N, 3, S, S)) → (N, num_domains) logits, one head per domain (a 1x1 conv after the
    trunk). ``stage``: ``preact_stage`` (StarGAN v2) or ``frn_stage`` (TUNIT, which selects the
    head of each sample's pseudo-label)."""

    def __init__(self, image_size: int = 256, num_domains: int = 2, max_conv_dim: int = 512,
                 dim_in: int | None = None, stage: Stage = preact_stage):
        super().__init__()
        blocks, dim_out = downsampling_trunk(image_size, max_conv_dim, dim_in, stage)
        blocks.append(nn.Conv2d(dim_out, num_domains, 1, 1, 0))
        self.main = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).flatten(1)
