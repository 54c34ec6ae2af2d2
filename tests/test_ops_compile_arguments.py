"""torch.compile(fullgraph=True) of every operator whose number arguments (eps, negative_slope,
a numeric target label, the R1 weight, the resampling factors) change between calls, with and
without dynamic=True: each call gives what eager gives, and a bad value still raises the error
that names the argument.

Under torch.compile a float argument may arrive as a symbolic float (dynamic=True, or once it has
changed between calls); the operators' argument checks must trace on it.
"""

from __future__ import annotations

import contextlib

import pytest
import torch

import i2i_fast.ops as ops
from helpers import rel_err


def _randn(*shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g) * 2 + 0.3


def _positive(*shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g) + 0.5


W2, B2 = _positive(2, 3, seed=1), _randn(2, 3, seed=2)
W1, B1 = _positive(3, seed=3), _randn(3, seed=4)
Z_LATENT, W_LATENT, B_LATENT = _randn(2, 2, seed=5), _randn(4, 5, 3, 3, seed=6), _randn(4, seed=7)
WT_LATENT = _randn(5, 4, 3, 3, seed=8)  # (C_x + C_z, C_out, k, k): a transposed conv's
W_OUT, B_OUT = _randn(3, 3, 3, 3, seed=9) * 0.2, _randn(3, seed=10)

# op -> (call(x, *values), the values of successive calls, a bad value and the argument it names).
CASES = {
    "adain": (lambda x, eps, slope: ops.adain(x, W2, B2, eps, "leaky_relu", slope),
              [(1e-5, 0.2), (1e-3, 0.1), (0.5, 0.3)], ((float("inf"), 0.2), "eps")),
    "instance_norm": (lambda x, eps, slope: ops.instance_norm(x, W1, B1, eps, "leaky_relu", slope),
                      [(1e-5, 0.2), (1e-3, 0.1), (0.5, 0.3)], ((float("nan"), 0.2), "eps")),
    "layer_norm": (lambda x, eps, slope: ops.layer_norm(x, W1, B1, eps, "munit", "leaky_relu",
                                                        slope),
                   [(1e-5, 0.2), (1e-3, 0.1), (0.5, 0.3)], ((-1.0, 0.2), "eps")),
    "batch_norm": (lambda x, eps, slope: ops.batch_norm(x, W1, B1, eps, "leaky_relu", slope)[0],
                   [(1e-5, 0.2), (1e-3, 0.1), (0.5, 0.3)], ((float("nan"), 0.2), "eps")),
    "filter_response_norm": (lambda x, eps: ops.filter_response_norm(x, W1, B1, B1 * 0.3, eps),
                             [(1e-6,), (1e-3,), (0.5,)], ((0.0,), "eps")),
    "gan_loss": (lambda x, label: ops.gan_loss([x, x[:, :, ::2, ::2]], label, "lsgan"),
                 [(0.9,), (0.5,), (0.0,)], ((float("inf"),), "target")),
    "r1_penalty": (lambda x, weight: ops.r1_penalty(x, weight),
                   [(0.5,), (1.0,), (10.0,)], ((float("nan"),), "weight")),
    "gaussian_nll": (lambda x, reduction: ops.gaussian_nll(x, x * 0.5, x.tanh(), reduction),
                     [("batch_sum",), ("sum",), ("mean",)], (("none",), "reduction")),
    "gaussian_kl": (lambda x, reduction: ops.gaussian_kl(x * 0.5, x.tanh(), reduction),
                    [("sum",), ("batch_sum",), ("mean",)], (("batchmean",), "reduction")),
    "upsample_nearest": (lambda x, factor: ops.upsample_nearest(x, factor),
                         [(2,), (1,), (3,)], ((0,), "factor")),
    "avg_pool": (lambda x, factor: ops.avg_pool(x, factor), [(2,), (1,), (3,)], ((0,), "factor")),
    "max_pool": (lambda x, factor: ops.max_pool(x, factor), [(2,), (1,), (3,)], ((0,), "factor")),
    "reflection_pad": (lambda x, pad: ops.reflection_pad(x, pad), [(1,), (0,), (2,)],
                       ((-1,), "pad")),
    "latent_conv2d": (lambda x, stride, padding: ops.latent_conv2d(x, Z_LATENT, W_LATENT, B_LATENT,
                                                                   stride, padding, "zeros"),
                      [(2, 1), (1, 1), (2, 0)], ((0, 1), "stride")),
    "latent_conv_transpose2d": (lambda x, stride, output_padding: ops.latent_conv_transpose2d(
        x, Z_LATENT, WT_LATENT, B_LATENT, stride, 1, output_padding),
        [(2, 1), (1, 0), (3, 2)], ((2, 2), "output_padding")),
    "output_conv2d": (lambda x, padding, padding_mode, activation: ops.output_conv2d(
        x, W_OUT, B_OUT, padding, padding_mode, activation),
        [(1, "reflect", "tanh"), (2, "zeros", "none"), (0, "reflect", "tanh")],
        ((-1, "zeros", "tanh"), "padding")),
}
# x of successive calls: the same shape, or (dynamic=True) changing sizes.
SHAPES = {None: [(2, 3, 6, 6)] * 3, True: [(2, 3, 6, 6), (2, 3, 8, 10), (2, 3, 12, 6)]}


def test_every_operator_has_a_case():
    assert set(CASES) == set(ops.OPS)


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.parametrize("backend", ["automatic", "reference"])
@pytest.mark.parametrize("dynamic", [None, True], ids=["default", "dynamic"])
@pytest.mark.parametrize("op", sorted(CASES))
def test_changing_arguments_under_fullgraph_compile(op, dynamic, backend):
    call, values, _ = CASES[op]
    compiled = torch.compile(call, fullgraph=True, dynamic=dynamic)
    forced = ops.use_backend("reference") if backend == "reference" else contextlib.nullcontext()
    with forced:
        for i, (shape, args) in enumerate(zip(SHAPES[dynamic], values)):
            x = _randn(*shape, seed=10 + i)
            expected = call(x, *args)
            got = compiled(x, *args)
            assert got.shape == expected.shape
            assert rel_err(got, expected) <= 1e-5, f"call {i} with {args}"


@pytest.mark.parametrize("dynamic", [None, True], ids=["default", "dynamic"])
@pytest.mark.parametrize("op", sorted(CASES))
def test_a_bad_value_after_good_ones_is_still_refused(op, dynamic):
    """The compiled graphs of the good values do not take the bad one: it is checked, and the
    error names the argument."""
    call, values, (bad, name) = CASES[op]
    compiled = torch.compile(call, fullgraph=True, dynamic=dynamic)
    x = _randn(*SHAPES[dynamic][0], seed=20)
    for args in values[:2]:
        compiled(x, *args)
    with pytest.raises((ValueError, RuntimeError), match=f"{op}: {name}: expected"):
        compiled(x, *bad)

