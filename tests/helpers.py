"""Shared test helpers: building inputs in every layout and comparing against float64."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch

import i2i_fast.ops as ops

# Tolerance on max|actual - expected| / max(max|expected|, 1), per dtype of x.
TOLERANCE = {
    torch.float64: 1e-10,
    torch.float32: 3e-5,
    torch.float16: 4e-3,
    torch.bfloat16: 3e-2,
}

NORM_OPS = ("adain", "instance_norm", "layer_norm/munit", "layer_norm/standard")


def poison_allocator(nbytes: int, copies: int = 4, device="cuda") -> None:
    """Fill freed blocks of the caching allocator with NaN bits (0xFF bytes are NaN in every
    float dtype), so that the outputs allocated next start as NaN: an element a kernel forgets to
    write then fails the comparison."""
    blocks = [torch.full((max(nbytes, 512),), 255, dtype=torch.uint8, device=device)
              for _ in range(copies)]
    del blocks


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """torch.set_num_threads(n) for the block; the previous count is restored on the way out."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def compiled_matches_eager(fn: Callable, dynamic, calls, values_and_grads: Callable) -> None:
    """torch.compile(fn, fullgraph=True, dynamic=dynamic) gives fn's values and gradients on each
    call in turn (a recompilation or a dynamic shape after the first); values_and_grads(fn,
    *call) -> (out, grads) is the test file's own."""
    compiled = torch.compile(fn, fullgraph=True, dynamic=dynamic)
    try:
        for call in calls:
            expected, expected_grads = values_and_grads(fn, *call)
            got, grads = values_and_grads(compiled, *call)
            assert rel_err(got, expected) <= TOLERANCE[torch.float32]
            for g, e in zip(grads, expected_grads):
                assert rel_err(g, e) <= TOLERANCE[torch.float32]
    finally:
        torch._dynamo.reset()


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """Same values, memory order (N, spatial..., C), for any rank."""
    perm = [0, *range(2, x.dim()), 1]
    inverse = [perm.index(i) for i in range(x.dim())]
    return x.permute(perm).contiguous().permute(inverse)


def strided_view(x: torch.Tensor) -> torch.Tensor:
    """Same values as x, as a non-contiguous, non-channels-last slice of a larger tensor."""
    big_shape = list(x.shape)
    big_shape[1] *= 2
    big_shape[-1] += 3
    big = torch.full(big_shape, float("nan"), dtype=x.dtype, device=x.device)
    view = big[:, ::2, ..., 1 : 1 + x.shape[-1]]
    view.copy_(x)
    return view  # degenerate shapes (all sizes 1) may still count as contiguous


def in_layout(x: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "contiguous":
        return x.contiguous()
    if layout == "channels_last":
        return channels_last(x)
    if layout == "strided":
        return strided_view(x)
    raise ValueError(layout)


def make_args(op: str, shape, dtype, param_dtype=None, seed=0):
    """x, weight, bias for an op name of NORM_OPS (values exactly representable in dtype)."""
    g = torch.Generator().manual_seed(seed)
    n, c = shape[:2]
    x = (torch.randn(shape, generator=g, dtype=torch.float64) * 2 + 0.7).to(dtype)
    pshape = (n, c) if op == "adain" else (c,)
    pdt = param_dtype or dtype
    w = (torch.rand(pshape, generator=g, dtype=torch.float64) * 1.5 + 0.25).to(pdt)
    b = torch.randn(pshape, generator=g, dtype=torch.float64).to(pdt)
    return x, w, b


def call(op: str, x, w, b, activation=None, fn_source=ops):
    """Call op (a NORM_OPS name) from i2i_fast.ops or i2i_fast.ops.reference."""
    if op.startswith("layer_norm"):
        style = op.split("/")[1]
        return fn_source.layer_norm(x, w, b, style=style, activation=activation)
    return getattr(fn_source, op)(x, w, b, activation=activation)


def rel_err(actual: torch.Tensor, expected: torch.Tensor) -> float:
    a, e = actual.double(), expected.double()
    if torch.isnan(e).any() or torch.isnan(a).any():
        same_nan = torch.equal(torch.isnan(a), torch.isnan(e))
        if not same_nan:
            return float("inf")
        mask = ~torch.isnan(e)
        a, e = a[mask], e[mask]
        if e.numel() == 0:
            return 0.0
    scale = max(e.abs().max().item(), 1.0)
    return (a - e).abs().max().item() / scale


def reference_with_grads(op, x, w, b, activation, grad_out):
    """Float64 reference output and gradients (x, weight, bias) for the same inputs."""
    x64, w64, b64 = (t.detach().double().requires_grad_() for t in (x, w, b))
    y = call(op, x64, w64, b64, activation, ops.reference)
    gx, gw, gb = torch.autograd.grad(y, (x64, w64, b64), grad_out.double())
    return y.detach(), gx, gw, gb


def fused_with_grads(op, x, w, b, activation, grad_out, layout="contiguous"):
    """Fused output and gradients; x is re-made in `layout` as a leaf that requires grad."""
    xr = in_layout(x.detach(), layout).requires_grad_()
    wr, br = (t.detach().clone().requires_grad_() for t in (w, b))
    y = call(op, xr, wr, br, activation)
    gx, gw, gb = torch.autograd.grad(y, (xr, wr, br), grad_out)
    return y.detach(), gx, gw, gb, xr


# Constants whose sums over the test groups are exact in every dtype: a group filled with one of
# them has exactly that mean and zero variance in every backend and in the reference.
EXACT_CONSTANTS = (0.0, 0.75, -2.5)


def with_constant_groups(x: torch.Tensor, value: float) -> torch.Tensor:
    """A copy of x (N >= 2, same layout) whose sample 0 and channel 0 of sample 1 hold `value`:
    constant groups for every normalization (instance rows, and sample 0 for layer statistics)
    next to non-constant ones."""
    x = x.clone()
    x[0] = value
    x[1, 0] = value
    return x


def check_against_reference(op, x, w, b, activation, grad_out, tol, backend=None) -> None:
    """Output and gradients of x, weight and bias from `backend` (the automatic choice if None)
    against the float64 reference: finite where the reference is, and within tol. On a GPU the
    outputs are allocated from memory poisoned with NaN."""
    xr = x.detach().clone().requires_grad_()
    wr, br = (t.detach().clone().requires_grad_() for t in (w, b))
    if x.is_cuda:
        poison_allocator(x.numel() * x.element_size(), device=x.device)
    if backend is None:
        y = call(op, xr, wr, br, activation)
    else:
        with ops.use_backend(backend):
            y = call(op, xr, wr, br, activation)
    grads = torch.autograd.grad(y, (xr, wr, br), grad_out)
    expected = reference_with_grads(op, x, w, b, activation, grad_out)
    for name, actual, ref in zip(("out", "grad_x", "grad_weight", "grad_bias"),
                                 (y.detach(), *grads), expected):
        assert torch.equal(torch.isfinite(actual.double()), torch.isfinite(ref)), (
            f"{op} {tuple(x.shape)} {x.dtype}: {name} is not finite where the reference is")
        err = rel_err(actual, ref)
        assert err <= tol, f"{op} {tuple(x.shape)} {x.dtype} {activation}: {name} error {err:.2e}"
