"""The triton backend of the Gaussian NLL: the operators themselves (opcheck, gradcheck,
torch.compile, the refused double backward, direct calls checked) and the compilation of every
kernel variant for sm_90. Values and gradients against the reference, dtypes, layouts and the
extremes of the log-variance are in test_gaussian_nll_values.py, which runs every backend (the
Triton interpreter included).

Without a GPU the kernels run in the Triton interpreter on CPU tensors (tests/conftest.py sets
TRITON_INTERPRET=1); with a GPU the same checks run on CUDA tensors (parameters marked `cuda`).
"""

from __future__ import annotations

import pytest
import torch

import i2i_fast.ops as ops
from helpers import rel_err
from triton_test_devices import DEVICES, INTERPRETER, needs_triton, run_compile_check


def inputs(device, shape=(3, 8), dtype=torch.float64, requires_grad=False):
    g = torch.Generator().manual_seed(0)
    return tuple(torch.randn(shape, generator=g, dtype=dtype).to(device)
                 .requires_grad_(requires_grad) for _ in range(3))


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck(device):
    from i2i_fast.ops.gaussian_nll import triton as tk

    z, mu, logvar = inputs(device, (2, 3, 5), torch.float32, requires_grad=True)
    for reduction in ("batch_sum", "sum", "mean"):
        torch.library.opcheck(tk.gaussian_nll_op, (z, mu, logvar, reduction))
    torch.library.opcheck(tk.gaussian_nll_backward_op,
                          (torch.tensor(1.5, device=device), z.detach(), mu.detach(),
                           logvar.detach(), "mean"))


@pytest.mark.parametrize("device", DEVICES)
def test_gradcheck(device):
    z, mu, logvar = inputs(device, (2, 5), requires_grad=True)
    with ops.use_backend("triton"):
        assert torch.autograd.gradcheck(lambda a, b, c: ops.gaussian_nll(a, b, c),
                                        (z, mu, logvar))


@pytest.mark.parametrize("device", DEVICES)
def test_compile_fullgraph_matches_the_reference(device):
    z, mu, logvar = inputs(device, (4, 8), torch.float32)

    def step(a, b, c):
        return ops.gaussian_nll(a, b, c) + ops.gaussian_nll(a, c, b, "mean")

    compiled = torch.compile(step, fullgraph=True)
    leaves = [t.detach().clone().requires_grad_() for t in (z, mu, logvar)]
    with ops.use_backend("triton"):
        loss = compiled(*leaves)
    grads = torch.autograd.grad(loss, leaves)
    ref_leaves = [t.detach().clone().requires_grad_() for t in (z, mu, logvar)]
    ref = (ops.reference.gaussian_nll(*ref_leaves)
           + ops.reference.gaussian_nll(ref_leaves[0], ref_leaves[2], ref_leaves[1], "mean"))
    ref_grads = torch.autograd.grad(ref, ref_leaves)
    assert rel_err(loss.detach().cpu(), ref.detach().cpu()) <= 1e-5
    for a, b in zip(grads, ref_grads):
        assert rel_err(a.cpu(), b.cpu()) <= 1e-5
    torch._dynamo.reset()


@pytest.mark.parametrize("device", DEVICES)
def test_double_backward_is_an_error(device):
    z, mu, logvar = inputs(device, requires_grad=True)
    with ops.use_backend("triton"):
        loss = ops.gaussian_nll(z, mu, logvar)
    (g,) = torch.autograd.grad(loss, z, create_graph=True)
    with pytest.raises(RuntimeError):
        torch.autograd.grad(g.sum(), z)


@pytest.mark.parametrize("device", DEVICES)
def test_direct_operator_calls_are_checked(device):
    from i2i_fast.ops.gaussian_nll import triton as tk

    z, mu, logvar = inputs(device)
    with pytest.raises(ValueError, match="gaussian_nll: reduction: expected one of"):
        tk.gaussian_nll_op(z, mu, logvar, "none")
    with pytest.raises(ValueError, match=r"gaussian_nll: mu: expected the shape of z"):
        tk.gaussian_nll_op(z, mu[:, :3], logvar, "sum")
    with pytest.raises(ValueError, match="gaussian_nll_backward: grad_loss: expected a scalar"):
        tk.gaussian_nll_backward_op(torch.ones(3, device=device), z, mu, logvar, "sum")


@needs_triton
def test_triton_backend_has_the_operator():
    assert "gaussian_nll" in ops.get_backend("triton").ops


@pytest.mark.skipif(not INTERPRETER, reason="the Triton interpreter is off")
def test_interpreter_takes_cpu_tensors_only_when_forced():
    z = torch.zeros(2, 8)
    assert ops.chosen_backend("gaussian_nll", z) != "triton"
    with ops.use_backend("triton"):
        assert ops.chosen_backend("gaussian_nll", z) == "triton"


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
