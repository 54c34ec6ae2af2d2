"""The triton backend of filter_response_norm: its operators (opcheck, torch.compile), the kernels
torch finds behind them, and compilation of every kernel variant for sm_90. Values, gradients
and second derivatives against the reference are in test_filter_response_norm_values.py and
test_filter_response_norm_operators.py (backend "triton").

Without a GPU the kernels run in the Triton interpreter on CPU tensors (tests/conftest.py sets
TRITON_INTERPRET=1); with a GPU the same checks run on CUDA tensors (parameters marked `cuda`).
"""

from __future__ import annotations

import pytest
import torch

import i2i_fast.ops as ops
from helpers import channels_last, rel_err
from triton_test_devices import DEVICES, needs_triton, run_compile_check, triton_kernels_of


def inputs(device, shape=(2, 3, 5, 4), dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    c = shape[1]
    x = torch.randn(shape, generator=g).to(dtype)
    params = (torch.rand(c, generator=g) + 0.5, torch.randn(c, generator=g) * 0.5,
              torch.randn(c, generator=g) * 0.3)
    return (x.to(device), *(p.to(dtype).to(device) for p in params))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_opcheck(device, layout):
    lib = torch.ops.i2i_fast_triton
    x, w, b, t = inputs(device)
    if layout == "channels_last":
        x = channels_last(x)
    torch.library.opcheck(lib.filter_response_norm_forward.default,
                          tuple(a.clone().requires_grad_() for a in (x, w, b, t)) + (1e-6,))
    _, rstd = lib.filter_response_norm_forward(x, w, b, t, 1e-6)
    torch.library.opcheck(lib.filter_response_norm_backward.default,
                          (torch.randn_like(x), x, w, b, t, rstd, 1e-6))


@pytest.mark.parametrize("device", DEVICES)
def test_compile_fullgraph_calls_the_triton_operator(device):
    seen = []

    def backend(gm, example_inputs):
        seen.extend(str(node.target) for node in gm.graph.nodes if node.op == "call_function")
        return gm.forward

    x, w, b, t = inputs(device)
    torch._dynamo.reset()
    with ops.use_backend("triton"):
        out = torch.compile(lambda *a: ops.filter_response_norm(*a), fullgraph=True,
                            backend=backend)(x, w, b, t)
    torch._dynamo.reset()
    assert any("i2i_fast_triton.filter_response_norm_forward" in s for s in seen), seen
    assert rel_err(out, ops.reference.filter_response_norm(x, w, b, t)) < 1e-5


@needs_triton
def test_torch_finds_every_kernel_of_each_operator():
    """torch.library.triton_op finds the kernel behind each operator (its source is part of the
    AOTAutograd cache key). Checked with compiled-mode kernels, in a fresh process."""
    found = triton_kernels_of("i2i_fast.ops.filter_response_norm.triton",
                              ("filter_response_norm_forward", "filter_response_norm_backward"))
    assert found == {"filter_response_norm_forward": ["frn_forward_kernel"],
                     "filter_response_norm_backward": ["frn_backward_kernel"]}


@pytest.mark.slow
@needs_triton
def test_every_kernel_compiles_for_sm90():
    """The real Triton compiler builds every kernel variant the operators launch, for an H100."""
    lines = run_compile_check("triton_filter_response_norm_compile_check.py", "--arch", "90")
    summary = lines[-1]
    assert summary["failures"] == 0 and summary["compiled"] >= 20, summary
    assert {r["kernel"] for r in lines if "kernel" in r} == {"frn_forward_kernel",
                                                             "frn_backward_kernel"}
