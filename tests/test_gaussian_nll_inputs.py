"""The Gaussian NLL's bad inputs through the public function and the loss (each error names the
argument, what was expected and what came), and its backend choice."""

from __future__ import annotations

import pytest
import torch

import i2i_fast.ops as ops
from i2i_fast.losses import gaussian_nll as loss_gaussian_nll

Z = torch.zeros(2, 8)


@pytest.mark.parametrize("args, error, message", [
    ((Z.long(), Z, Z), TypeError, "gaussian_nll: z: expected a floating tensor"),
    ((torch.tensor(1.0), torch.tensor(1.0), torch.tensor(1.0)), ValueError,
     r"gaussian_nll: z: expected shape \(N, ...\) with a batch dimension, got shape \(\)"),
    ((torch.zeros(0, 8), torch.zeros(0, 8), torch.zeros(0, 8)), ValueError,
     r"gaussian_nll: z: expected a non-empty tensor, got shape \(0, 8\)"),
    ((Z, torch.zeros(2, 7), Z), ValueError,
     r"gaussian_nll: mu: expected the shape of z \(2, 8\), got \(2, 7\)"),
    ((Z, Z, torch.zeros(8)), ValueError,
     r"gaussian_nll: logvar: expected the shape of z \(2, 8\), got \(8,\)"),
    ((Z, Z.double(), Z), TypeError,
     r"gaussian_nll: mu: expected dtype torch.float32 \(that of z\), got torch.float64"),
    ((Z, Z, Z.half()), TypeError,
     r"gaussian_nll: logvar: expected dtype torch.float32 \(that of z\), got torch.float16"),
    ((Z, Z, Z.tolist()), TypeError, "gaussian_nll: logvar: expected a torch.Tensor, got list"),
    ((Z, Z, Z, "median"), ValueError,
     "gaussian_nll: reduction: expected one of 'batch_sum', 'sum', 'mean', got 'median'"),
    ((Z, Z, Z, "none"), ValueError, "gaussian_nll: reduction: expected one of"),
    ((Z, Z, torch.zeros(2, 8, device="meta")), ValueError,
     r"gaussian_nll: logvar: expected device cpu \(that of z\), got meta"),
])
def test_bad_arguments_are_named(args, error, message):
    for fn in (ops.gaussian_nll, loss_gaussian_nll):
        with pytest.raises(error, match=message):
            fn(*args)


def test_broadcasting_is_refused_not_guessed():
    """A (1, D) prior against (N, D) codes: expand it explicitly (no silent broadcast)."""
    with pytest.raises(ValueError, match=r"mu: expected the shape of z \(4, 8\), got \(1, 8\)"):
        ops.gaussian_nll(torch.zeros(4, 8), torch.zeros(1, 8), torch.zeros(4, 8))


def test_the_automatic_backend_is_the_compiled_kernel_on_the_cpu():
    if ops.get_backend("cpu").unavailable_reason() is not None:
        pytest.skip("the compiled extension is not loaded")
    assert ops.chosen_backend("gaussian_nll", Z) == "cpu"


def test_a_forced_backend_runs_and_agrees():
    z, mu, logvar = torch.randn(3, 2, 8, dtype=torch.float64).unbind(0)
    expected = ops.reference.gaussian_nll(z, mu, logvar)
    for backend in ops.backend_names():
        if ops.get_backend(backend).reason("gaussian_nll", z) is not None:
            continue
        with ops.use_backend(backend):
            torch.testing.assert_close(ops.gaussian_nll(z, mu, logvar), expected, rtol=1e-12,
                                       atol=0)


def test_the_loss_is_the_operator():
    """losses.gaussian_nll (MISO's MILO) runs the operator: the same result, bit for bit."""
    z, mu, logvar = torch.randn(3, 4, 8).unbind(0)
    for reduction in ("batch_sum", "sum", "mean"):
        assert torch.equal(loss_gaussian_nll(z, mu, logvar, reduction),
                           ops.gaussian_nll(z, mu, logvar, reduction))
