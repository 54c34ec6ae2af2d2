"""ops.filter_response_norm: bad input gives errors naming the argument; the backend choice; the
nn block (TUNIT's FRN) runs on the operator."""

from __future__ import annotations

import math

import pytest
import torch

import i2i_fast.ops as ops
from i2i_fast.nn import FilterResponseNorm

X = torch.randn(2, 3, 4, 4)
C1 = torch.ones(3)
C0 = torch.zeros(3)
frn = ops.filter_response_norm


@pytest.mark.parametrize("call, error, pattern", [
    (lambda: frn(torch.zeros(2, 3, 4), C1, C0, C0), ValueError,
     r"filter_response_norm: x: expected shape \(N, C, H, W\), got 3 dims with shape \(2, 3, 4\)"),
    (lambda: frn(torch.zeros(2, 3, 4, 4, dtype=torch.int64), C1, C0, C0), TypeError,
     r"filter_response_norm: x: expected a floating tensor .* got torch.int64"),
    (lambda: frn([1.0], C1, C0, C0), TypeError,
     r"filter_response_norm: x: expected a torch.Tensor, got list"),
    (lambda: frn(torch.zeros(0, 3, 4, 4), C1, C0, C0), ValueError,
     r"filter_response_norm: x: expected a non-empty tensor, got shape \(0, 3, 4, 4\)"),
    (lambda: frn(X, torch.ones(4), C0, C0), ValueError,
     r"filter_response_norm: weight: expected shape \(3,\), got \(4,\)"),
    (lambda: frn(X, C1, torch.zeros(1, 3), C0), ValueError,
     r"filter_response_norm: bias: expected shape \(3,\), got \(1, 3\)"),
    (lambda: frn(X, C1, C0, torch.zeros(1, 3, 1, 1)), ValueError,
     r"filter_response_norm: tau: expected shape \(3,\), got \(1, 3, 1, 1\)"),
    (lambda: frn(X, C1, C0, 0.0), TypeError,
     r"filter_response_norm: tau: expected a torch.Tensor, got float"),
    (lambda: frn(X, C1.double(), C0, C0), TypeError,
     r"filter_response_norm: weight: expected dtype torch.float32 .* got torch.float64"),
    (lambda: frn(X.half(), C1.half(), C0.bfloat16(), C0.half()), TypeError,
     r"filter_response_norm: bias: expected dtype torch.float16 \(or float32 for a "
     r"float16/bfloat16 x\), got torch.bfloat16"),
    (lambda: frn(X, C1, C0, C0, eps=0.0), ValueError,
     r"filter_response_norm: eps: expected a finite positive number, got 0.0"),
    (lambda: frn(X, C1, C0, C0, eps=-1e-6), ValueError,
     r"filter_response_norm: eps: expected a finite positive number, got -1e-06"),
    (lambda: frn(X, C1, C0, C0, eps=math.inf), ValueError,
     r"filter_response_norm: eps: expected a finite positive number, got inf"),
    (lambda: frn(X, C1, C0, C0, eps="1e-6"), TypeError,
     r"filter_response_norm: eps: expected a number, got str"),
    (lambda: frn(X, C1, C0, C0, eps=True), TypeError,
     r"filter_response_norm: eps: expected a number, got bool"),
])
def test_bad_input_names_the_argument(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_every_backend_gets_the_checked_arguments(backend):
    """The checks run before any backend: a forced backend raises the same error."""
    if ops.get_backend(backend).unavailable_reason() is not None:
        pytest.skip(ops.get_backend(backend).unavailable_reason())
    with ops.use_backend(backend), pytest.raises(ValueError, match="tau: expected shape"):
        frn(X, C1, C0, torch.zeros(4))


def test_an_integer_eps_is_taken():
    torch.testing.assert_close(frn(X, C1, C0, C0, eps=1), ops.reference.filter_response_norm(
        X, C1, C0, C0, 1.0))


def test_cpu_tensors_take_the_cpu_backend():
    if ops.get_backend("cpu").unavailable_reason() is not None:
        pytest.skip("extension not loaded")
    assert ops.chosen_backend("filter_response_norm", X) == "cpu"


def test_the_nn_block_runs_on_the_operator():
    """FilterResponseNorm keeps TUNIT's (1, C, 1, 1) parameters and gives the operator flat views:
    the gradients reach the parameters in their own shapes."""
    norm = FilterResponseNorm(3)
    with torch.no_grad():
        norm.gamma.uniform_(0.5, 1.5)
        norm.beta.normal_()
        norm.tau.normal_(0, 0.3)
    x = torch.randn(2, 3, 5, 5)
    y = norm(x)
    expected = ops.reference.filter_response_norm(x, norm.gamma.view(3), norm.beta.view(3),
                                                  norm.tau.view(3), 1e-6)
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)
    y.square().sum().backward()
    for p in (norm.gamma, norm.beta, norm.tau):
        assert p.grad is not None and p.grad.shape == (1, 3, 1, 1)
