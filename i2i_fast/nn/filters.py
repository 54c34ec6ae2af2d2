"""Fixed (not learned) filters."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class HighPass(nn.Module):
    """StarGAN v2's high-pass filter: a depthwise 3x3 convolution (zero padding 1) with the
    Laplacian-like kernel [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]] / w_hpf on every channel.

    The kernel is a non-persistent buffer: it follows ``.to()`` but is neither a parameter nor
    part of the state dict (as in the official code). forward: (N, C, H, W) → (N, C, H, W).
    """

    def __init__(self, w_hpf: float):
        super().__init__()
        if not w_hpf > 0:
            raise ValueError(f"HighPass: w_hpf: expected a positive weight, got {w_hpf}")
        self.w_hpf = float(w_hpf)
        kernel = torch.tensor([[-1.0, -1.0, -1.0], [-1.0, 8.0, -1.0], [-1.0, -1.0, -1.0]])
        self.register_buffer("kernel", kernel / self.w_hpf, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        weight = self.kernel.to(x.dtype).expand(channels, 1, 3, 3)
        return F.conv2d(x, weight, padding=1, groups=channels)

    def extra_repr(self) -> str:
        return f"w_hpf={self.w_hpf}"
