"""The KL term's bad inputs through the public function and the loss (each error names the
argument, what was expected and what came), its backend choice, and the loss running on it."""

from __future__ import annotations

import pytest
import torch

import i2i_fast.ops as ops
from i2i_fast.losses import kl_standard_normal

MU = torch.zeros(2, 8)


@pytest.mark.parametrize("args, error, message", [
    ((torch.tensor(1.0), torch.tensor(1.0)), ValueError,
     r"gaussian_kl: mu: expected shape \(N, ...\) with a batch dimension, got shape \(\)"),
    ((torch.zeros(0, 8), torch.zeros(0, 8)), ValueError,
     r"gaussian_kl: mu: expected a non-empty tensor, got shape \(0, 8\)"),
    ((MU, MU.double()), TypeError,
     r"gaussian_kl: logvar: expected dtype torch.float32 \(that of mu\), got torch.float64"),
    ((MU, MU, "median"), ValueError,
     "gaussian_kl: reduction: expected one of 'batch_sum', 'sum', 'mean', got 'median'"),
    ((MU, MU, "none"), ValueError, "gaussian_kl: reduction: expected one of"),
    ((MU, torch.zeros(2, 8, device="meta")), ValueError,
     r"gaussian_kl: logvar: expected device cpu \(that of mu\), got meta"),
])
def test_bad_arguments_are_named_by_the_operator_and_the_loss(args, error, message):
    for fn in (ops.gaussian_kl, kl_standard_normal):
        with pytest.raises(error, match=message):
            fn(*args)


@pytest.mark.parametrize("args, error, message", [
    ((MU, torch.zeros(2, 7)), ValueError,
     r"gaussian_kl: logvar: expected the shape of mu \(2, 8\), got \(2, 7\)"),
    ((MU, torch.zeros(8)), ValueError,
     r"gaussian_kl: logvar: expected the shape of mu \(2, 8\), got \(8,\)"),
    ((MU, MU.tolist()), TypeError, "gaussian_kl: logvar: expected a torch.Tensor, got list"),
    ((MU.tolist(), MU), TypeError, "gaussian_kl: mu: expected a torch.Tensor, got list"),
    ((MU.long(), MU.long()), TypeError, "gaussian_kl: mu: expected a floating tensor"),
    ((MU, MU.long()), TypeError,
     r"gaussian_kl: logvar: expected dtype torch.float32 \(that of mu\), got torch.int64"),
])
def test_bad_arguments_are_named_by_the_operator(args, error, message):
    """(The loss checks these first, naming itself: tests/test_method_toolkit.py.)"""
    with pytest.raises(error, match=message):
        ops.gaussian_kl(*args)


def test_broadcasting_is_refused_not_guessed():
    with pytest.raises(ValueError, match=r"logvar: expected the shape of mu \(4, 8\), got "
                                         r"\(1, 8\)"):
        ops.gaussian_kl(torch.zeros(4, 8), torch.zeros(1, 8))


def test_the_automatic_backend_is_the_compiled_kernel_on_the_cpu():
    if ops.get_backend("cpu").unavailable_reason() is not None:
        pytest.skip("the compiled extension is not loaded")
    assert ops.chosen_backend("gaussian_kl", MU) == "cpu"


def test_a_forced_backend_runs_and_agrees():
    mu, logvar = torch.randn(2, 2, 8, dtype=torch.float64).unbind(0)
    for reduction in ("sum", "batch_sum", "mean"):
        expected = ops.reference.gaussian_kl(mu, logvar, reduction)
        for backend in ops.backend_names():
            if ops.get_backend(backend).reason("gaussian_kl", mu) is not None:
                continue
            with ops.use_backend(backend):
                torch.testing.assert_close(ops.gaussian_kl(mu, logvar, reduction), expected,
                                           rtol=1e-12, atol=0)


def test_the_default_reduction_is_the_sum():
    """DRIT's and BicycleGAN's: the sum over every element (before their 0.01 weight)."""
    mu, logvar = torch.randn(2, 4, 8, dtype=torch.float64).unbind(0)
    assert torch.equal(ops.gaussian_kl(mu, logvar), ops.gaussian_kl(mu, logvar, "sum"))
    assert torch.equal(kl_standard_normal(mu, logvar), ops.gaussian_kl(mu, logvar, "sum"))


def test_the_loss_is_the_operator():
    """losses.kl_standard_normal (DRIT, BicycleGAN, MISO) runs the operator: the same result,
    bit for bit, and the same gradients."""
    mu, logvar = torch.randn(2, 4, 8).unbind(0)
    for reduction in ("batch_sum", "sum", "mean"):
        assert torch.equal(kl_standard_normal(mu, logvar, reduction),
                           ops.gaussian_kl(mu, logvar, reduction))
    a = [t.clone().requires_grad_() for t in (mu, logvar)]
    b = [t.clone().requires_grad_() for t in (mu, logvar)]
    kl_standard_normal(*a, "batch_sum").backward()
    ops.gaussian_kl(*b, "batch_sum").backward()
    for x, y in zip(a, b):
        assert torch.equal(x.grad, y.grad)
