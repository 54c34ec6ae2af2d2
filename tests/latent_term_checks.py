"""What the tests of the Gaussian latent terms (gaussian_nll, gaussian_kl) share: ``Term``, what
a parametrised test needs to know of each operator (test_latent_term_operators.py,
test_triton_latent_terms.py); and for the value tests (test_gaussian_nll_values.py,
test_gaussian_kl_values.py) the backends that run an operator, its loss and input gradients on a
backend, the comparison with the float64 reference, the thread-count check, and rounding a
float64 value to a dtype."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

import i2i_fast.ops as ops
from helpers import TOLERANCE, rel_err, threads

F64 = torch.float64


@dataclasses.dataclass(frozen=True)
class Term:
    """One latent-term operator: ops.<name>(*inputs, reduction)."""

    name: str
    inputs: tuple[str, ...]  # its tensor arguments: (z,) mu, logvar
    reductions: tuple[str, ...]  # the first is the operator's default
    needs: tuple[tuple[bool, ...], ...]  # requires_grad patterns to try
    second_reduction: str  # of the second call in the Triton compile test

    def __str__(self) -> str:
        return self.name

    @property
    def arity(self) -> int:
        return len(self.inputs)

    @property
    def fused(self) -> Callable:
        return getattr(ops, self.name)

    @property
    def reference(self) -> Callable:
        return getattr(ops.reference, self.name)


NLL = Term("gaussian_nll", ("z", "mu", "logvar"), ("batch_sum", "sum", "mean"),
           ((True, False, False), (False, True, True), (False, False, True)), "mean")
KL = Term("gaussian_kl", ("mu", "logvar"), ("sum", "batch_sum", "mean"),
          ((True, False), (False, True), (True, True)), "batch_sum")
TERMS = (NLL, KL)


def backends(op: str) -> list[str]:
    return [b for b in ops.backend_names()
            if ops.get_backend(b).reason(op, torch.zeros(1, 1)) is None]


def loss_and_grads(op: str, inputs, reduction: str, grad: float = 2.5):
    """The loss of ops.<op>(*inputs, reduction) and the gradients of every input for an upstream
    gradient `grad`."""
    leaves = [t.detach().requires_grad_() for t in inputs]
    loss = getattr(ops, op)(*leaves, reduction)
    grads = torch.autograd.grad(loss, leaves, torch.tensor(grad, dtype=loss.dtype))
    return loss.detach(), grads


def check(op: str, names: tuple[str, ...], inputs, reduction: str, backend: str, dtype) -> None:
    """The loss and the gradients of `backend` against the reference on the inputs in float64:
    the loss float32 (float64 for float64) and a scalar, the gradients the inputs' dtype and
    shape, each within the dtype's tolerance."""
    with ops.use_backend(backend):
        loss, grads = loss_and_grads(op, inputs, reduction)
    with ops.use_backend("reference"):
        ref_loss, ref_grads = loss_and_grads(op, [t.detach().double() for t in inputs], reduction)
    assert loss.dtype == (F64 if dtype == F64 else torch.float32) and loss.shape == ()
    assert rel_err(loss, ref_loss) <= TOLERANCE[dtype], (backend, reduction)
    for name, g, r, x in zip(names, grads, ref_grads, inputs):
        assert g.dtype == x.dtype and g.shape == x.shape, name
        assert rel_err(g, r) <= TOLERANCE[dtype], (backend, reduction, name)


def check_thread_count_independence(op: str, inputs, reduction: str) -> None:
    """The cpu backend's loss and gradients are the same bits on 1 and on 2 threads."""
    results = []
    for n in (1, 2):
        with threads(n), ops.use_backend("cpu"):
            results.append(loss_and_grads(op, inputs, reduction))
    assert torch.equal(results[0][0], results[1][0])
    for a, b in zip(results[0][1], results[1][1]):
        assert torch.equal(a, b)


def as_dtype(value: float, dtype) -> float:
    """value rounded to dtype: inf beyond its range."""
    return float(torch.tensor(value, dtype=F64).to(dtype))
