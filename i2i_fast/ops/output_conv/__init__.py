"""A generator's output layer: a stride-1 convolution to a few channels (an image), its padding
and activation fused.

``output_conv2d(x, weight, bias, padding, padding_mode, activation)`` computes

    activation(conv2d(pad(x, padding, padding_mode), weight) + bias)

with padding_mode "zeros" or "reflect", activation "none" or "tanh", and bias per channel (C_out,)
or per sample (N, C_out) (DRIT's attribute code enters its 1x1 output conv as a per-sample bias).
MUNIT's and MISO's decoders end in a 7x7 reflect-padded conv to RGB and tanh, DRIT's in a 1x1
(transposed) conv to RGB and tanh.

Why an operator: oneDNN vectorises a convolution over blocks of 16 output channels, so a conv to
3 channels leaves most of each vector idle (about a third of its rate on MUNIT's 64 -> 3 7x7
conv at 256^2, and its backward slower still). The CPU kernel vectorises over neighbouring
output columns instead and reads the padding in place (no padded copy, no separate padding and
tanh passes); csrc/output_conv/output_conv_cpu.cpp describes it. It suits few output channels
(up to 4 in registers); more are computed in blocks of 4 and correct, not fast.

Backends: "cpu" (the compiled operator ``torch.ops.i2i_fast.output_conv2d``), "cuda" (the same
operator; on CUDA ATen's cuDNN convolution with the padding and tanh around it: no fused kernel),
and "reference" (the padding, F.conv2d and tanh). There is no Triton implementation: on a GPU the
"cuda" backend serves. All compute forward-mode derivatives.

dtypes: float16, bfloat16, float32, float64 (accumulated in float32, float64 for float64); any
layout of x (the output has x's suggested memory format, as F.conv2d's).
"""

from __future__ import annotations

import torch

from .. import extension
from ..backends import implement, select
from ..convolution_autocast import cast_like_conv, under_autocast
from . import checks, reference

OPS = ("output_conv2d",)


def output_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                  padding: int = 0, padding_mode: str = "zeros",
                  activation: str = "none") -> torch.Tensor:
    """activation(conv2d(pad(x), weight) + bias), stride 1.

    x (N, C, H, W) floating; weight (C_out, C, k_h, k_w) and bias None, (C_out,) or (N, C_out) in
    x's dtype and on its device; padding an int >= 0 on every side, padding_mode "zeros" or
    "reflect" (padding < H and < W); activation "none" or "tanh". Returns (N, C_out,
    H + 2 padding - k_h + 1, W + 2 padding - k_w + 1). Differentiable in x, weight and bias.
    Under autocast the operands are cast as autocast casts F.conv2d's.
    """
    if under_autocast(x):
        with cast_like_conv(x, weight, bias) as (x, weight, bias):
            return output_conv2d(x, weight, bias, padding, padding_mode, activation)
    checks.output_conv2d(x, weight, bias, padding, padding_mode, activation)
    return select("output_conv2d", x)(x, weight, bias, padding, padding_mode, activation)


implement("reference", "output_conv2d", reference.output_conv2d)
if extension.state().loaded:
    from . import fake as _fake

    _fake.register()
    for _backend in ("cpu", "cuda"):  # one operator; the dispatcher runs x's device's kernels
        implement(_backend, "output_conv2d", torch.ops.i2i_fast.output_conv2d.default,
                  forward_ad=True)
