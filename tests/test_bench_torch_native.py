"""The torch_native benchmark baseline (the official implementations' way of computing the
normalizations with PyTorch's own kernels) computes the same function as the reference, and its
provider of `i2i-fast bench method` runs on it."""

from __future__ import annotations

import pytest
import torch

import i2i_fast.ops as ops
from i2i_fast.bench import torch_native


def _args(op, shape):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    per = (shape[0], shape[1]) if op == "adain" else (shape[1],)
    w = torch.rand(per, generator=g, dtype=torch.float64) + 0.5
    b = torch.randn(per, generator=g, dtype=torch.float64)
    return x, w, b


@pytest.mark.parametrize("op, style", [("adain", None), ("instance_norm", None),
                                       ("layer_norm", "standard"), ("layer_norm", "munit")])
@pytest.mark.parametrize("activation", [None, "relu", "leaky_relu"])
def test_same_values_and_gradients_as_the_reference(op, style, activation):
    x, w, b = _args(op, (3, 5, 6, 7))
    kwargs = {"activation": activation} | ({"style": style} if style else {})
    outs = []
    for fn in (getattr(torch_native, op), getattr(ops.reference, op)):
        leaves = [t.clone().requires_grad_() for t in (x, w, b)]
        y = fn(*leaves, **kwargs)
        grads = torch.autograd.grad(y, leaves, torch.ones_like(y).mul_(0.5).add_(y.detach()))
        outs.append((y, *grads))
    for actual, expected in zip(*outs):
        torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-9)


def test_the_context_installs_and_restores_the_reference_implementations():
    backend = ops.get_backend("reference")
    before = dict(backend.ops)
    x, w, b = _args("adain", (2, 3, 4, 4))
    with torch_native.eager_torch_native():
        assert ops.chosen_backend("adain", x) == "reference"
        assert backend.ops["adain"] is torch_native.adain
        torch.testing.assert_close(ops.adain(x, w, b), ops.reference.adain(x, w, b))
    assert backend.ops == before
    with pytest.raises(RuntimeError, match="boom"):
        with torch_native.eager_torch_native():
            raise RuntimeError("boom")
    assert backend.ops == before


def test_method_benchmark_runs_the_provider():
    from i2i_fast.bench.method_bench import measure

    overrides = ["image_size=16", "gen.dim=4", "gen.mlp_dim=8", "gen.n_res=1", "dis.dim=4",
                 "dis.n_layer=2", "dis.num_scales=1"]
    result = measure("munit", "demo", overrides, "eager_torch_native", "cpu", "fp32", False,
                     iterations=1, warmup=0, data="synthetic:shapes")
    assert result["provider"] == "eager_torch_native" and result["images_per_s"] > 0
