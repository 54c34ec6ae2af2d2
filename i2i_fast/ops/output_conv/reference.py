"""The definition of output_conv2d: the padding, PyTorch's convolution, the bias (per channel or
per sample) and the activation, as the layers it replaces compute them."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def output_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                  padding: int = 0, padding_mode: str = "zeros",
                  activation: str = "none") -> torch.Tensor:
    if padding_mode == "reflect" and padding > 0:
        x, padding = F.pad(x, (padding,) * 4, mode="reflect"), 0
    per_sample = bias is not None and bias.dim() == 2
    y = F.conv2d(x, weight, None if per_sample else bias, padding=padding)
    if per_sample:
        y = y + bias[:, :, None, None]
    return torch.tanh(y) if activation == "tanh" else y
