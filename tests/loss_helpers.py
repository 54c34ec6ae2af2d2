"""Shared helpers of the GAN loss tests: inputs per method, and comparisons against float64."""

from __future__ import annotations

import math

import torch

import i2i_fast.ops as ops
from i2i_fast.ops.gan_loss.reference import TARGET_LABELS

# Every mode with every target it takes (numeric labels: lsgan, nsgan and sigmoid_bce only;
# sigmoid_bce's in [0, 1]: DRIT's content discriminator's encoder target is 0.5).
MODE_TARGETS = [
    ("lsgan", "real"), ("lsgan", "fake"), ("lsgan", "generator"), ("lsgan", 0.5), ("lsgan", 0.3),
    ("nsgan", "real"), ("nsgan", "fake"), ("nsgan", "generator"), ("nsgan", 0.5), ("nsgan", 0.9),
    ("hinge", "real"), ("hinge", "fake"), ("hinge", "generator"),
    ("wgan", "real"), ("wgan", "fake"), ("wgan", "generator"),
    ("sigmoid_bce", "real"), ("sigmoid_bce", "fake"), ("sigmoid_bce", "generator"),
    ("sigmoid_bce", 0.5), ("sigmoid_bce", 0.3),
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


# sigmoid_bce where DRIT's formula departs from BCE with logits: p = sigmoid(x) rounds to exactly
# 1 (float32 x > ~16.6, float64 x > ~36.7) or 0 (float32 x < ~-88.7, float64 x < ~-709.8), the
# backward's max(p (1 - p), 1e-12) clamps (x < ~-27.6, float64 also x > ~27.6), log p < -100
# clamps (float64 x < -100); and ±inf.
SIGMOID_BCE_EXTREMES = (-math.inf, -800.0, -200.0, -120.0, -100.5, -89.0, -50.0, -30.0, -28.0,
                        -20.0, -5.0, 0.0, 5.0, 16.0, 17.0, 20.0, 27.0, 28.0, 30.0, 36.0, 38.0,
                        50.0, 100.0, 800.0, math.inf)
SIGMOID_BCE_LABELS = ("real", "fake", 0.5, 0.3)


def check_sigmoid_bce_extremes(loss_fn, dtype, device="cpu") -> None:
    """loss_fn (ops.gan_loss on the backend under test) against the reference in the same dtype,
    element by element (each its own sample: reduction "none"), at SIGMOID_BCE_EXTREMES: the
    loss and the gradient to a relative 1e-12 (float64) or 1e-5 (float32), zeros exactly; where
    float32's p is exactly 1 or 0 the loss is 100 (1 - label) or 100 label and the gradient 0."""
    x = torch.tensor(SIGMOID_BCE_EXTREMES, dtype=dtype, device=device)[:, None]
    g = torch.linspace(0.5, 2.0, x.shape[0], dtype=torch.float64)
    rtol = 1e-12 if dtype == torch.float64 else 1e-5
    for target in SIGMOID_BCE_LABELS:
        loss, (grad,) = loss_and_grads(loss_fn, [x], target, "sigmoid_bce", None, "none",
                                       g.to(device))
        ref, (ref_grad,) = loss_and_grads(ops.reference.gan_loss, [x.cpu()], target,
                                          "sigmoid_bce", None, "none", g)
        loss, grad = loss.cpu().double(), grad.cpu().double()
        ref, ref_grad = ref.double(), ref_grad.double()
        for name, got, want in (("loss", loss, ref), ("gradient", grad, ref_grad.flatten())):
            got = got.flatten()
            bad = ~(((got - want).abs() <= rtol * want.abs()) & (got.isfinite() == want.isfinite()))
            assert not bad.any(), (f"{target} {dtype} {name} at x = "
                                   f"{x.flatten()[bad].tolist()}: {got[bad].tolist()} vs the "
                                   f"reference's {want[bad].tolist()}")
        if dtype == torch.float32:
            label = TARGET_LABELS[target] if isinstance(target, str) else target
            one, zero = x.flatten().cpu() >= 17, x.flatten().cpu() <= -89
            saturated = torch.cat([loss[one] - 100 * (1 - label), loss[zero] - 100 * label])
            assert saturated.abs().max() <= 1e-5 * 100, (target, loss)
            assert torch.all(grad.flatten()[one | zero] == 0)
