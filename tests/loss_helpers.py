"""Shared helpers of the GAN loss tests: inputs per method, and comparisons against float64."""

from __future__ import annotations

import torch

import i2i_fast.ops as ops

# Every mode with every target it takes (numeric labels: lsgan and nsgan only).
MODE_TARGETS = [
    ("lsgan", "real"), ("lsgan", "fake"), ("lsgan", "generator"), ("lsgan", 0.5), ("lsgan", 0.3),
    ("nsgan", "real"), ("nsgan", "fake"), ("nsgan", "generator"), ("nsgan", 0.5), ("nsgan", 0.9),
    ("hinge", "real"), ("hinge", "fake"), ("hinge", "generator"),
    ("wgan", "real"), ("wgan", "fake"), ("wgan", "generator"),
]
REDUCTIONS = ("mean", "sum", "none")

# Output shapes per scale (without the batch dimension), one list per case.
SCALE_SETS = {
    "1x1": [(1, 1, 1)],
    "3x3": [(1, 3, 3)],
    "16x16": [(1, 16, 16)],
    "30x30": [(1, 30, 30)],  # BicycleGAN's patch map
    "flat": [()],  # one logit per sample, shape (N,)
    "munit": [(1, 16, 16), (1, 8, 8), (1, 4, 4)],
    "bicyclegan": [(1, 30, 30), (1, 14, 14)],
    "odd4": [(1, 1, 1), (1, 3, 3), (1, 16, 16), (1, 30, 30)],
}
# With a domain: (K, ...) per scale.
HEAD_SETS = {
    "K3": [(3,)],  # StarGAN v2: (N, K)
    "K10": [(10,)],  # TUNIT's pseudo-domains
    "K3x3x3": [(3, 3, 3)],
    "K4-2scales": [(4, 5, 5), (4, 1, 1)],
    "K-differs": [(5, 2, 2), (3,)],  # indices must lie below the smallest K
}

# Tolerance on max|actual - expected| / max|expected| for the loss (always accumulated in float32
# at least) and for the gradients (rounded to the input dtype).
LOSS_TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-5, torch.float16: 1e-5,
                  torch.bfloat16: 1e-5}
GRAD_TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-6, torch.float16: 1e-3,
                  torch.bfloat16: 8e-3}


def make_outputs(batch: int, shapes, dtype, seed: int = 0, spread: float = 2.0):
    """One tensor per scale, (batch, *shape), values around 0 and ±1 exactly representable."""
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn((batch, *s), generator=g, dtype=torch.float64) * spread + 0.1).to(dtype)
            for s in shapes]


def make_domain(batch: int, heads: int, seed: int = 0, dtype=torch.int64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed + 100)
    return torch.randint(0, heads, (batch,), generator=g).to(dtype)


def upstream(reduction: str, batch: int, seed: int = 1) -> torch.Tensor:
    """A random upstream gradient of the loss (float64)."""
    g = torch.Generator().manual_seed(seed)
    shape = (batch,) if reduction == "none" else ()
    return torch.randn(shape, generator=g, dtype=torch.float64) + 1.5


def close(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max|actual - expected| / max|expected| (NaN and ±Inf positions must agree)."""
    a, e = actual.detach().double(), expected.detach().double()
    if not torch.equal(torch.isnan(a), torch.isnan(e)):
        return float("inf")
    if not torch.equal(torch.isinf(a) & (a > 0), torch.isinf(e) & (e > 0)):
        return float("inf")
    if not torch.equal(torch.isinf(a) & (a < 0), torch.isinf(e) & (e < 0)):
        return float("inf")
    finite = torch.isfinite(e)
    a, e = a[finite], e[finite]
    if e.numel() == 0:
        return 0.0
    scale = max(e.abs().max().item(), 1e-12)
    return (a - e).abs().max().item() / scale


def loss_and_grads(fn, outputs, target, mode, domain, reduction, grad_loss):
    """fn's loss and the gradient of every output, each output a fresh leaf."""
    leaves = [x.detach().clone().requires_grad_() for x in outputs]
    loss = fn(leaves, target, mode, domain=domain, reduction=reduction)
    grads = torch.autograd.grad(loss, leaves, grad_loss.to(loss.dtype))
    return loss.detach(), grads


def reference64(outputs, target, mode, domain, reduction, grad_loss):
    """The float64 reference loss and gradients on the same input values."""
    return loss_and_grads(ops.reference.gan_loss, [x.double() for x in outputs], target, mode,
                          domain, reduction, grad_loss)
