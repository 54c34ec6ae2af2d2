"""The Gaussian latent terms (gaussian_nll, MISO's MILO; gaussian_kl, the KL to N(0, I)) as torch
operators: opcheck, gradcheck, the refused double backward, torch.compile (fullgraph, with and
without dynamic shapes), autocast, inference mode, and which inputs get a gradient. Each test runs
for both operators: an operator takes `arity` tensors (z, mu, logvar or mu, logvar) and a
reduction."""

from __future__ import annotations

import pytest
import torch

import i2i_fast.ops as ops
from helpers import channels_last, rel_err
from latent_term_checks import KL, NLL, TERMS, Term

pytestmark = pytest.mark.skipif(ops.get_backend("cpu").unavailable_reason() is not None,
                                reason="the compiled extension is not loaded")
lib = torch.ops.i2i_fast


CASES = [(term, r) for term in TERMS for r in term.reductions]


def inputs(term: Term, shape=(3, 8), dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(shape, generator=g, dtype=dtype) for _ in range(term.arity))


@pytest.mark.parametrize("term,reduction", CASES, ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_opcheck(term, reduction, layout):
    xs = inputs(term, (2, 3, 4, 5), torch.float32)
    if layout == "channels_last":
        xs = tuple(channels_last(t) for t in xs)
    args = tuple(t.clone().requires_grad_() for t in xs)
    torch.library.opcheck(getattr(lib, term.name).default, (*args, reduction))
    torch.library.opcheck(getattr(lib, f"{term.name}_backward").default,
                          (torch.tensor(1.5), *xs, reduction))


@pytest.mark.parametrize("term,reduction", CASES, ids=str)
def test_gradcheck_float64(term, reduction):
    xs = tuple(t.requires_grad_() for t in inputs(term, (3, 5)))
    assert torch.autograd.gradcheck(lambda *a: term.fused(*a, reduction), xs)


@pytest.mark.parametrize("term", TERMS, ids=str)
def test_double_backward_is_an_error_naming_the_operator(term):
    xs = tuple(t.requires_grad_() for t in inputs(term))
    (g,) = torch.autograd.grad(term.fused(*xs), xs[-2], create_graph=True)
    with pytest.raises(RuntimeError, match=f"{term.name}_backward"):
        g.sum().backward()


@pytest.mark.parametrize("term,needs", [(t, n) for t in TERMS for n in t.needs], ids=str)
def test_only_inputs_that_require_grad_get_one(term, needs):
    leaves = [t.requires_grad_(n) for t, n in zip(inputs(term), needs)]
    term.fused(*leaves).backward()
    for t, n in zip(leaves, needs):
        assert (t.grad is not None) == n


@pytest.mark.parametrize("term", TERMS, ids=str)
def test_no_graph_without_gradients_and_in_inference_mode(term):
    xs = inputs(term)
    expected = term.reference(*xs)
    with torch.inference_mode():
        out = term.fused(*xs)
    assert rel_err(out, expected) <= 1e-12
    xs[-2].requires_grad_()
    with torch.no_grad():
        assert term.fused(*xs).grad_fn is None


class Head(torch.nn.Module):
    """An encoder's head (a linear layer to mu and logvar) and a latent term of it: MILO of codes
    z under it (gaussian_nll), or its KL term to N(0, I) (gaussian_kl)."""

    def __init__(self, term: Term, reduction: str):
        super().__init__()
        self.term, self.reduction = term, reduction
        self.head = torch.nn.Linear(6, 16, dtype=torch.float64)

    def forward(self, features, *z):
        mu, logvar = self.head(features).chunk(2, dim=1)
        return self.term.fused(*z, mu, logvar, self.reduction)


def codes(term: Term, batch: int) -> list[torch.Tensor]:
    """The tensors a Head takes besides the features: z for the NLL, none for the KL."""
    return [torch.randn(batch, 8, dtype=torch.float64, requires_grad=True)
            for _ in range(term.arity - 2)]


@pytest.mark.parametrize("term,reduction", [(NLL, "batch_sum"), (KL, "sum"), (KL, "batch_sum")],
                         ids=str)
@pytest.mark.parametrize("dynamic", [None, True], ids=["default", "dynamic"])
def test_compile_fullgraph_matches_eager_with_gradients(term, reduction, dynamic):
    torch._dynamo.reset()
    model = Head(term, reduction)
    compiled = torch.compile(model, fullgraph=True, dynamic=dynamic)
    for batch in (4, 6, 9):
        features = torch.randn(batch, 6, dtype=torch.float64)
        z = codes(term, batch)
        out = compiled(features, *z)
        grads = torch.autograd.grad(out, [*z, *model.parameters()])
        expected = model(features, *z)
        expected_grads = torch.autograd.grad(expected, [*z, *model.parameters()])
        assert rel_err(out, expected) <= 1e-12
        for g, e in zip(grads, expected_grads):
            assert rel_err(g, e) <= 1e-12
    torch._dynamo.reset()


@pytest.mark.parametrize("term", TERMS, ids=str)
def test_compile_graph_contains_the_fused_operators(term):
    torch._dynamo.reset()
    seen = []

    def backend(gm, example_inputs):
        seen.extend(str(n.target) for n in gm.graph.nodes if n.op == "call_function")
        return make_boxed_func(gm)

    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    model = Head(term, term.reductions[0])
    out = torch.compile(model, fullgraph=True, backend=aot_autograd(fw_compiler=backend,
                                                                    bw_compiler=backend))(
        torch.randn(4, 6, dtype=torch.float64), *codes(term, 4))
    out.backward()
    assert f"i2i_fast.{term.name}.default" in seen
    assert f"i2i_fast.{term.name}_backward.default" in seen
    torch._dynamo.reset()


@pytest.mark.parametrize("term", TERMS, ids=str)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_autocast_outputs_give_a_float32_loss_with_float32_accumulation(term, dtype):
    features = torch.randn(8, 6)
    head = torch.nn.Linear(6, 16)
    z = [torch.randn(8, 8) for _ in range(term.arity - 2)]
    with torch.autocast("cpu", dtype=dtype):
        mu, logvar = head(features).chunk(2, dim=1)
        z = [t.to(mu.dtype) for t in z]
        loss = term.fused(*z, mu, logvar)
    assert mu.dtype == dtype and loss.dtype == torch.float32
    expected = term.reference(*(t.double() for t in (*z, mu, logvar)))
    assert rel_err(loss, expected) <= 1e-6
    loss.backward()
    assert head.weight.grad is not None and torch.isfinite(head.weight.grad).all()
