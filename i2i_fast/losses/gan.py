"""Adversarial losses over every scale (and head) of a discriminator, on ops.gan_loss, DRIT's
sigmoid + BCE loss included (its mode "sigmoid_bce").

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


def sigmoid_bce_loss(outputs: Outputs, label: float) -> torch.Tensor:
    """DRIT's adversarial loss, ``ops.gan_loss`` mode "sigmoid_bce": Σ_scales mean over the
    scale's elements of BCE(sigmoid(x), label), with BCE as ``F.binary_cross_entropy`` computes
    it (nn.BCELoss), its logarithms clamped at −100:

        p = sigmoid(x)  (rounded to the compute dtype)
        ℓ(x) = (label − 1) · max(log1p(−p), −100) − label · max(log p, −100)

    Not BCE-with-logits: where sigmoid saturates (p rounds to 0 or 1, |x| > ~17 in float32) the
    loss is 100·label or 100·(1 − label) and its gradient through the sigmoid is 0, where
    BCE-with-logits gives |x| and a gradient of ±1. Gradient of one element (autograd of the two
    steps): g · (p − label) / max(p · (1 − p), 1e−12) · (1 − p) · p.

    outputs: a tensor or a list of tensors (one per scale, any shapes (N, ...)); label: the target
    probability in [0, 1] (1 real, 0 fake, 0.5 for the content discriminator's encoder loss).
    Float16 and bfloat16 outputs are computed in float32; the loss is float32, float64 for
    float64 outputs. A NaN output gives a NaN loss (nn.BCELoss would refuse it with an error).
    """
    return ops.gan_loss(outputs, label, "sigmoid_bce")
