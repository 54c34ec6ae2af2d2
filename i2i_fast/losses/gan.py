"""Adversarial losses over every scale (and head) of a discriminator, on ops.gan_loss.

Conventions (reduction "mean"): each scale contributes the mean over its elements; scales are
summed (MUNIT's MsImageDis.calc_dis_loss / calc_gen_loss).
"""

from __future__ import annotations

import torch

from .. import ops

Outputs = torch.Tensor | list[torch.Tensor]


def discriminator_loss(fake_outputs: Outputs, real_outputs: Outputs, mode: str,
                       fake_domain: torch.Tensor | None = None,
                       real_domain: torch.Tensor | None = None) -> torch.Tensor:
    """D's loss: fakes toward "fake", reals toward "real" (lsgan: mean(D(fake)²) +
    mean((D(real) − 1)²) per scale)."""
    return (ops.gan_loss(fake_outputs, "fake", mode, fake_domain)
            + ops.gan_loss(real_outputs, "real", mode, real_domain))


def generator_loss(fake_outputs: Outputs, mode: str,
                   domain: torch.Tensor | None = None) -> torch.Tensor:
    """G's loss on D's outputs for its fakes (lsgan: mean((D(fake) − 1)²) per scale)."""
    return ops.gan_loss(fake_outputs, "generator", mode, domain)
