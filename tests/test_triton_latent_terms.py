"""The triton backend of the Gaussian latent terms (gaussian_nll, gaussian_kl): the operators
themselves (opcheck, gradcheck, torch.compile, the refused double backward, direct calls checked)
and the compilation of every kernel variant for sm_90. Values and gradients against the reference,
dtypes, layouts and the extremes of the log-variance are in test_gaussian_nll_values.py and
test_gaussian_kl_values.py, which run every backend (the Triton interpreter included).

Without a GPU the kernels run in the Triton interpreter on CPU tensors (tests/conftest.py sets
TRITON_INTERPRET=1); with a GPU the same checks run on CUDA tensors (parameters marked `cuda`).
"""

from __future__ import annotations

import pytest
import torch

import i2i_fast.ops as ops
from helpers import rel_err
from latent_term_checks import TERMS
from triton_test_devices import DEVICES, INTERPRETER, needs_triton, run_compile_check


def inputs(term, device, shape=(3, 8), dtype=torch.float64, requires_grad=False):
    g = torch.Generator().manual_seed(0)
    return tuple(torch.randn(shape, generator=g, dtype=dtype).to(device)
                 .requires_grad_(requires_grad) for _ in range(term.arity))


def triton_ops(term):
    """The term's Triton operators: (forward, backward)."""
    from i2i_fast.ops.gaussian_nll import triton as tk

    return getattr(tk, f"{term.name}_op"), getattr(tk, f"{term.name}_backward_op")


@pytest.mark.parametrize("term", TERMS, ids=str)
@pytest.mark.parametrize("device", DEVICES)
def test_opcheck(term, device):
    forward, backward = triton_ops(term)
    xs = inputs(term, device, (2, 3, 5), torch.float32, requires_grad=True)
    for reduction in term.reductions:
        torch.library.opcheck(forward, (*xs, reduction))
        torch.library.opcheck(backward, (torch.tensor(1.5, device=device),
                                         *(t.detach() for t in xs), reduction))


@pytest.mark.parametrize("term", TERMS, ids=str)
@pytest.mark.parametrize("device", DEVICES)
def test_gradcheck(term, device):
    xs = inputs(term, device, (2, 5), requires_grad=True)
    with ops.use_backend("triton"):
        assert torch.autograd.gradcheck(lambda *a: term.fused(*a), xs)


@pytest.mark.parametrize("term", TERMS, ids=str)
@pytest.mark.parametrize("device", DEVICES)
def test_compile_fullgraph_matches_the_reference(term, device):
    """Two calls in one compiled graph, the second with mu and logvar swapped and another
    reduction."""
    xs = inputs(term, device, (4, 8), torch.float32)

    def step(fn, *a):
        return fn(*a) + fn(*a[:-2], a[-1], a[-2], term.second_reduction)

    compiled = torch.compile(lambda *a: step(term.fused, *a), fullgraph=True)
    leaves = [t.detach().clone().requires_grad_() for t in xs]
    with ops.use_backend("triton"):
        loss = compiled(*leaves)
    grads = torch.autograd.grad(loss, leaves)
    ref_leaves = [t.detach().clone().requires_grad_() for t in xs]
    ref = step(term.reference, *ref_leaves)
    ref_grads = torch.autograd.grad(ref, ref_leaves)
    assert rel_err(loss.detach().cpu(), ref.detach().cpu()) <= 1e-5
    for a, b in zip(grads, ref_grads):
        assert rel_err(a.cpu(), b.cpu()) <= 1e-5
    torch._dynamo.reset()


@pytest.mark.parametrize("term", TERMS, ids=str)
@pytest.mark.parametrize("device", DEVICES)
def test_double_backward_is_an_error(term, device):
    xs = inputs(term, device, requires_grad=True)
    for x in xs:
        with ops.use_backend("triton"):
            loss = term.fused(*xs)
        (g,) = torch.autograd.grad(loss, x, create_graph=True)
        with pytest.raises(RuntimeError):
            torch.autograd.grad(g.sum(), x)


@pytest.mark.parametrize("term", TERMS, ids=str)
@pytest.mark.parametrize("device", DEVICES)
def test_direct_operator_calls_are_checked(term, device):
    forward, backward = triton_ops(term)
    xs = inputs(term, device)
    first, second = term.inputs[:2]
    with pytest.raises(ValueError, match=f"{term.name}: reduction: expected one of"):
        forward(*xs, "none")
    with pytest.raises(ValueError, match=f"{term.name}: {second}: expected the shape of {first}"):
        forward(xs[0], xs[1][:, :3], *xs[2:], "sum")
    with pytest.raises(ValueError,
                       match=f"{term.name}_backward: grad_loss: expected a scalar"):
        backward(torch.ones(3, device=device), *xs, "sum")


@needs_triton
@pytest.mark.parametrize("term", TERMS, ids=str)
def test_triton_backend_has_the_operator(term):
    assert term.name in ops.get_backend("triton").ops


@pytest.mark.skipif(not INTERPRETER, reason="the Triton interpreter is off")
@pytest.mark.parametrize("term", TERMS, ids=str)
def test_interpreter_takes_cpu_tensors_only_when_forced(term):
    x = torch.zeros(2, 8)
    assert ops.chosen_backend(term.name, x) != "triton"
    with ops.use_backend("triton"):
        assert ops.chosen_backend(term.name, x) == "triton"


@pytest.mark.slow
@needs_triton
def test_every_kernel_compiles_for_sm90():
    """The real Triton compiler builds every kernel variant the operators launch (gaussian_nll's
    and gaussian_kl's), for an H100 (sm_90)."""
    lines = run_compile_check("triton_gaussian_nll_compile_check.py", "--arch", "90")
    summary = lines[-1]
    assert summary["failures"] == 0 and summary["compiled"] >= 12, summary
    assert {r["kernel"] for r in lines if "kernel" in r} == {
        "nll_partials_kernel", "term_finalize_kernel", "nll_grads_kernel", "kl_partials_kernel",
        "kl_grads_kernel"}
