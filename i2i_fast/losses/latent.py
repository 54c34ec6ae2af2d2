"""Terms on latent codes: the variational style/attribute encoders of DRIT++, BicycleGAN and MISO.

An encoder predicts a diagonal Gaussian (mu, logvar) per image, each (N, D) (or any shape, the
two equal). Formulas and rounding order follow the official codes (DRIT src/model.py,
BicycleGAN models/bicycle_gan_model.py):

- ``reparameterize``: z = eps · exp(logvar / 2) + mu, eps ~ N(0, I).
- ``kl_standard_normal``: KL(N(mu, exp(logvar)) || N(0, I)) = −1/2 · Σ (1 + logvar − mu² −
  exp(logvar)); "sum" over every element (DRIT and BicycleGAN, then weighted 0.01), "mean", or
  "batch_sum" (MISO), on the fused operator ``ops.gaussian_kl`` (its reference,
  ``ops.reference.gaussian_kl``, is the official codes' formula in their order).
- ``latent_regression``: mean |z_recovered − z| (DRIT: 10 · on the re-encoded mu; BicycleGAN:
  lambda_z 0.5).
- ``mode_seeking``: DRIT++'s 1 / (mean|G(c, z2) − G(c, z1)| / mean|z2 − z1| + eps).
- ``gaussian_nll``: −log N(z; mu, exp(logvar)) without the constant, i.e.
  logvar / 2 + (z − mu)² / (2 exp(logvar)) per element (MISO's MILO), on the fused operator
  ``ops.gaussian_nll`` (no overflow where the result is finite, for any logvar).
"""

from __future__ import annotations

import torch

from .. import ops


def _check_pair(owner: str, a_name: str, a: torch.Tensor, b_name: str, b: torch.Tensor) -> None:
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
        raise TypeError(f"{owner}: {a_name}, {b_name}: expected tensors, got "
                        f"{type(a).__name__}, {type(b).__name__}")
    if a.shape != b.shape:
        raise ValueError(f"{owner}: {b_name}: expected the shape of {a_name} {tuple(a.shape)}, "
                         f"got {tuple(b.shape)}")
    if not (a.is_floating_point() and b.is_floating_point()):
        raise TypeError(f"{owner}: {a_name}, {b_name}: expected floating point tensors, got "
                        f"{a.dtype}, {b.dtype}")


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor,
                   noise: torch.Tensor | None = None,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """z = noise · exp(logvar / 2) + mu, with noise ~ N(0, I) drawn here (from `generator`) unless
    given (the same shape as mu)."""
    _check_pair("reparameterize", "mu", mu, "logvar", logvar)
    if noise is None:
        noise = torch.randn(mu.shape, dtype=mu.dtype, device=mu.device, generator=generator)
    else:
        _check_pair("reparameterize", "mu", mu, "noise", noise)
    return noise * torch.exp(0.5 * logvar) + mu


def kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor,
                       reduction: str = "sum") -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) of every element, reduced ("sum": DRIT's and
    BicycleGAN's, before their 0.01 weight; "mean"; "batch_sum": per-sample KL averaged).

    mu, logvar: one shape (N, ...), dtype and device. The fused operator ``ops.gaussian_kl``
    (forward and backward in one pass each); the loss is float32 (float64 for float64 inputs)."""
    _check_pair("kl_standard_normal", "mu", mu, "logvar", logvar)
    return ops.gaussian_kl(mu, logvar, reduction)


def latent_regression(recovered: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """mean |recovered − z|: the code re-encoded from an image generated with z, against z."""
    _check_pair("latent_regression", "recovered", recovered, "z", z)
    return torch.mean(torch.abs(recovered - z))


def mode_seeking(images_1: torch.Tensor, images_2: torch.Tensor, z_1: torch.Tensor,
                 z_2: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """DRIT++'s mode-seeking term: 1 / (mean|images_2 − images_1| / mean|z_2 − z_1| + eps), for
    two generations of the same content from codes z_1, z_2 (minimised: it rewards outputs that
    differ as much as their codes do)."""
    _check_pair("mode_seeking", "images_1", images_1, "images_2", images_2)
    _check_pair("mode_seeking", "z_1", z_1, "z_2", z_2)
    ratio = torch.mean(torch.abs(images_2 - images_1)) / torch.mean(torch.abs(z_2 - z_1))
    return 1 / (ratio + eps)


def gaussian_nll(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                 reduction: str = "batch_sum") -> torch.Tensor:
    """−log N(z; mu, exp(logvar)) + const = logvar / 2 + (z − mu)² · exp(−logvar) / 2 per element,
    reduced ("batch_sum": summed over the code's dimensions, averaged over the batch; "sum";
    "mean"). MISO's MILO: the style encoder's likelihood of the code an image was generated from.

    z, mu, logvar: one shape (N, ...), dtype and device. The fused operator ``ops.gaussian_nll``
    (forward and backward in one pass each); the loss is float32 (float64 for float64 inputs)."""
    return ops.gaussian_nll(z, mu, logvar, reduction)
