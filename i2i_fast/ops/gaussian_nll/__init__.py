"""The Gaussian latent terms: the losses on a variational encoder's Gaussian (mu, logvar), fused.

- ``gaussian_nll(z, mu, logvar, reduction)``: MISO's MILO, -log N(z; mu, exp(logvar)) without its
  constant, per element logvar / 2 + t^2 / 2 with t = (z - mu) * exp(-logvar / 2), reduced. One
  pass over the three inputs forward, one backward (writing the gradients of z, mu and logvar:
  with the upstream gradient g of an element, dz = g t exp(-logvar / 2), dmu = -dz, dlogvar =
  g (1 - t^2) / 2).
- ``gaussian_kl(mu, logvar, reduction)``: KL(N(mu, diag exp(logvar)) || N(0, I)), per element
  -(1 + logvar - mu^2 - exp(logvar)) / 2, reduced (DRIT's, BicycleGAN's and MISO's KL term). One
  pass over the two inputs forward, one backward (dmu = g mu, dlogvar = g (exp(logvar) - 1) / 2).

The definitions are ``reference``; every backend computes them without overflow where the result
is finite (see reference.py and csrc/gaussian_nll/common.h). Both are sums of per-element terms
and share the argument checks, the reductions and the kernels' skeleton on every device.

Differentiable once in reverse mode (their backward is not differentiable again: a second
derivative raises an error naming gaussian_nll_backward / gaussian_kl_backward), and in forward
mode (torch.func.jvp, torch.autograd.forward_ad) on every backend but Triton, which refuses inputs
with tangents (see ``backends``).

dtypes: float16, bfloat16, float32, float64 inputs (all of one dtype); the loss is float32
(float64 for float64) with float32 accumulation folded in float64; the gradients have the dtype
of the inputs and are contiguous.
"""

from __future__ import annotations

import torch

from .. import extension, triton_support
from ..backends import implement, select
from . import checks, reference
from .checks import REDUCTIONS

OPS = ("gaussian_nll", "gaussian_kl")


def gaussian_nll(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                 reduction: str = "batch_sum") -> torch.Tensor:
    """-log N(z; mu, exp(logvar)) + const, reduced.

    Args:
        z: (N, ...), the code (e.g. MISO's (N, 8) style code).
        mu, logvar: the Gaussian's mean and log-variance, each the shape, dtype and device of z
            (no broadcasting).
        reduction: "batch_sum" (summed over every non-batch element, averaged over N: MISO's
            MILO), "sum" or "mean" (over every element).
    Returns:
        A float32 scalar (float64 for float64 inputs).
    """
    checks.gaussian_nll(z, mu, logvar, reduction)
    return select("gaussian_nll", z)(z, mu, logvar, reduction)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)), reduced.

    Args:
        mu, logvar: (N, ...), the posterior's mean and log-variance (e.g. DRIT's (N, 8) attribute
            code), one shape, dtype and device (no broadcasting).
        reduction: "sum" (over every element: DRIT's and BicycleGAN's, before their 0.01
            weight), "batch_sum" (summed over every non-batch element, averaged over N: MISO's)
            or "mean" (over every element).
    Returns:
        A float32 scalar (float64 for float64 inputs).
    """
    checks.gaussian_kl(mu, logvar, reduction)
    return select("gaussian_kl", mu)(mu, logvar, reduction)


implement("reference", "gaussian_nll", reference.gaussian_nll)
implement("reference", "gaussian_kl", reference.gaussian_kl)
if extension.state().loaded:
    from . import fake as _fake

    _fake.register()
    # One torch operator per term on both devices: the dispatcher runs the CPU or the CUDA kernel
    # by the device of the inputs. Its autograd kernel computes forward-mode derivatives too
    # (csrc/gaussian_nll/gaussian_nll_ops.cpp).
    for _backend in ("cpu", "cuda"):
        implement(_backend, "gaussian_nll", torch.ops.i2i_fast.gaussian_nll.default,
                  forward_ad=True)
        implement(_backend, "gaussian_kl", torch.ops.i2i_fast.gaussian_kl.default,
                  forward_ad=True)
if triton_support.state().unavailable_reason is None:
    from . import triton as _triton

    implement("triton", "gaussian_nll", _triton.gaussian_nll)
    implement("triton", "gaussian_kl", _triton.gaussian_kl)

__all__ = ["OPS", "REDUCTIONS", "gaussian_kl", "gaussian_nll"]
