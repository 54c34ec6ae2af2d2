"""TUNIT's guiding network: a VGG11 trunk with BatchNorm and two linear heads, one giving
cluster logits (trained by IIC), one giving a style code (trained by MoCo, and read by the
generator as its style).

Layer names follow the official GuidingNet (models/guidingNet.py: features, disc, cont), so its
state dicts have the official keys.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .norms import BatchNorm
from .resampling import MaxPool

# VGG11's configuration ("M": 2x2 max pooling) as multiples of the first width (64 officially).
VGG11 = (1, "M", 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M")


def vgg_trunk(dim: int, in_channels: int = 3) -> tuple[nn.Sequential, int]:
    """VGG11 with BatchNorm: [3x3 conv (pad 1) → BatchNorm → ReLU] per width, 2x2 max pooling
    at each "M". Returns (trunk, output width = 8 dim).

    BatchNorm and ReLU run as one fused operator (nn.BatchNorm with activation "relu", an
    nn.BatchNorm2d with the same parameters and buffers); an nn.Identity stands where the
    official ReLU module stands, so the layers keep the official indices and state-dict keys
    (features.1.running_mean, ...). The pooling is the fused max pooling (nn.MaxPool)."""
    layers: list[nn.Module] = []
    channels = in_channels
    for item in VGG11:
        if item == "M":
            layers.append(MaxPool(kernel_size=2, stride=2))
        else:
            width = item * dim
            layers += [nn.Conv2d(channels, width, kernel_size=3, padding=1),
                       BatchNorm(width, activation="relu"), nn.Identity()]
            channels = width
    return nn.Sequential(*layers), channels


class GuidingNetwork(nn.Module):
    """forward(x (N, 3, S, S)) → (style (N, style_dim), cluster logits (N, num_clusters)).

    ``overclusters`` > 0 adds ``disc_over``, a second cluster head with that many logits (IIC's
    over-clustering head, not in TUNIT); ``forward(x, with_overclusters=True)`` then also returns
    its logits (N, overclusters) as a third output. 0 (default): the official network.

    The trunk (5 max poolings: S >= 32) ends in a global average pooling to (N, 8 dim); ``disc``
    gives the cluster logits, ``cont`` the style code (never normalised). Init as the official:
    convs kaiming_normal (fan_out, ReLU gain), BatchNorm weight 1 and bias 0, linear N(0, 0.01),
    biases 0; ``cluster_head_std`` replaces 0.01 for the cluster heads' weights (``disc`` and
    ``disc_over``).

    ``stat_updates``: how many official forward passes one call stands for. The official code
    runs the trunk once per head and per call (``C.moco(x)`` and ``C.iic(x)``, and again on
    ``x[perm]``), each updating the BatchNorm running statistics in training mode with the same
    batch statistics b. One call with ``stat_updates=n`` gives the same running statistics:
    momentum m applied n times to the same b is momentum 1 - (1 - m)**n applied once, and
    ``num_batches_tracked`` advances by n. Outputs and gradients do not depend on it.
    """

    def __init__(self, num_clusters: int = 10, style_dim: int = 128, dim: int = 64,
                 overclusters: int = 0, cluster_head_std: float = 0.01):
        super().__init__()
        self.features, width = vgg_trunk(dim)
        self.disc = nn.Linear(width, num_clusters)
        self.cont = nn.Linear(width, style_dim)
        self.disc_over = nn.Linear(width, overclusters) if overclusters > 0 else None
        cluster_heads = (self.disc, self.disc_over)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                std = cluster_head_std if any(m is h for h in cluster_heads) else 0.01
                nn.init.normal_(m.weight, 0.0, std)
                nn.init.zeros_(m.bias)

    def pooled(self, x: torch.Tensor, stat_updates: int = 1) -> torch.Tensor:
        """The trunk's globally pooled features (N, 8 dim)."""
        norms = [m for m in self.features if isinstance(m, nn.BatchNorm2d)]
        repeated = self.training and stat_updates != 1
        if repeated:
            if isinstance(stat_updates, bool) or not isinstance(stat_updates, int) \
                    or stat_updates < 1:
                raise ValueError(f"GuidingNetwork: stat_updates: expected an int >= 1, got "
                                 f"{stat_updates!r}")
            momenta = [m.momentum for m in norms]
            for m in norms:
                m.momentum = 1.0 - (1.0 - m.momentum) ** stat_updates
        try:
            h = self.features(x)
        finally:
            if repeated:
                for m, momentum in zip(norms, momenta):
                    m.momentum = momentum
                    m.num_batches_tracked.add_(stat_updates - 1)
        return F.adaptive_avg_pool2d(h, 1).flatten(1)

    def forward(self, x: torch.Tensor, stat_updates: int = 1, with_overclusters: bool = False
                ) -> tuple[torch.Tensor, ...]:
        if with_overclusters and self.disc_over is None:
            raise ValueError("GuidingNetwork: with_overclusters: this network has no "
                             "over-clustering head (built with overclusters=0)")
        flat = self.pooled(x, stat_updates)
        if with_overclusters:
            return self.cont(flat), self.disc(flat), self.disc_over(flat)
        return self.cont(flat), self.disc(flat)
