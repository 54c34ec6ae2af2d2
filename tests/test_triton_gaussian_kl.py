"""The triton backend of the KL term: the operators themselves (opcheck, gradcheck,
torch.compile, the refused double backward, direct calls checked). Values and gradients against
the reference, dtypes, layouts and the extremes of the log-variance are in
test_gaussian_kl_values.py, which runs every backend (the Triton interpreter included); the
compilation of its kernels for sm_90 is in the family's check (test_triton_gaussian_nll.py,
triton_gaussian_nll_compile_check.py).

Without a GPU the kernels run in the Triton interpreter on CPU tensors (tests/conftest.py sets
TRITON_INTERPRET=1); with a GPU the same checks run on CUDA tensors (parameters marked `cuda`).
"""

from __future__ import annotations

import pytest
import torch

import i2i_fast.ops as ops
from helpers import rel_err
from triton_test_devices import DEVICES, INTERPRETER, needs_triton


def inputs(device, shape=(3, 8), dtype=torch.float64, requires_grad=False):
    g = torch.Generator().manual_seed(0)
    return tuple(torch.randn(shape, generator=g, dtype=dtype).to(device)
                 .requires_grad_(requires_grad) for _ in range(2))


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck(device):
    from i2i_fast.ops.gaussian_nll import triton as tk

    mu, logvar = inputs(device, (2, 3, 5), torch.float32, requires_grad=True)
    for reduction in ("sum", "batch_sum", "mean"):
        torch.library.opcheck(tk.gaussian_kl_op, (mu, logvar, reduction))
    torch.library.opcheck(tk.gaussian_kl_backward_op,
                          (torch.tensor(1.5, device=device), mu.detach(), logvar.detach(),
                           "batch_sum"))


@pytest.mark.parametrize("device", DEVICES)
def test_gradcheck(device):
    mu, logvar = inputs(device, (2, 5), requires_grad=True)
    with ops.use_backend("triton"):
        assert torch.autograd.gradcheck(lambda a, b: ops.gaussian_kl(a, b), (mu, logvar))


@pytest.mark.parametrize("device", DEVICES)
def test_compile_fullgraph_matches_the_reference(device):
    mu, logvar = inputs(device, (4, 8), torch.float32)

    def step(a, b):
        return ops.gaussian_kl(a, b) + ops.gaussian_kl(b, a, "batch_sum")

    compiled = torch.compile(step, fullgraph=True)
    leaves = [t.detach().clone().requires_grad_() for t in (mu, logvar)]
    with ops.use_backend("triton"):
        loss = compiled(*leaves)
    grads = torch.autograd.grad(loss, leaves)
    ref_leaves = [t.detach().clone().requires_grad_() for t in (mu, logvar)]
    ref = (ops.reference.gaussian_kl(*ref_leaves)
           + ops.reference.gaussian_kl(ref_leaves[1], ref_leaves[0], "batch_sum"))
    ref_grads = torch.autograd.grad(ref, ref_leaves)
    assert rel_err(loss.detach().cpu(), ref.detach().cpu()) <= 1e-5
    for a, b in zip(grads, ref_grads):
        assert rel_err(a.cpu(), b.cpu()) <= 1e-5
    torch._dynamo.reset()


@pytest.mark.parametrize("device", DEVICES)
def test_double_backward_is_an_error(device):
    mu, logvar = inputs(device, requires_grad=True)
    with ops.use_backend("triton"):
        loss = ops.gaussian_kl(mu, logvar)
    (g,) = torch.autograd.grad(loss, logvar, create_graph=True)
    with pytest.raises(RuntimeError):
        torch.autograd.grad(g.sum(), logvar)


@pytest.mark.parametrize("device", DEVICES)
def test_direct_operator_calls_are_checked(device):
    from i2i_fast.ops.gaussian_nll import triton as tk

    mu, logvar = inputs(device)
    with pytest.raises(ValueError, match="gaussian_kl: reduction: expected one of"):
        tk.gaussian_kl_op(mu, logvar, "none")
    with pytest.raises(ValueError, match=r"gaussian_kl: logvar: expected the shape of mu"):
        tk.gaussian_kl_op(mu, logvar[:, :3], "sum")
    with pytest.raises(ValueError, match="gaussian_kl_backward: grad_loss: expected a scalar"):
        tk.gaussian_kl_backward_op(torch.ones(3, device=device), mu, logvar, "sum")


@needs_triton
def test_triton_backend_has_the_operator():
    assert "gaussian_kl" in ops.get_backend("triton").ops


@pytest.mark.skipif(not INTERPRETER, reason="the Triton interpreter is off")
def test_interpreter_takes_cpu_tensors_only_when_forced():
    mu = torch.zeros(2, 8)
    assert ops.chosen_backend("gaussian_kl", mu) != "triton"
    with ops.use_backend("triton"):
        assert ops.chosen_backend("gaussian_kl", mu) == "triton"
