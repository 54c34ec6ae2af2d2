"""The argument checks of the Gaussian latent terms (gaussian_nll, gaussian_kl): one function per
operator.

The one definition that every Python entry point runs: the public functions (``__init__``), the
Triton operators (``triton.py``) and the fake implementations (``fake.py``).
``csrc/gaussian_nll/checks.h`` is the C++ mirror for the compiled kernels: the same checks in the
same order with the same words (tests/test_operator_checks.py compares them on every entry point).

Shapes: an operator's inputs (z, mu, logvar; mu, logvar) are one shape (N, ...) (a batch dimension
first; no broadcasting: a style code and the encoder's posterior of it always have the same
shape), one dtype and one device. The first input is checked first, the others against it.
"""

from __future__ import annotations

import torch

from .. import checks

REDUCTIONS = ("batch_sum", "sum", "mean")


def _mismatch(first_name: str, first: torch.Tensor, t: torch.Tensor):
    """(error, expected, got) for the first way t differs from the first input, else None."""
    if t.shape != first.shape:
        return ValueError, f"the shape of {first_name} {tuple(first.shape)}", tuple(t.shape)
    if t.dtype != first.dtype:
        return TypeError, f"dtype {first.dtype} (that of {first_name})", t.dtype
    if t.device != first.device:
        return ValueError, f"device {first.device} (that of {first_name})", t.device
    return None


def latent_term(op: str, inputs: tuple[tuple[str, object], ...], reduction) -> None:
    """inputs: (name, tensor) pairs; the first (N, ...), every other of its shape, dtype and
    device; then the reduction."""
    first_name, first = inputs[0]
    checks.batched(op, first_name, first, 1, "(N, ...) with a batch dimension")
    for name, t in inputs[1:]:
        wrong = _mismatch(first_name, first, checks.tensor(op, name, t))
        if wrong is not None:
            error, expected, got = wrong
            raise error(f"{op}: {name}: expected {expected}, got {got}")
    checks.choice(op, "reduction", reduction, REDUCTIONS)


def gaussian_nll(z, mu, logvar, reduction, op: str = "gaussian_nll") -> None:
    latent_term(op, (("z", z), ("mu", mu), ("logvar", logvar)), reduction)


def gaussian_nll_backward(grad_loss, z, mu, logvar, reduction) -> None:
    """The forward checks, then grad_loss: a floating scalar on the device of z."""
    op = "gaussian_nll_backward"
    gaussian_nll(z, mu, logvar, reduction, op)
    checks.loss_grad(op, grad_loss, reduction, z, "z")


def gaussian_kl(mu, logvar, reduction, op: str = "gaussian_kl") -> None:
    latent_term(op, (("mu", mu), ("logvar", logvar)), reduction)


def gaussian_kl_backward(grad_loss, mu, logvar, reduction) -> None:
    """The forward checks, then grad_loss: a floating scalar on the device of mu."""
    op = "gaussian_kl_backward"
    gaussian_kl(mu, logvar, reduction, op)
    checks.loss_grad(op, grad_loss, reduction, mu, "mu")
