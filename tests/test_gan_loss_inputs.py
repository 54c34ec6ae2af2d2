"""GAN losses: bad input gives clear errors (Python and direct operator calls); NaN/Inf propagate
as in the reference; backend choice."""

from __future__ import annotations

import importlib
import math

import pytest
import torch

import i2i_fast.ops as ops
from i2i_fast.ops import backends, checks
from loss_helpers import MODE_TARGETS, close, loss_and_grads, make_domain, make_outputs

X = torch.randn(4, 1, 3, 3)
H = torch.randn(4, 3)  # K = 3 heads
Y = torch.tensor([0, 2, 1, 0])


@pytest.mark.parametrize(
    "call, error, pattern",
    [
        # outputs
        (lambda: ops.gan_loss([], "real", "lsgan"), ValueError,
         r"gan_loss: outputs: expected a tensor or a non-empty list of tensors, got an empty "
         r"list"),
        (lambda: ops.gan_loss((), "real", "lsgan"), ValueError, r"got an empty tuple"),
        (lambda: ops.gan_loss(3.0, "real", "lsgan"), TypeError,
         r"gan_loss: outputs: expected a tensor or a non-empty list of tensors, got float"),
        (lambda: ops.gan_loss([X, "x"], "real", "lsgan"), TypeError,
         r"gan_loss: outputs\[1\]: expected a torch.Tensor, got str"),
        (lambda: ops.gan_loss(X.long(), "real", "lsgan"), TypeError,
         r"gan_loss: outputs: expected a floating tensor \(float16, bfloat16, float32 or "
         r"float64\), got torch.int64"),
        (lambda: ops.gan_loss([X, X.int()], "real", "lsgan"), TypeError,
         r"gan_loss: outputs\[1\]: expected a floating tensor .* got torch.int32"),
        (lambda: ops.gan_loss(torch.tensor(1.0), "real", "lsgan"), ValueError,
         r"gan_loss: outputs: expected shape \(N, ...\) with a batch dimension, got shape \(\)"),
        (lambda: ops.gan_loss(torch.randn(0, 1, 3, 3), "real", "lsgan"), ValueError,
         r"gan_loss: outputs: expected a non-empty tensor, got shape \(0, 1, 3, 3\)"),
        (lambda: ops.gan_loss([X, torch.randn(4, 1, 0)], "real", "lsgan"), ValueError,
         r"gan_loss: outputs\[1\]: expected a non-empty tensor"),
        # mismatched batch sizes / dtypes / devices across scales
        (lambda: ops.gan_loss([X, torch.randn(4, 1, 2, 2), torch.randn(2, 1, 1, 1)], "real",
                              "lsgan"), ValueError,
         r"gan_loss: outputs\[2\]: expected batch size 4 \(that of outputs\[0\]\), got 2 "
         r"\(shape \(2, 1, 1, 1\)\)"),
        (lambda: ops.gan_loss([X, X.double()], "real", "lsgan"), TypeError,
         r"gan_loss: outputs\[1\]: expected dtype torch.float32 \(that of outputs\[0\]\), got "
         r"torch.float64"),
        (lambda: ops.gan_loss([X, X.to("meta")], "real", "lsgan"), ValueError,
         r"gan_loss: outputs\[1\]: expected device cpu \(that of outputs\[0\]\), got meta"),
        # mode, target, reduction
        (lambda: ops.gan_loss(X, "real", "bce"), ValueError,
         r"gan_loss: mode: expected one of 'lsgan', 'nsgan', 'hinge', 'wgan', 'sigmoid_bce', got "
         r"'bce'"),
        (lambda: ops.gan_loss(X, "true", "lsgan"), ValueError,
         r"gan_loss: target: expected 'real', 'fake', 'generator' or a number, got 'true'"),
        (lambda: ops.gan_loss(X, True, "lsgan"), TypeError,
         r"gan_loss: target: expected a number, got bool"),
        (lambda: ops.gan_loss(X, None, "lsgan"), TypeError,
         r"gan_loss: target: expected a number, got NoneType"),
        (lambda: ops.gan_loss(X, math.nan, "nsgan"), ValueError,
         r"gan_loss: target: expected a finite number, got nan"),
        (lambda: ops.gan_loss(X, 0.5, "hinge"), ValueError,
         r"gan_loss: target: a numeric label \(0.5\) is only defined for mode 'lsgan', 'nsgan' "
         r"or 'sigmoid_bce'; mode 'hinge' takes 'real', 'fake' or 'generator'"),
        (lambda: ops.gan_loss(X, 1.5, "sigmoid_bce"), ValueError,
         r"gan_loss: target: expected a label in \[0, 1\] for mode 'sigmoid_bce' \(a "
         r"probability\), got 1.5"),
        (lambda: ops.gan_loss(X, -1e-05, "sigmoid_bce"), ValueError,
         r"gan_loss: target: expected a label in \[0, 1\] for mode 'sigmoid_bce' \(a "
         r"probability\), got -1e-05"),
        (lambda: ops.gan_loss(X, math.inf, "sigmoid_bce"), ValueError,
         r"gan_loss: target: expected a finite number, got inf"),
        (lambda: ops.gan_loss(X, 1, "wgan"), ValueError, r"mode 'wgan' takes"),
        (lambda: ops.gan_loss(X, "real", "lsgan", reduction="avg"), ValueError,
         r"gan_loss: reduction: expected one of 'mean', 'sum', 'none', got 'avg'"),
        # domain
        (lambda: ops.gan_loss(H, "real", "nsgan", domain=Y.float()), TypeError,
         r"gan_loss: domain: expected an int64 or int32 tensor of domain indices, got "
         r"torch.float32"),
        (lambda: ops.gan_loss(H, "real", "nsgan", domain=Y.bool()), TypeError,
         r"gan_loss: domain: expected an int64 or int32 tensor"),
        (lambda: ops.gan_loss(H, "real", "nsgan", domain=[0, 1, 2, 0]), TypeError,
         r"gan_loss: domain: expected a torch.Tensor, got list"),
        (lambda: ops.gan_loss(H, "real", "nsgan", domain=Y[:3]), ValueError,
         r"gan_loss: domain: expected shape \(4,\) \(one index per sample\), got \(3,\)"),
        (lambda: ops.gan_loss(H, "real", "nsgan", domain=Y[:, None]), ValueError,
         r"gan_loss: domain: expected shape \(4,\) \(one index per sample\), got \(4, 1\)"),
        (lambda: ops.gan_loss(H, "real", "nsgan", domain=Y.to("meta")), ValueError,
         r"gan_loss: domain: expected device cpu \(that of outputs\), got meta"),
        (lambda: ops.gan_loss(H, "real", "nsgan", domain=torch.tensor([0, 1, 3, 0])), ValueError,
         r"gan_loss: domain: expected indices in \[0, 3\) \(K = outputs.shape\[1\]\), got 3 at "
         r"sample 2"),
        (lambda: ops.gan_loss(H, "real", "nsgan", domain=torch.tensor([0, -1, 1, 0])),
         ValueError, r"expected indices in \[0, 3\) .* got -1 at sample 1"),
        (lambda: ops.gan_loss([torch.randn(4, 5, 2), H], "real", "nsgan",
                              domain=torch.tensor([0, 4, 1, 0])), ValueError,
         r"expected indices in \[0, 3\) \(K = outputs\[1\].shape\[1\]\), got 4 at sample 1"),
        (lambda: ops.gan_loss(torch.randn(4), "real", "nsgan", domain=Y), ValueError,
         r"gan_loss: outputs: expected shape \(N, K, ...\) with one head per domain \(domain is "
         r"given\), got shape \(4,\)"),
        # r1_penalty
        (lambda: ops.r1_penalty([1.0]), TypeError,
         r"r1_penalty: grads: expected a torch.Tensor, got list"),
        (lambda: ops.r1_penalty(X.long()), TypeError,
         r"r1_penalty: grads: expected a floating tensor .* got torch.int64"),
        (lambda: ops.r1_penalty(torch.tensor(2.0)), ValueError,
         r"r1_penalty: grads: expected shape \(N, ...\) with a batch dimension, got shape \(\)"),
        (lambda: ops.r1_penalty(torch.randn(2, 0, 3)), ValueError,
         r"r1_penalty: grads: expected a non-empty tensor, got shape \(2, 0, 3\)"),
        (lambda: ops.r1_penalty(X, weight=math.inf), ValueError,
         r"r1_penalty: weight: expected a finite number, got inf"),
        (lambda: ops.r1_penalty(X, weight="0.5"), TypeError,
         r"r1_penalty: weight: expected a number, got str"),
        (lambda: ops.r1_penalty(X, reduction="batchmean"), ValueError,
         r"r1_penalty: reduction: expected one of 'mean', 'sum', 'none', got 'batchmean'"),
    ],
)
def test_bad_input_is_a_clear_error(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


lib = torch.ops.i2i_fast


@pytest.mark.parametrize(
    "call, pattern",
    [
        # No tensor at all: the dispatcher itself refuses (it has no device to dispatch on).
        (lambda: lib.gan_loss([], "lsgan", "real", 0.0, None, "mean"),
         r"no tensor arguments .* empty list of Tensors"),
        (lambda: lib.gan_loss([X, torch.randn(2, 1)], "lsgan", "real", 0.0, None, "mean"),
         r"gan_loss: outputs\[1\]: expected batch size 4 \(that of outputs\[0\]\), got 2"),
        # A meta tensor in the list sends the call to the fake (meta) kernel, which checks too.
        (lambda: lib.gan_loss([X, X.to("meta")], "lsgan", "real", 0.0, None, "mean"),
         r"gan_loss: outputs\[1\]: expected device cpu \(that of outputs\[0\]\), got meta"),
        (lambda: lib.gan_loss([H.to("meta")], "nsgan", "real", 0.0, Y[:2].to("meta"), "mean"),
         r"gan_loss: domain: expected shape \(4,\) \(one index per sample\), got \(2,\)"),
        (lambda: lib.gan_loss([X.long()], "lsgan", "real", 0.0, None, "mean"),
         r"gan_loss: outputs\[0\]: expected a floating tensor"),
        (lambda: lib.gan_loss([X], "bce", "real", 0.0, None, "mean"),
         r"gan_loss: mode: expected one of 'lsgan', 'nsgan', 'hinge', 'wgan', 'sigmoid_bce', got "
         r"'bce'"),
        (lambda: lib.gan_loss([X], "lsgan", "true", 0.0, None, "mean"),
         r"gan_loss: target: expected 'real', 'fake', 'generator' or a number, got 'true'"),
        (lambda: lib.gan_loss([X], "hinge", "label", 0.5, None, "mean"),
         r"gan_loss: target: a numeric label \(0.5\) is only defined for mode 'lsgan', 'nsgan' "
         r"or 'sigmoid_bce'"),
        (lambda: lib.gan_loss([X], "sigmoid_bce", "label", 2.0, None, "mean"),
         r"gan_loss: target: expected a label in \[0, 1\] for mode 'sigmoid_bce' \(a "
         r"probability\), got 2.0"),
        (lambda: lib.gan_loss([X], "lsgan", "label", math.inf, None, "mean"),
         r"gan_loss: target: expected a finite number, got inf"),
        (lambda: lib.gan_loss([X], "lsgan", "real", 0.0, None, "avg"),
         r"gan_loss: reduction: expected one of 'mean', 'sum', 'none', got 'avg'"),
        (lambda: lib.gan_loss([H], "nsgan", "real", 0.0, Y.float(), "mean"),
         r"gan_loss: domain: expected an int64 or int32 tensor of domain indices"),
        (lambda: lib.gan_loss([H], "nsgan", "real", 0.0, Y[:2], "mean"),
         r"gan_loss: domain: expected shape \(4,\) \(one index per sample\), got \(2,\)"),
        (lambda: lib.gan_loss([H], "nsgan", "real", 0.0, torch.tensor([0, 1, 7, 0]), "mean"),
         r"gan_loss: domain: expected indices in \[0, 3\) \(K = outputs\[0\].shape\[1\]\), got 7 "
         r"at sample 2"),
        (lambda: lib.gan_loss([torch.randn(4)], "nsgan", "real", 0.0, Y, "mean"),
         r"gan_loss: outputs\[0\]: expected shape \(N, K, ...\) with one head per domain"),
        (lambda: lib.gan_loss_backward(torch.ones(3), [X], "lsgan", "real", 0.0, None, "none"),
         r"gan_loss_backward: grad_loss: expected shape \(4,\) \(reduction 'none'\), got \(3,\)"),
        (lambda: lib.gan_loss_backward(torch.ones(4), [X], "lsgan", "real", 0.0, None, "mean"),
         r"gan_loss_backward: grad_loss: expected a scalar \(reduction 'mean'\), got shape "
         r"\(4,\)"),
        (lambda: lib.gan_loss_backward(torch.tensor(1.0), [H], "lsgan", "real", 0.0,
                                       torch.tensor([0, 1, 3, 0]), "mean"),
         r"gan_loss_backward: domain: expected indices in \[0, 3\)"),
        (lambda: lib.r1_penalty(X.long(), 1.0, "mean"),
         r"r1_penalty: grads: expected a floating tensor"),
        (lambda: lib.r1_penalty(torch.tensor(1.0), 1.0, "mean"),
         r"r1_penalty: grads: expected shape \(N, ...\) with a batch dimension"),
        (lambda: lib.r1_penalty(X, math.nan, "mean"),
         r"r1_penalty: weight: expected a finite number, got nan"),
        (lambda: lib.r1_penalty(X, 1.0, "avg"),
         r"r1_penalty: reduction: expected one of 'mean', 'sum', 'none', got 'avg'"),
        (lambda: lib.r1_penalty_backward(torch.ones(2), X, 1.0, "none"),
         r"r1_penalty_backward: grad_loss: expected shape \(4,\) \(reduction 'none'\), got \(2,\)"),
    ],
)
def test_direct_operator_calls_are_checked_in_cpp(call, pattern):
    """torch.ops.i2i_fast.* called directly (bypassing i2i_fast.ops) still fails cleanly."""
    with pytest.raises((ValueError, TypeError, RuntimeError, NotImplementedError),
                       match=pattern):
        call()


# ----- the fast path of gan_loss ------------------------------------------------------------------

# gan_loss's subpackage (the name i2i_fast.ops.gan_loss is the function).
gan_loss_module = importlib.import_module("i2i_fast.ops.gan_loss")

# Bad outputs in calls that take the fast path (valid string arguments, no domain, a floating CPU
# first tensor): the kernel refuses them, and gan_loss raises the error of the full checks.
FAST_PATH_BAD_OUTPUTS = {
    "not a tensor": [X, "x"],
    "int": [X, X.int()],
    "no batch dimension": torch.tensor(1.0),
    "empty": torch.randn(0, 1, 3, 3),
    "empty second": [X, torch.randn(4, 1, 0)],
    "batch size": [X, torch.randn(4, 1, 2, 2), torch.randn(2, 1, 1, 1)],
    "dtype": (X, X.double()),
    "device": [X, X.to("meta")],
    "float8": [X.to(torch.float8_e4m3fn)],
}


@pytest.mark.parametrize("case", FAST_PATH_BAD_OUTPUTS)
def test_fast_path_bad_outputs_get_the_error_of_the_checks(case):
    outputs = FAST_PATH_BAD_OUTPUTS[case]
    if case != "float8":  # a float8 first tensor is not taken by the cpu backend
        assert gan_loss_module._fast_path_scales(outputs, "real", "lsgan", "mean") is not None
    with pytest.raises((TypeError, ValueError)) as expected:
        checks.loss_outputs("gan_loss", outputs, heads=False)
    with pytest.raises(type(expected.value)) as raised:
        ops.gan_loss(outputs, "real", "lsgan")
    assert str(raised.value) == str(expected.value)
    # Raised on its own, not while handling the kernel's error (no second traceback).
    assert raised.value.__context__ is None and raised.value.__cause__ is None


def test_common_calls_take_the_fast_path_without_python_checks(monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("the checked path ran")

    monkeypatch.setattr(checks, "loss_outputs", must_not_run)
    outputs = make_outputs(3, [(1, 4, 4), (1, 2, 2)], torch.float32)
    expected = ops.reference.gan_loss(outputs, "fake", "hinge", reduction="none")
    for given in (outputs, tuple(outputs)):
        assert close(ops.gan_loss(given, "fake", "hinge", reduction="none"), expected) < 1e-6
    assert close(ops.gan_loss(outputs[0], "real", "nsgan"),
                 ops.reference.gan_loss(outputs[0], "real", "nsgan")) < 1e-6


@pytest.mark.parametrize("call", [
    lambda x: ops.gan_loss(x, 0.5, "lsgan"),  # a numeric label
    lambda x: ops.gan_loss(x, "real", "nsgan", domain=torch.tensor([0, 0, 0, 0])),
    lambda x: ops.gan_loss(torch.nn.Parameter(x), "real", "lsgan"),  # a tensor subclass
], ids=["label", "domain", "subclass"])
def test_other_calls_take_the_checked_path(monkeypatch, call):
    seen = []
    real_check = checks.loss_outputs
    monkeypatch.setattr(checks, "loss_outputs",
                        lambda *args, **kwargs: seen.append(1) or real_check(*args, **kwargs))
    call(X)
    assert seen


def test_forced_reference_takes_the_checked_path(monkeypatch):
    seen = []
    real_check = checks.loss_outputs
    monkeypatch.setattr(checks, "loss_outputs",
                        lambda *args, **kwargs: seen.append(1) or real_check(*args, **kwargs))
    with ops.use_backend("reference"):
        assert gan_loss_module._fast_path_scales([X], "real", "lsgan", "mean") is None
        ops.gan_loss([X], "real", "lsgan")
    assert seen


def test_fast_path_keeps_the_kernel_error_when_the_outputs_are_fine():
    # functorch transforms refuse the C++ autograd kernel; the outputs themselves are fine.
    with pytest.raises(RuntimeError, match="functorch transforms"):
        torch.func.grad(lambda x: ops.gan_loss(x, "real", "lsgan"))(X.clone())


# ----- NaN and Inf ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode_target", MODE_TARGETS, ids=lambda mt: f"{mt[0]}-{mt[1]}")
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf], ids=str)
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_nan_and_inf_propagate_like_the_reference(mode_target, bad, reduction):
    mode, target = mode_target
    outputs = make_outputs(3, [(1, 4, 4), (1, 2, 2)], torch.float32)
    outputs[1][1, 0, 1, 0] = bad
    g = torch.ones((3,) if reduction == "none" else (), dtype=torch.float64)
    loss, grads = loss_and_grads(ops.gan_loss, outputs, target, mode, None, reduction, g)
    with ops.use_backend("reference"):
        ref_loss, ref_grads = loss_and_grads(ops.gan_loss, outputs, target, mode, None,
                                             reduction, g)
    assert close(loss, ref_loss) < 1e-6, (loss, ref_loss)
    for gr, rg in zip(grads, ref_grads):
        assert close(gr, rg) < 1e-6
    if math.isnan(bad):
        assert torch.isnan(loss).any()
    if reduction == "none":  # the other samples are untouched
        assert torch.isfinite(loss[0]) and torch.isfinite(loss[2])


def test_nan_logit_of_an_unselected_head_is_ignored():
    h = make_outputs(4, [(3,)], torch.float32)[0]
    domain = torch.tensor([0, 1, 2, 0])
    h[1, 0] = math.nan  # sample 1 selects head 1
    h.requires_grad_()
    loss = ops.gan_loss(h, "real", "nsgan", domain=domain)
    (grad,) = torch.autograd.grad(loss, h)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()


def test_nan_grads_propagate_through_r1():
    grads = torch.randn(3, 2, 4, 4)
    grads[1, 1, 2, 2] = math.nan
    leaf = grads.clone().requires_grad_()
    per_sample = ops.r1_penalty(leaf, reduction="none")
    assert torch.isnan(per_sample[1]) and torch.isfinite(per_sample[[0, 2]]).all()
    (g,) = torch.autograd.grad(per_sample.sum(), leaf)
    assert torch.isnan(g[1, 1, 2, 2]) and torch.isfinite(g[0]).all()


# ----- backend choice ------------------------------------------------------------------------


def test_cpu_tensors_use_the_fused_cpu_backend():
    assert ops.chosen_backend("gan_loss", X) == "cpu"
    assert ops.chosen_backend("r1_penalty", X) == "cpu"


def test_use_backend_forces_the_reference_and_gives_the_same_result():
    outputs = make_outputs(2, [(3,)], torch.float64)
    domain = make_domain(2, 3)
    fused = ops.gan_loss(outputs, "real", "nsgan", domain=domain)
    with ops.use_backend("reference"):
        assert ops.chosen_backend("gan_loss", X) == "reference"
        ref = ops.gan_loss(outputs, "real", "nsgan", domain=domain)
    assert close(fused, ref) < 1e-12


def test_forced_backend_that_cannot_run_raises_with_the_reason():
    with ops.use_backend("cpu"), pytest.raises(
        ops.BackendError,
        match=r"gan_loss: backend 'cpu' is forced by use_backend\(\) but cannot run this call: "
        r"x is on meta",
    ):
        ops.gan_loss(X.to("meta"), "real", "lsgan")


def test_select_follows_implement(monkeypatch):
    """select caches the automatic choice, and implement() replaces what it returns."""
    monkeypatch.setattr(backends, "_automatic_choice", {})
    monkeypatch.setattr(backends, "_automatic_impl", {})
    reference_ops = ops.get_backend("reference").ops

    def first(*args):
        return "first"

    def second(*args):
        return "second"

    monkeypatch.setitem(reference_ops, "probe_op", first)  # removed again after the test
    backends._forget_automatic_choices()
    assert ops.select("probe_op", X) is first
    assert backends._automatic_impl[("probe_op", X.dtype, X.device)] is first  # cached
    assert ops.select("probe_op", X) is first
    ops.implement("reference", "probe_op", second)
    assert not backends._automatic_impl  # implement() empties the cache
    assert ops.select("probe_op", X) is second
    assert ops.chosen_backend("probe_op", X) == "reference"
    meta = X.to("meta")  # chosen, but not cached: only CPU and CUDA choices are
    assert ops.select("probe_op", meta) is second
    assert ("probe_op", meta.dtype, meta.device) not in backends._automatic_impl
    with ops.use_backend("reference"):
        assert ops.select("probe_op", X) is second


def test_the_new_operators_are_listed():
    assert {"gan_loss", "r1_penalty"} <= set(ops.OPS)
    assert ops.reference.gan_loss is not None and ops.reference.r1_penalty is not None
