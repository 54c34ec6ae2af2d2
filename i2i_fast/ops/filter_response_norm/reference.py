"""Reference definition of filter response normalization with a thresholded linear unit.

Plain PyTorch, as TUNIT's discriminator computes it (models/blocks.py, class FRN; Singh &
Krishnan, CVPR 2020), differentiable by autograd to any order. float16/bfloat16 inputs are
computed in float32 and the result cast back, as the fused kernels accumulate; float64 stays
float64. The arguments are not validated here: ``i2i_fast.ops`` checks them before any backend
runs.

``filter_response_norm_backward`` is the same function's gradient written out, in plain PyTorch
and itself differentiable: the Triton backend runs it in place of its backward kernel when the
gradient must be differentiated again (``create_graph=True``, e.g. TUNIT's R1 penalty through
the discriminator); the compiled backends have a fused double backward operator instead.
"""

from __future__ import annotations

import torch

from ..normalization.reference import compute_dtype

SPATIAL = (2, 3)


def _per_channel(p: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(C,) → (1, C, 1, 1) in the computation's dtype."""
    return p.to(dtype).view(1, -1, 1, 1)


def filter_response_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                         tau: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """max(weight · x · rsqrt(mean over (H, W) of x² + eps) + bias, tau), per-channel (C,)
    weight, bias and tau; at a tie torch.maximum gives each side half the gradient."""
    dtype = compute_dtype(x)
    xf = x.to(dtype)
    xf = xf * torch.rsqrt(torch.mean(xf ** 2, dim=SPATIAL, keepdim=True) + eps)
    y = torch.maximum(_per_channel(weight, dtype) * xf + _per_channel(bias, dtype),
                      _per_channel(tau, dtype))
    return y.to(x.dtype)


def filter_response_norm_backward(grad_out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor,
                                  bias: torch.Tensor, tau: torch.Tensor, eps: float = 1e-6):
    """(grad_x, grad_weight, grad_bias, grad_tau) of ``filter_response_norm`` for `grad_out`.

    With r = rsqrt(mean(x²) + eps) and xhat = x · r per (n, c) over H·W elements, z = w · xhat + b:
        g       = grad_out where z wins the max (half at a tie, all of it where z or tau is NaN)
        grad_x  = w · r · (g - xhat · mean(g · xhat))
        grad_w  = Σ g · xhat,  grad_b = Σ g,  grad_tau = Σ of grad_out where tau wins (half at a tie)
    the sums over N, H and W. Differentiable (the masks are constants, as torch.maximum's are).
    """
    dtype = compute_dtype(x)
    xf, gf = x.to(dtype), grad_out.to(dtype)
    w = _per_channel(weight, dtype)
    r = torch.rsqrt(torch.mean(xf ** 2, dim=SPATIAL, keepdim=True) + eps)
    xhat = xf * r
    z = w * xhat + _per_channel(bias, dtype)
    t = _per_channel(tau, dtype)
    tie = (z == t).to(dtype) * 0.5
    g = gf * (1 - (z < t).to(dtype) - tie)
    g_tau = gf * (1 - (z > t).to(dtype) - tie)
    gx = w * r * (g - xhat * torch.mean(g * xhat, dim=SPATIAL, keepdim=True))
    per_channel = (0,) + SPATIAL
    return (gx.to(x.dtype), (g * xhat).sum(per_channel).to(weight.dtype),
            g.sum(per_channel).to(bias.dtype), g_tau.sum(per_channel).to(tau.dtype))
