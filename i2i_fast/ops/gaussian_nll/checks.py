"""The argument checks of the Gaussian NLL operators: one function per operator.

The one definition that every Python entry point runs: the public function (``__init__``), the
Triton operators (``triton.py``) and the fake implementations (``fake.py``).
``csrc/gaussian_nll/checks.h`` is the C++ mirror for the compiled kernels: the same checks in the
same order with the same words (tests/test_operator_checks.py compares them on every entry point).

Shapes: z, mu and logvar are one shape (N, ...) (a batch dimension first; no broadcasting: a
style code and the encoder's posterior of it always have the same shape), one dtype and one
device.
"""

from __future__ import annotations

import torch

from .. import checks

REDUCTIONS = ("batch_sum", "sum", "mean")


def gaussian_nll(z, mu, logvar, reduction, op: str = "gaussian_nll") -> None:
    checks.batched(op, "z", z, 1, "(N, ...) with a batch dimension")
    for name, t in (("mu", mu), ("logvar", logvar)):
        checks.tensor(op, name, t)
        if t.shape != z.shape:
            raise ValueError(f"{op}: {name}: expected the shape of z {tuple(z.shape)}, got "
                             f"{tuple(t.shape)}")
        if t.dtype != z.dtype:
            raise TypeError(f"{op}: {name}: expected dtype {z.dtype} (that of z), got {t.dtype}")
        if t.device != z.device:
            raise ValueError(f"{op}: {name}: expected device {z.device} (that of z), got "
                             f"{t.device}")
    checks.choice(op, "reduction", reduction, REDUCTIONS)


def gaussian_nll_backward(grad_loss, z, mu, logvar, reduction) -> None:
    """The forward checks, then grad_loss: a floating scalar on the device of z."""
    op = "gaussian_nll_backward"
    gaussian_nll(z, mu, logvar, reduction, op)
    checks.loss_grad(op, grad_loss, reduction, z, "z")
