"""Reference definitions of the Gaussian latent terms: the specification the fused kernels are
tested against.

``gaussian_nll``, the Gaussian negative log-likelihood (MISO's MILO). Per element, with
t = (z - mu) * exp(-logvar / 2) (the error in standard deviations):

    e = logvar / 2 + t^2 / 2      (= -log N(z; mu, exp(logvar)) - log(2 pi) / 2)

the formula of MISO's MILO (i2i_fast/methods/miso.py), logvar / 2 + (z - mu)^2 exp(-logvar) / 2,
written so that no factor overflows where the result does not: exp(-logvar) is applied as two
factors exp(-logvar / 4), each finite in float32 for |logvar| < 4 * 88 = 352 (float64: 2836),
and the error is scaled by them one after the other. (exp(-logvar) alone overflows float32 at
logvar < -88, exp(-logvar / 2) at logvar < -176, even where (z - mu) is small enough for the
result to be finite.) Beyond that range this definition gives NaN where z == mu exactly; the
kernels give the true (finite) value there (csrc/gaussian_nll/common.h).

``gaussian_kl``, KL(N(mu, diag exp(logvar)) || N(0, I)) of a variational encoder's posterior
(DRIT's, BicycleGAN's, MISO's): the official codes' formula in their order,
-1/2 * reduce((1 - (mu^2 + exp(logvar))) + logvar) (DRIT src/model.py, BicycleGAN
models/bicycle_gan_model.py; the loss ``i2i_fast.losses.kl_standard_normal`` runs the
operator). exp(logvar) overflows float32 at logvar > 88.7, where half of it (the element's true
value) may still be finite; the kernels give the true value there (csrc/gaussian_nll/common.h).

Reductions, of both: "batch_sum" (MISO's: summed over every non-batch element, averaged over the
batch dimension), "sum" (over every element), "mean" (over every element). float16/bfloat16
inputs are computed in float32 and the loss is float32, as the kernels' float32 accumulation;
float64 stays float64.

Differentiable by autograd (twice, and in forward mode). The function does not validate its
arguments: ``i2i_fast.ops`` does that before any backend runs.
"""

from __future__ import annotations

import torch


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def element_nll(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """logvar / 2 + t^2 / 2 with t = (z - mu) * exp(-logvar / 4) * exp(-logvar / 4), elementwise,
    in the inputs' dtype."""
    s = torch.exp(-0.25 * logvar)
    t = (z - mu) * s * s
    return 0.5 * logvar + 0.5 * (t * t)


def reduce(elements: torch.Tensor, reduction: str) -> torch.Tensor:
    """The elements of a term (N, ...) reduced: "batch_sum" (summed, divided by N), "sum" or
    "mean" (over every element)."""
    if reduction == "batch_sum":
        return elements.sum() / elements.shape[0]
    if reduction == "sum":
        return elements.sum()
    if reduction == "mean":
        return elements.mean()
    raise ValueError(f"reduction: expected 'batch_sum', 'sum' or 'mean', got {reduction!r}")


def gaussian_nll(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                 reduction: str = "batch_sum") -> torch.Tensor:
    """The reduced element NLL of z (N, ...) under N(mu, exp(logvar)), each the shape of z."""
    dtype = compute_dtype(z)
    return reduce(element_nll(z.to(dtype), mu.to(dtype), logvar.to(dtype)), reduction)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """The reduced KL(N(mu, exp(logvar)) || N(0, 1)) of every element of mu (N, ...) and logvar
    (its shape): the official codes' -1/2 * reduce(1 + logvar - mu^2 - exp(logvar)), in their
    order."""
    dtype = compute_dtype(mu)
    mu, logvar = mu.to(dtype), logvar.to(dtype)
    return reduce((1 - (mu.pow(2) + logvar.exp())) + logvar, reduction) * -0.5
