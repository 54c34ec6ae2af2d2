"""Bad input gives clear errors; NaN/Inf propagate as in the reference; backend choice."""

from __future__ import annotations

import math

import pytest
import torch

import i2i_fast.ops as ops
from helpers import make_args

X = torch.randn(2, 3, 4, 4)
W2, B2 = torch.ones(2, 3), torch.zeros(2, 3)
W1, B1 = torch.ones(3), torch.zeros(3)


@pytest.mark.parametrize(
    "call, error, pattern",
    [
        # wrong rank
        (lambda: ops.adain(torch.randn(2, 3), W2, B2), ValueError,
         r"adain: x: expected shape \(N, C, L\), \(N, C, H, W\) or \(N, C, D, H, W\), "
         r"got 2 dims with shape \(2, 3\)"),
        (lambda: ops.instance_norm(torch.randn(1, 2, 3, 4, 5, 6)), ValueError,
         r"instance_norm: x: expected shape .* got 6 dims"),
        # integer tensors
        (lambda: ops.layer_norm(torch.ones(2, 3, 4, 4, dtype=torch.int64)), TypeError,
         r"layer_norm: x: expected a floating tensor .* got torch.int64"),
        # not a tensor
        (lambda: ops.adain([1.0], W2, B2), TypeError, r"adain: x: expected a torch.Tensor, got list"),
        # empty tensors
        (lambda: ops.adain(torch.randn(0, 3, 4, 4), torch.ones(0, 3), torch.zeros(0, 3)),
         ValueError, r"adain: x: expected a non-empty tensor, got shape \(0, 3, 4, 4\)"),
        (lambda: ops.instance_norm(torch.randn(2, 3, 0, 4)), ValueError,
         r"instance_norm: x: expected a non-empty tensor"),
        # weight/bias of the wrong shape
        (lambda: ops.adain(X, torch.ones(3), B2), ValueError,
         r"adain: weight: expected shape \(2, 3\), got \(3,\)"),
        (lambda: ops.adain(X, W2, torch.zeros(2, 4)), ValueError,
         r"adain: bias: expected shape \(2, 3\), got \(2, 4\)"),
        (lambda: ops.instance_norm(X, torch.ones(2, 3)), ValueError,
         r"instance_norm: weight: expected shape \(3,\), got \(2, 3\)"),
        (lambda: ops.layer_norm(X, W1, torch.zeros(4)), ValueError,
         r"layer_norm: bias: expected shape \(3,\), got \(4,\)"),
        # mismatched N between x and weight
        (lambda: ops.adain(X, torch.ones(5, 3), torch.zeros(5, 3)), ValueError,
         r"adain: weight: expected shape \(2, 3\), got \(5, 3\)"),
        # wrong device
        (lambda: ops.adain(X, W2.to("meta"), B2), ValueError,
         r"adain: weight: expected device cpu \(the device of x\), got meta"),
        # wrong dtype
        (lambda: ops.adain(X, W2.double(), B2), TypeError,
         r"adain: weight: expected dtype torch.float32 .* got torch.float64"),
        (lambda: ops.instance_norm(X.half(), W1.bfloat16()), TypeError,
         r"instance_norm: weight: expected dtype torch.float16 \(or float32 for a "
         r"float16/bfloat16 x\), got torch.bfloat16"),
        (lambda: ops.adain(X, W2.long(), B2), TypeError, r"adain: weight: expected dtype"),
        # options
        (lambda: ops.adain(X, W2, B2, activation="gelu"), ValueError,
         r"adain: activation: expected None, 'relu' or 'leaky_relu', got 'gelu'"),
        (lambda: ops.layer_norm(X, style="drit"), ValueError,
         r"layer_norm: style: expected 'munit' or 'standard', got 'drit'"),
        (lambda: ops.adain(X, W2, B2, eps=-1.0), ValueError,
         r"adain: eps: expected a finite non-negative number, got -1.0"),
        (lambda: ops.adain(X, W2, B2, eps=math.nan), ValueError, r"adain: eps"),
        (lambda: ops.adain(X, W2, B2, eps="1e-5"), TypeError, r"adain: eps: expected a number"),
    ],
)
def test_bad_input_is_a_clear_error(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


@pytest.mark.parametrize(
    "call, pattern",
    [
        (lambda: torch.ops.i2i_fast.adain(torch.randn(2, 3), W2, B2, 1e-5, "none", 0.2),
         r"adain: x: expected shape"),
        (lambda: torch.ops.i2i_fast.adain(X, torch.ones(5, 3), B2, 1e-5, "none", 0.2),
         r"adain: weight: expected shape \(2, 3\), got \(5, 3\)"),
        (lambda: torch.ops.i2i_fast.instance_norm(X, None, None, 1e-5, "swish", 0.2),
         r"instance_norm: activation: expected None, 'relu' or 'leaky_relu', got 'swish'"),
        (lambda: torch.ops.i2i_fast.layer_norm(X.long(), None, None, 1e-5, "munit", "none", 0.2),
         r"layer_norm: x: expected a floating tensor"),
        (lambda: torch.ops.i2i_fast.layer_norm(X, None, None, 1e-5, "other", "none", 0.2),
         r"layer_norm: style: expected 'munit' or 'standard', got 'other'"),
        (lambda: torch.ops.i2i_fast.instance_norm(torch.randn(2, 3, 0), None, None, 1e-5, "none",
                                                  0.2),
         r"instance_norm: x: expected a non-empty tensor"),
    ],
)
def test_direct_operator_calls_are_checked_in_cpp(call, pattern):
    """torch.ops.i2i_fast.* called directly (bypassing i2i_fast.ops) still fails cleanly."""
    with pytest.raises((ValueError, TypeError, RuntimeError), match=pattern):
        call()


@pytest.mark.parametrize("op", ["adain", "instance_norm", "layer_norm/munit",
                                "layer_norm/standard"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("activation", [None, "relu", "leaky_relu"], ids=str)
def test_nan_and_inf_propagate_like_the_reference(op, bad, activation):
    from helpers import call

    x, w, b = make_args(op, (2, 3, 5, 5), torch.float32)
    x[1, 2, 3, 1] = bad
    y = call(op, x, w, b, activation)
    y_ref = call(op, x, w, b, activation, ops.reference)
    assert torch.equal(torch.isnan(y), torch.isnan(y_ref))
    assert torch.equal(torch.isinf(y), torch.isinf(y_ref))
    finite = torch.isfinite(y_ref)
    assert torch.allclose(y[finite], y_ref[finite], atol=1e-5)
    # The poisoned group is NaN entirely; the other groups are untouched.
    assert torch.isnan(y_ref).any() and torch.isfinite(y_ref[0]).all()


def test_nan_in_weight_propagates():
    x, w, b = make_args("adain", (2, 3, 5, 5), torch.float32)
    w[0, 1] = math.nan
    y = ops.adain(x, w, b, activation="relu")
    assert torch.isnan(y[0, 1]).all() and torch.isfinite(y[1]).all()


# ----- backend choice ------------------------------------------------------------------------


def test_cpu_tensors_use_the_fused_cpu_backend():
    assert ops.chosen_backend("adain", X) == "cpu"


def test_use_backend_forces_the_reference():
    with ops.use_backend("reference"):
        assert ops.chosen_backend("adain", X) == "reference"
        assert ops.forced_backend() == ("reference", "use_backend()")
    assert ops.chosen_backend("adain", X) == "cpu"


def test_forced_backend_that_cannot_run_raises_with_the_reason():
    x = torch.randn(2, 3, 4, 4, device="meta")
    with ops.use_backend("cpu"), pytest.raises(
        ops.BackendError,
        match=r"adain: backend 'cpu' is forced by use_backend\(\) but cannot run this call: "
        r"x is on meta; the cpu backend takes cpu tensors",
    ):
        ops.adain(x, W2.to("meta"), B2.to("meta"))


def test_unknown_backend_name():
    with pytest.raises(ops.BackendError, match=r"unknown backend 'gpu'; expected one of .*\bcpu\b"):
        with ops.use_backend("gpu"):
            pass


def test_backend_reasons_are_specific():
    cpu = ops.get_backend("cpu")
    assert cpu.reason("adain", X) is None
    assert "meta" in cpu.reason("adain", torch.empty(1, 1, 1, 1, device="meta"))
    assert "no not_an_operator implementation" in cpu.reason("not_an_operator", X)


def test_environment_variable_forces_a_backend(tmp_path):
    import subprocess
    import sys

    code = (
        "import torch, i2i_fast.ops as ops\n"
        "x = torch.randn(1, 2, 3, 3)\n"
        "print(ops.chosen_backend('adain', x), ops.forced_backend())\n"
    )
    import os

    env = dict(os.environ, I2I_FAST_BACKEND="reference")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "reference ('reference', 'I2I_FAST_BACKEND=reference')"
