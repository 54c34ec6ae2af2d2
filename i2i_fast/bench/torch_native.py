"""The normalizations as the official implementations compute them with stock PyTorch: the
``torch_native`` baseline of the benchmarks.

The reference backend (i2i_fast.ops.reference) is the specification, written as explicit
formulas (mean, var, subtract, divide, ...). The official code reaches PyTorch's own fused
kernels where it can, which is faster in eager mode:

  AdaIN          MUNIT's networks.AdaptiveInstanceNorm2d: F.batch_norm (training mode) over a
                 (1, N*C, H, W) view, the per-sample weight and bias as its affine
  InstanceNorm   nn.InstanceNorm2d: F.instance_norm
  LayerNorm      "standard" (DRIT): F.layer_norm over (C, H, W), then the per-channel affine;
                 "munit": MUNIT's networks.LayerNorm is the explicit formula, i.e. the reference

and each applies its activation as a separate operator. Same signatures as i2i_fast.ops, same
values (tests/test_bench_torch_native.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F

NORM_OPS = ("adain", "instance_norm", "layer_norm")


def _activate(y: torch.Tensor, activation: str | None, negative_slope: float) -> torch.Tensor:
    from i2i_fast.ops.normalization.reference import activate

    return activate(y, activation, negative_slope)


def adain(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5,
          activation: str | None = None, negative_slope: float = 0.2) -> torch.Tensor:
    n, c = x.shape[:2]
    stats_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    running_mean = torch.zeros(n * c, device=x.device, dtype=stats_dtype)
    running_var = torch.ones(n * c, device=x.device, dtype=stats_dtype)
    out = F.batch_norm(x.contiguous().view(1, n * c, *x.shape[2:]), running_mean, running_var,
                       weight.reshape(-1), bias.reshape(-1), True, 0.1, eps)
    return _activate(out.view(x.shape), activation, negative_slope)


def instance_norm(x: torch.Tensor, weight: torch.Tensor | None = None,
                  bias: torch.Tensor | None = None, eps: float = 1e-5,
                  activation: str | None = None, negative_slope: float = 0.2) -> torch.Tensor:
    return _activate(F.instance_norm(x, weight=weight, bias=bias, eps=eps), activation,
                     negative_slope)


def layer_norm(x: torch.Tensor, weight: torch.Tensor | None = None,
               bias: torch.Tensor | None = None, eps: float = 1e-5, style: str = "munit",
               activation: str | None = None, negative_slope: float = 0.2) -> torch.Tensor:
    from i2i_fast.ops import reference

    if style != "standard":
        return reference.layer_norm(x, weight, bias, eps, style, activation, negative_slope)
    y = F.layer_norm(x, x.shape[1:], eps=eps)
    view = (1, -1) + (1,) * (x.dim() - 2)
    if weight is not None:
        y = y * weight.view(view)
    if bias is not None:
        y = y + bias.view(view)
    return _activate(y, activation, negative_slope)


@contextlib.contextmanager
def eager_torch_native() -> Iterator[None]:
    """Every i2i_fast operator inside the block on the reference backend, with the
    normalizations computed as above (restored on exit)."""
    from i2i_fast import ops

    backend = ops.get_backend("reference")
    saved = {op: backend.ops[op] for op in NORM_OPS}
    for op in NORM_OPS:
        ops.implement("reference", op, globals()[op])
    try:
        with ops.use_backend("reference"):
            yield
    finally:
        for op, fn in saved.items():
            ops.implement("reference", op, fn)
