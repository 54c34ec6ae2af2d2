"""The KL term as torch operators: opcheck, gradcheck, the refused double backward,
torch.compile (fullgraph, with and without dynamic shapes), autocast, inference mode, and which
inputs get a gradient."""

from __future__ import annotations

import pytest
import torch

import i2i_fast.ops as ops
from helpers import channels_last, rel_err

REDUCTIONS = ("sum", "batch_sum", "mean")
pytestmark = pytest.mark.skipif(ops.get_backend("cpu").unavailable_reason() is not None,
                                reason="the compiled extension is not loaded")
lib = torch.ops.i2i_fast


def inputs(shape=(3, 8), dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(shape, generator=g, dtype=dtype) for _ in range(2))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_opcheck(reduction, layout):
    mu, logvar = inputs((2, 3, 4, 5), torch.float32)
    if layout == "channels_last":
        mu, logvar = channels_last(mu), channels_last(logvar)
    args = tuple(t.clone().requires_grad_() for t in (mu, logvar))
    torch.library.opcheck(lib.gaussian_kl.default, (*args, reduction))
    torch.library.opcheck(lib.gaussian_kl_backward.default,
                          (torch.tensor(1.5), mu, logvar, reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck_float64(reduction):
    mu, logvar = (t.requires_grad_() for t in inputs((3, 5)))
    assert torch.autograd.gradcheck(lambda a, b: ops.gaussian_kl(a, b, reduction), (mu, logvar))


def test_double_backward_is_an_error_naming_the_operator():
    mu, logvar = (t.requires_grad_() for t in inputs())
    (g,) = torch.autograd.grad(ops.gaussian_kl(mu, logvar), logvar, create_graph=True)
    with pytest.raises(RuntimeError, match="gaussian_kl_backward"):
        g.sum().backward()


@pytest.mark.parametrize("needs", [(True, False), (False, True), (True, True)])
def test_only_inputs_that_require_grad_get_one(needs):
    leaves = [t.requires_grad_(n) for t, n in zip(inputs(), needs)]
    ops.gaussian_kl(*leaves).backward()
    for t, n in zip(leaves, needs):
        assert (t.grad is not None) == n


def test_no_graph_without_gradients_and_in_inference_mode():
    mu, logvar = inputs()
    expected = ops.reference.gaussian_kl(mu, logvar)
    with torch.inference_mode():
        out = ops.gaussian_kl(mu, logvar)
    assert rel_err(out, expected) <= 1e-12
    mu.requires_grad_()
    with torch.no_grad():
        assert ops.gaussian_kl(mu, logvar).grad_fn is None


class Posterior(torch.nn.Module):
    """An attribute encoder's head (DRIT's: a linear layer to mu and logvar) and its KL term."""

    def __init__(self, reduction="sum"):
        super().__init__()
        self.head = torch.nn.Linear(6, 16, dtype=torch.float64)
        self.reduction = reduction

    def forward(self, features):
        mu, logvar = self.head(features).chunk(2, dim=1)
        return 0.01 * ops.gaussian_kl(mu, logvar, self.reduction)


@pytest.mark.parametrize("dynamic", [None, True], ids=["default", "dynamic"])
@pytest.mark.parametrize("reduction", ["sum", "batch_sum"])
def test_compile_fullgraph_matches_eager_with_gradients(dynamic, reduction):
    torch._dynamo.reset()
    model = Posterior(reduction)
    compiled = torch.compile(model, fullgraph=True, dynamic=dynamic)
    for batch in (4, 6, 9):
        features = torch.randn(batch, 6, dtype=torch.float64)
        out = compiled(features)
        grads = torch.autograd.grad(out, list(model.parameters()))
        expected = model(features)
        expected_grads = torch.autograd.grad(expected, list(model.parameters()))
        assert rel_err(out, expected) <= 1e-12
        for g, e in zip(grads, expected_grads):
            assert rel_err(g, e) <= 1e-12
    torch._dynamo.reset()


def test_compile_graph_contains_the_fused_operators():
    torch._dynamo.reset()
    seen = []

    def backend(gm, example_inputs):
        seen.extend(str(n.target) for n in gm.graph.nodes if n.op == "call_function")
        return make_boxed_func(gm)

    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    out = torch.compile(Posterior(), fullgraph=True, backend=aot_autograd(
        fw_compiler=backend, bw_compiler=backend))(torch.randn(4, 6, dtype=torch.float64))
    out.backward()
    assert "i2i_fast.gaussian_kl.default" in seen
    assert "i2i_fast.gaussian_kl_backward.default" in seen
    torch._dynamo.reset()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_autocast_outputs_give_a_float32_loss_with_float32_accumulation(dtype):
    features = torch.randn(8, 6)
    head = torch.nn.Linear(6, 16)
    with torch.autocast("cpu", dtype=dtype):
        mu, logvar = head(features).chunk(2, dim=1)
        loss = ops.gaussian_kl(mu, logvar)
    assert mu.dtype == dtype and loss.dtype == torch.float32
    expected = ops.reference.gaussian_kl(mu.double(), logvar.double())
    assert rel_err(loss, expected) <= 1e-6
    loss.backward()
    assert head.weight.grad is not None and torch.isfinite(head.weight.grad).all()
