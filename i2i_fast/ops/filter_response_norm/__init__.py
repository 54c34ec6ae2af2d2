"""Filter response normalization with a thresholded linear unit (FRN + TLU), TUNIT's
discriminator normalization.

The public function checks its arguments (``checks``: the one definition every backend and the
fake implementations run), picks a backend (see ``backends``) and runs it. Every backend computes
``reference.filter_response_norm`` and is differentiable in x, weight, bias and tau, twice: the
fused backends' gradient is itself differentiable (built with ``create_graph=True``, as TUNIT's
R1 penalty builds it), the compiled backends' through their fused backward and double backward
operators (csrc/filter_response_norm/double_backward_aten.h has the formula), the Triton
backend's by computing it with ``reference.filter_response_norm_backward``, plain PyTorch. Forward-mode derivatives (torch.func.jvp, torch.autograd.forward_ad) come from the
reference backend only: the fused backends refuse inputs with tangents, naming the operator.

Shapes: x (N, C, H, W), contiguous, channels-last or any other strides (the output keeps x's
memory format: contiguous or channels-last; other strides give a contiguous output); weight,
bias, tau (C,). dtypes: float16, bfloat16, float32, float64; the statistics accumulate in float32
(float64 for float64); the parameters have x's dtype, or float32 for a float16/bfloat16 x.
"""

from __future__ import annotations

import torch

from .. import extension, triton_support
from ..backends import implement, select
from . import checks, reference

OPS = ("filter_response_norm",)


def filter_response_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                         tau: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """FRN + TLU (Singh & Krishnan, CVPR 2020), as TUNIT's discriminator computes it:

        nu2 = mean over (H, W) of x²                           per (n, c)
        y   = max(weight · x · rsqrt(nu2 + eps) + bias, tau)   weight, bias, tau per channel

    At a tie (the affine value equal to tau) the gradient goes half to each side, as
    torch.maximum's (TUNIT's torch.max) does.

    Args:
        x: (N, C, H, W).
        weight, bias, tau: (C,) (TUNIT's (1, C, 1, 1) parameters as flat views).
        eps: added to the mean of squares; finite and > 0 (TUNIT: 1e-6).
    Returns:
        A tensor like x.
    """
    eps = checks.filter_response_norm(x, weight, bias, tau, eps)
    return select("filter_response_norm", x)(x, weight, bias, tau, eps)


implement("reference", "filter_response_norm", reference.filter_response_norm)
if extension.state().loaded:
    from . import fake as _fake

    _fake.register()
    # One operator on both devices: the dispatcher runs the CPU or the CUDA kernel by x's device.
    for _backend in ("cpu", "cuda"):
        implement(_backend, "filter_response_norm", torch.ops.i2i_fast.filter_response_norm.default)
if triton_support.state().unavailable_reason is None:
    from . import triton as _triton

    implement("triton", "filter_response_norm", _triton.filter_response_norm)
