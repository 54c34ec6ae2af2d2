"""The fused KL term (DRIT's, BicycleGAN's, MISO's) against its reference: values and the
gradients of mu and logvar on every backend, per-dtype tolerances, odd shapes, channels-last,
strided and expanded inputs, the result independent of the thread count, NaN propagation, and the
extremes of the log-variance against a careful float64 computation."""

from __future__ import annotations

import math

import pytest
import torch

import i2i_fast.ops as ops
from helpers import channels_last, strided_view
from latent_term_checks import F64, as_dtype, backends, check_thread_count_independence
from latent_term_checks import check as check_term
from latent_term_checks import loss_and_grads as term_loss_and_grads

REDUCTIONS = ("sum", "batch_sum", "mean")
SHAPES = [(1, 1), (1, 8), (4, 8), (3, 7), (2, 3, 5), (2, 3, 4, 5), (5, 4099)]
BACKENDS = backends("gaussian_kl")


def make_inputs(shape, dtype, seed=0):
    """mu, logvar with logvar in about [-4.5, 4.5] (values exactly representable in dtype)."""
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(shape, generator=g, dtype=F64)
    logvar = torch.randn(shape, generator=g, dtype=F64) * 1.5
    return mu.to(dtype), logvar.to(dtype)


def loss_and_grads(mu, logvar, reduction, grad=2.5):
    return term_loss_and_grads("gaussian_kl", (mu, logvar), reduction, grad)


def check(mu, logvar, reduction, backend, dtype):
    check_term("gaussian_kl", ("mu", "logvar"), (mu, logvar), reduction, backend, dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_float64_every_backend_reduction_and_shape(backend, reduction, shape):
    check(*make_inputs(shape, F64), reduction, backend, F64)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_lower_precision_against_the_float64_reference(backend, dtype):
    for reduction in REDUCTIONS:
        check(*make_inputs((4, 37), dtype, seed=1), reduction, backend, dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", ["channels_last", "strided", "expanded"])
def test_channels_last_strided_and_expanded_inputs(backend, layout):
    mu, logvar = make_inputs((2, 3, 4, 5), F64, seed=2)
    if layout == "channels_last":
        mu, logvar = channels_last(mu), channels_last(logvar)
    elif layout == "strided":
        mu, logvar = strided_view(mu), strided_view(logvar)
    else:  # one log-variance shared by every sample, as a broadcast view
        logvar = logvar[:1].expand_as(mu)
    check(mu, logvar, "batch_sum", backend, F64)


@pytest.mark.skipif(ops.get_backend("cpu").unavailable_reason() is not None,
                    reason="the compiled extension is not loaded")
def test_the_cpu_result_does_not_depend_on_the_thread_count():
    check_thread_count_independence("gaussian_kl", make_inputs((4, 70000), torch.float32, seed=3),
                                    "sum")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("which", ["mu", "logvar"])
def test_nan_propagates_to_the_loss_and_that_element_only(backend, which):
    inputs = list(make_inputs((3, 5), F64, seed=4))
    inputs[("mu", "logvar").index(which)][1, 2] = math.nan
    with ops.use_backend(backend):
        loss, grads = loss_and_grads(*inputs, "sum")
    assert math.isnan(float(loss))
    # dmu = g mu is NaN only where mu is; dlogvar = g (exp(logvar) - 1) / 2 only where logvar is
    bad = torch.isnan(grads[("mu", "logvar").index(which)])
    assert bad[1, 2] and bad.sum() == 1, which
    assert not torch.isnan(grads[1 - ("mu", "logvar").index(which)]).any(), which


# ----- the extremes of the log-variance -----------------------------------------------------------

MUS = (0.0, 1e-3, 1.0, -2.0)
# float32: exp(logvar) fits to 88.72, half of it to 89.41; float64: to 709.78 and 710.48
EXTREME_LOGVARS = (80.0, -80.0, 88.5, 200.0, -200.0, 709.0, -1e4, 1e4, -1e6)
BEYOND_THE_REFERENCE = (89.0, 710.0)  # exp(logvar) overflows the dtype, half of it does not


def careful(mu: float, logvar: float, grad: float) -> tuple[float, float, float]:
    """(e, dmu, dlogvar) of one element in float64, inf where the true value is beyond float64
    (the float32 comparison rounds them to float32 afterwards)."""
    try:
        half_exp = math.exp(logvar - math.log(2))
    except OverflowError:
        half_exp = math.inf
    e = half_exp - 0.5 - 0.5 * logvar + 0.5 * mu * mu
    return e, grad * mu, grad * half_exp - grad / 2


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, F64], ids=str)
def test_large_log_variances_are_finite_wherever_the_true_value_is(backend, dtype):
    """logvar from -1e6 to 1e4 (and, on the kernels, where exp(logvar) overflows the dtype but
    the KL does not): each element against the careful value; inf only where the true value is
    beyond the dtype's range, never NaN."""
    logvars = EXTREME_LOGVARS + (BEYOND_THE_REFERENCE if backend != "reference" else ())
    rtol = 1e-5 if dtype == torch.float32 else 1e-12
    for logvar in logvars:
        for mu_value in MUS:
            mu = torch.tensor([[mu_value]], dtype=dtype)
            lv = torch.tensor([[logvar]], dtype=dtype)
            exact = (float(mu), float(lv))  # as the dtype holds them
            with ops.use_backend(backend):
                loss, (gmu, glv) = loss_and_grads(mu, lv, "sum", grad=1.0)
            expected = careful(*exact, 1.0)
            got = (float(loss), float(gmu), float(glv))
            for name, value, true in zip(("loss", "dmu", "dlogvar"), got, expected):
                true = as_dtype(true, dtype)
                where = f"{name} at mu = {exact[0]}, logvar = {exact[1]}: {value} vs {true}"
                assert not math.isnan(value), where
                if math.isinf(true):
                    assert value == true, where
                else:
                    assert math.isclose(value, true, rel_tol=rtol, abs_tol=1e-30), where


def test_the_reference_formula_is_the_official_codes_and_the_kl_divergence():
    """The reference is DRIT's / BicycleGAN's -1/2 sum(1 + logvar - mu^2 - exp(logvar)) in their
    order, bit for bit, and torch.distributions' KL divergence."""
    mu, logvar = make_inputs((3, 8), F64, seed=5)
    drits = torch.sum(mu.pow(2).add(logvar.exp()).mul(-1).add(1).add(logvar)).mul(-0.5)
    assert torch.equal(ops.reference.gaussian_kl(mu, logvar), drits)
    posterior = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    prior = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    kl = torch.distributions.kl_divergence(posterior, prior)
    for reduction, expected in (("sum", kl.sum()), ("batch_sum", kl.sum(1).mean()),
                                ("mean", kl.mean())):
        torch.testing.assert_close(ops.reference.gaussian_kl(mu, logvar, reduction), expected,
                                   rtol=1e-13, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_at_the_prior(backend):
    """mu = 0, logvar = 0 is the prior itself: the KL and both gradients are exactly zero."""
    zero = torch.zeros(2, 8)
    with ops.use_backend(backend):
        loss, grads = loss_and_grads(zero, zero, "sum")
    assert float(loss) == 0.0
    for g in grads:
        assert torch.equal(g, torch.zeros_like(g))
