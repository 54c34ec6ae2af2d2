"""Reference definitions of the GAN losses: the specification the fused kernels are tested against.

Plain PyTorch, written like the official implementations' loss code (METHODS.md):
  MUNIT, BicycleGAN  LSGAN: D: mean(D(fake)^2) + mean((D(real) - 1)^2); G: mean((D(fake) - 1)^2),
                     each mean over one scale's patches, summed over the scales
  DRIT++             sigmoid, then nn.BCELoss (its logarithms clamped at -100), per scale, summed
                     (mode "sigmoid_bce"); its content discriminator's G side uses the label 0.5
  StarGAN v2         head domain[n] of the (N, K) output, then BCE with logits; R1 weight 0.5
  TUNIT              head domain[n], hinge loss; R1 = sum(grad^2) / N (weight 1, times w_gp = 10
                     outside)
Differentiable by autograd (twice, for r1_penalty). float16/bfloat16 inputs are computed in
float32 and the loss is float32, matching the fused kernels' float32 accumulation; float64 stays
float64.

These functions do not validate their arguments: ``i2i_fast.ops`` does that before any backend
runs.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

# The label a named target stands for in lsgan, nsgan and sigmoid_bce.
TARGET_LABELS = {"real": 1.0, "fake": 0.0, "generator": 1.0}


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def select_heads(x: torch.Tensor, domain: torch.Tensor | None) -> torch.Tensor:
    """(N, K, *rest) → (N, *rest), head domain[n] of sample n (x itself without a domain)."""
    if domain is None:
        return x
    return x[torch.arange(x.shape[0], device=x.device), domain.long()]


def sigmoid_bce(x: torch.Tensor, label: float) -> torch.Tensor:
    """DRIT's loss of every element: F.binary_cross_entropy(sigmoid(x), label) (nn.BCELoss), not
    BCE with logits:

        p = sigmoid(x)  (rounded to x's dtype)
        l = (label - 1) * max(log1p(-p), -100) - label * max(log p, -100)

    Where p rounds to 0 or 1 (float32: x < ~-88.7 or x > ~16.6) the loss is 100 * label or
    100 * (1 - label) and the gradient 0; where p * (1 - p) < 1e-12 (x < ~-27.6, and in float64
    x > ~27.6) binary_cross_entropy's backward divides by 1e-12 instead, which scales the
    gradient down. Autograd gives exactly that gradient, g * (p - label) / max(p * (1 - p),
    1e-12) * (1 - p) * p, with PyTorch's 1e-12 a float32 constant (9.99999996e-13), in float64
    too. One difference from F.binary_cross_entropy: a NaN x gives a NaN loss
    and a NaN gradient (as in the other modes) where it refuses a NaN probability with an error.
    Outside CUDA's autocast, which refuses binary_cross_entropy.
    """
    with torch.autocast("cuda", enabled=False) if x.is_cuda else contextlib.nullcontext():
        p = torch.sigmoid(x)
        nan = torch.isnan(p)
        bce = F.binary_cross_entropy(torch.where(nan, 0.5, p), torch.full_like(p, label),
                                     reduction="none")
        # p where it is NaN: NaN loss, and a NaN gradient through sigmoid's backward.
        return torch.where(nan, p, bce)


def element_loss(x: torch.Tensor, target: str | float, mode: str) -> torch.Tensor:
    """The loss of every element of x (already head-selected), same shape."""
    if mode in ("lsgan", "nsgan", "sigmoid_bce"):
        label = TARGET_LABELS[target] if isinstance(target, str) else float(target)
        if mode == "lsgan":
            return (x - label) ** 2
        if mode == "sigmoid_bce":
            return sigmoid_bce(x, label)
        return F.binary_cross_entropy_with_logits(x, torch.full_like(x, label), reduction="none")
    if target == "generator":
        return -x
    if mode == "hinge":
        return torch.relu(1.0 - x) if target == "real" else torch.relu(1.0 + x)
    if mode == "wgan":
        return -x if target == "real" else x
    raise ValueError(f"mode: expected one of 'lsgan', 'nsgan', 'hinge', 'wgan', 'sigmoid_bce', "
                     f"got {mode!r}")


def gan_loss(
    outputs: torch.Tensor | list[torch.Tensor],
    target: str | float,
    mode: str,
    domain: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Sum over scales of each scale's reduced element loss.

    reduction "mean": the scale's mean over all its (selected) elements; "sum": their sum;
    "none": (N,), the scale's mean over each sample's elements.
    """
    scales = [outputs] if isinstance(outputs, torch.Tensor) else list(outputs)
    total = None
    for x in scales:
        selected = select_heads(x, domain).to(compute_dtype(x))
        losses = element_loss(selected, target, mode)
        if reduction == "mean":
            term = losses.mean()
        elif reduction == "sum":
            term = losses.sum()
        elif reduction == "none":
            term = losses.reshape(losses.shape[0], -1).mean(1)
        else:
            raise ValueError(f"reduction: expected 'mean', 'sum' or 'none', got {reduction!r}")
        total = term if total is None else total + term
    return total


def r1_penalty(grads: torch.Tensor, weight: float = 1.0, reduction: str = "mean") -> torch.Tensor:
    """weight * reduce_n(sum of grads[n]^2 over all non-batch elements).

    StarGAN v2: ``0.5 * grad.pow(2).view(N, -1).sum(1).mean(0)`` = weight 0.5, "mean";
    TUNIT: ``grad.pow(2).sum() / N`` = weight 1, "mean".
    """
    g = grads.to(compute_dtype(grads))
    per_sample = g.pow(2).reshape(g.shape[0], -1).sum(1)
    if reduction == "mean":
        return weight * per_sample.mean()
    if reduction == "sum":
        return weight * per_sample.sum()
    if reduction == "none":
        return weight * per_sample
    raise ValueError(f"reduction: expected 'mean', 'sum' or 'none', got {reduction!r}")
