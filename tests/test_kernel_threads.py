"""The CPU kernels run their parallel loops on the threads torch is given, and their results do
not depend on how many threads that is.

at::parallel_for is a header template: a library compiled without OpenMP runs every loop on the
calling thread whatever torch.set_num_threads() says (this library did, unnoticed, until the
kernel_threads probe existed).
"""

from __future__ import annotations

import pytest
import torch

import i2i_fast.ops as ops
from helpers import threads
from i2i_fast import extension

pytestmark = pytest.mark.skipif(not extension.state().loaded,
                                reason="the compiled kernels are not available")


@pytest.mark.parametrize("n", [1, 2, 3])
def test_parallel_loops_use_every_thread(n):
    with threads(n):
        assert torch.ops.i2i_fast.kernel_threads() == n


def _norm(op, x, activation):
    c = x.shape[1]
    g = torch.Generator().manual_seed(3)
    if op == "adain":
        w = torch.rand(x.shape[0], c, generator=g, dtype=x.dtype) + 0.5
        b = torch.randn(x.shape[0], c, generator=g, dtype=x.dtype)
        return lambda t: ops.adain(t, w, b, activation=activation)
    w = torch.rand(c, generator=g, dtype=x.dtype) + 0.5
    b = torch.randn(c, generator=g, dtype=x.dtype)
    if op == "instance_norm":
        return lambda t: ops.instance_norm(t, w, b, activation=activation)
    return lambda t: ops.layer_norm(t, w, b, style="munit", activation=activation)


def _assert_same_with_one_and_two_threads(fn, x, grad):
    """fn(x) and its gradient for `grad`, bit for bit, whether the kernels get 1 or 2 threads."""
    results = []
    for n in (1, 2):
        leaf = x.detach().clone().requires_grad_()
        with threads(n):
            y = fn(leaf)
            (gx,) = torch.autograd.grad(y, leaf, grad)
        results.append((y, gx))
    (y1, g1), (y2, g2) = results
    assert torch.equal(y1, y2)
    assert torch.equal(g1, g2)


# Whole groups per thread (many groups), every group split across the threads (one large
# sample), and both layouts.
@pytest.mark.parametrize("op", ["adain", "instance_norm", "layer_norm"])
@pytest.mark.parametrize("shape", [(4, 16, 32, 32), (1, 2, 256, 200)],
                         ids=["many_groups", "split_groups"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_normalization_does_not_depend_on_the_thread_count(op, shape, layout):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    grad = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    _assert_same_with_one_and_two_threads(_norm(op, x, "relu"), x, grad)


@pytest.mark.parametrize("name, fn", [
    ("reflection_pad", lambda t: ops.reflection_pad(t, 3)),
    ("upsample_nearest", lambda t: ops.upsample_nearest(t, 2)),
    ("avg_pool", lambda t: ops.avg_pool(t, 2)),
    ("max_pool", lambda t: ops.max_pool(t, 2)),
])
def test_resampling_does_not_depend_on_the_thread_count(name, fn):
    x = torch.randn(4, 32, 64, 64, generator=torch.Generator().manual_seed(0))
    _assert_same_with_one_and_two_threads(fn, x, torch.randn_like(fn(x)))
