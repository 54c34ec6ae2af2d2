"""The fused Gaussian NLL (MISO's MILO) against its reference: values and the gradients of z, mu
and logvar on every backend, per-dtype tolerances, odd shapes, channels-last and strided inputs,
NaN propagation, and the extremes of the log-variance against a careful float64 computation."""

from __future__ import annotations

import math

import pytest
import torch

import i2i_fast.ops as ops
from helpers import channels_last, strided_view
from latent_term_checks import F64, as_dtype, backends, check_thread_count_independence
from latent_term_checks import check as check_term
from latent_term_checks import loss_and_grads as term_loss_and_grads

REDUCTIONS = ("batch_sum", "sum", "mean")
SHAPES = [(1, 1), (8, 8), (3, 7), (2, 3, 5), (2, 3, 4, 5), (5, 4099)]
BACKENDS = backends("gaussian_nll")


def make_inputs(shape, dtype, seed=0):
    """z, mu, logvar with logvar in about [-3, 3] (values exactly representable in dtype)."""
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(shape, generator=g, dtype=F64)
    logvar = torch.randn(shape, generator=g, dtype=F64) * 1.5
    z = mu + torch.randn(shape, generator=g, dtype=F64) * torch.exp(0.5 * logvar)
    return tuple(t.to(dtype) for t in (z, mu, logvar))


def loss_and_grads(z, mu, logvar, reduction, grad=2.5):
    return term_loss_and_grads("gaussian_nll", (z, mu, logvar), reduction, grad)


def check(z, mu, logvar, reduction, backend, dtype):
    check_term("gaussian_nll", ("z", "mu", "logvar"), (z, mu, logvar), reduction, backend, dtype)


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
    z, mu, logvar = make_inputs((2, 3, 4, 5), F64, seed=2)
    if layout == "channels_last":
        z, mu, logvar = channels_last(z), channels_last(mu), channels_last(logvar)
    elif layout == "strided":
        z, mu, logvar = strided_view(z), strided_view(mu), strided_view(logvar)
    else:  # a prior mean and log-variance shared by every sample, as broadcast views
        mu, logvar = mu[:1].expand_as(z), logvar[:1].expand_as(z)
    check(z, mu, logvar, "batch_sum", backend, F64)


@pytest.mark.skipif(ops.get_backend("cpu").unavailable_reason() is not None,
                    reason="the compiled extension is not loaded")
def test_the_cpu_result_does_not_depend_on_the_thread_count():
    check_thread_count_independence("gaussian_nll", make_inputs((4, 70000), torch.float32, seed=3),
                                    "batch_sum")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("which", ["z", "mu", "logvar"])
def test_nan_propagates_to_the_loss_and_that_element_only(backend, which):
    inputs = list(make_inputs((3, 5), F64, seed=4))
    inputs[("z", "mu", "logvar").index(which)][1, 2] = math.nan
    with ops.use_backend(backend):
        loss, grads = loss_and_grads(*inputs, "batch_sum")
    assert math.isnan(float(loss))
    for g in grads:
        bad = torch.isnan(g)
        assert bad[1, 2] and bad.sum() == 1, which


# ----- the extremes of the log-variance -----------------------------------------------------------

DIFFERENCES = (0.0, 1e-30, 1e-3, 1.0, -2.0)  # z - mu
EXTREME_LOGVARS = (80.0, -80.0, 200.0, -200.0)
BEYOND_THE_REFERENCE = (400.0, -400.0)  # float32: exp(-logvar / 4) itself over- or underflows


def careful(d: float, logvar: float, grad: float) -> tuple[float, float, float]:
    """(e, dz, dlogvar) of one element in float64 through logarithms, inf where the true value
    is beyond float64 (the float32 comparison rounds them to float32 afterwards)."""
    def exp(x):
        return math.inf if x > 709.0 else math.exp(x)
    if d == 0:
        return logvar / 2, 0.0, grad / 2
    t2 = exp(2 * math.log(abs(d)) - logvar)  # t^2
    dz = math.copysign(grad * exp(math.log(abs(d)) - logvar), d)
    return logvar / 2 + t2 / 2, dz, grad / 2 * (1 - t2)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, F64], ids=str)
def test_large_log_variances_are_finite_wherever_the_true_value_is(backend, dtype):
    """logvar = +-80, +-200 (and +-400 on the kernels): each element against the careful value;
    inf only where the true value is beyond the dtype's range, never NaN."""
    logvars = EXTREME_LOGVARS + (BEYOND_THE_REFERENCE if backend != "reference" else ())
    tiny = 1.2e-38 if dtype == torch.float32 else 1e-300  # below: rounded to a subnormal or 0
    rtol = 1e-5 if dtype == torch.float32 else 1e-12
    for logvar in logvars:
        for d in DIFFERENCES:
            z = torch.tensor([[d]], dtype=F64).to(dtype)
            mu = torch.zeros_like(z)
            d_exact = float(z)
            lv = torch.tensor([[logvar]], dtype=dtype)
            with ops.use_backend(backend):
                loss, (gz, gmu, glv) = loss_and_grads(z, mu, lv, "sum", grad=1.0)
            expected = careful(d_exact, logvar, 1.0)
            got = (float(loss), float(gz), float(glv))
            for name, value, true in zip(("loss", "dz", "dlogvar"), got, expected):
                true = as_dtype(true, dtype)
                where = f"{name} at z - mu = {d_exact}, logvar = {logvar}: {value} vs {true}"
                assert not math.isnan(value), where
                if math.isinf(true):
                    assert value == true, where
                else:
                    assert math.isclose(value, true, rel_tol=rtol, abs_tol=tiny), where
            assert float(gmu) == -float(gz)


def test_the_reference_formula_is_misos():
    """The rearranged reference equals MISO's logvar / 2 + (z - mu)^2 exp(-logvar) / 2."""
    z, mu, logvar = make_inputs((3, 8), F64, seed=5)
    misos = (0.5 * logvar + 0.5 * (z - mu) ** 2 * torch.exp(-logvar)).sum(1).mean()
    torch.testing.assert_close(ops.reference.gaussian_nll(z, mu, logvar), misos, rtol=1e-14,
                               atol=0)
