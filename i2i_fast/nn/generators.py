"""StarGAN v2's generator: a pre-activation residual encoder-decoder whose decoder is modulated
by a style code (AdaIN with ``1 + gamma``), with optional high-pass skips from the encoder.

Child names follow the official code (from_rgb, encode, decode, to_rgb, hpf), so state dicts
have the official keys.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .filters import HighPass
from .multi_domain import first_width
from .norms import InstanceNorm
from .preact_resblocks import AdaINPreActResBlock, PreActResBlock

Masks = tuple[torch.Tensor, torch.Tensor]


class PreActStyleGenerator(nn.Module):
    """G(x (N, 3, S, S), s (N, style_dim), masks=None) → (N, 3, S, S), not squashed (no tanh).

    masks: (mask_a, mask_b), each (N, 1, h, w) in [0, 1]; required when w_hpf > 0.
    """

    def __init__(self, image_size: int = 256, style_dim: int = 64, max_conv_dim: int = 512,
                 w_hpf: float = 1.0, dim_in: int | None = None,
                 hpf_resolutions: tuple[int, ...] = (32, 64, 128)):
        super().__init__()
        dim_in = first_width(image_size, dim_in)
        self.image_size, self.w_hpf = image_size, float(w_hpf)
        self.hpf_resolutions = tuple(hpf_resolutions)
        self.from_rgb = nn.Conv2d(3, dim_in, 3, 1, 1)
        self.encode = nn.ModuleList()
        self.decode = nn.ModuleList()
        # Index 1 was the LeakyReLU, now fused into the instance norm; the Identity keeps the
        # official state-dict keys (to_rgb.0.*, to_rgb.2.*).
        self.to_rgb = nn.Sequential(
            InstanceNorm(dim_in, affine=True, activation="leaky_relu", negative_slope=0.2),
            nn.Identity(),
            nn.Conv2d(dim_in, 3, 1, 1, 0))
        repeat_num = int(math.log2(image_size)) - 4 + (1 if w_hpf > 0 else 0)
        shortcut = w_hpf == 0
        dim_out = dim_in
        for _ in range(repeat_num):
            dim_out = min(dim_in * 2, max_conv_dim)
            self.encode.append(PreActResBlock(dim_in, dim_out, normalize=True, downsample=True))
            self.decode.insert(0, AdaINPreActResBlock(dim_out, dim_in, style_dim, upsample=True,
                                                      shortcut=shortcut))
            dim_in = dim_out
        for _ in range(2):  # bottleneck
            self.encode.append(PreActResBlock(dim_out, dim_out, normalize=True))
            self.decode.insert(0, AdaINPreActResBlock(dim_out, dim_out, style_dim,
                                                      shortcut=shortcut))
        if w_hpf > 0:
            self.hpf = HighPass(w_hpf)

    def forward(self, x: torch.Tensor, s: torch.Tensor, masks: Masks | None = None
                ) -> torch.Tensor:
        use_masks = self.w_hpf > 0
        if use_masks:
            check_masks("PreActStyleGenerator", masks, x)
        x = self.from_rgb(x)
        cache = {}
        for block in self.encode:
            if use_masks and x.shape[2] in self.hpf_resolutions:
                cache[x.shape[2]] = x
            x = block(x)
        for block in self.decode:
            x = block(x, s)
            size = x.shape[2]
            if use_masks and size in self.hpf_resolutions:
                mask = masks[0] if size == min(self.hpf_resolutions) else masks[1]
                mask = F.interpolate(mask, size=size, mode="bilinear")
                x = x + self.hpf(mask * cache[size])
        return self.to_rgb(x)


def check_masks(owner: str, masks: object, x: torch.Tensor) -> None:
    """masks: (mask_a, mask_b), each (N, 1, h, w) with x's N, on x's device."""
    if masks is None:
        raise ValueError(f"{owner}: masks: expected (mask_a, mask_b) for the high-pass skips "
                         f"(w_hpf > 0), got None")
    if not (isinstance(masks, (tuple, list)) and len(masks) == 2
            and all(isinstance(m, torch.Tensor) for m in masks)):
        raise TypeError(f"{owner}: masks: expected a pair of tensors (mask_a, mask_b), got "
                        f"{type(masks).__name__}")
    for name, m in zip(("mask_a", "mask_b"), masks):
        if m.dim() != 4 or m.shape[0] != x.shape[0] or m.shape[1] != 1:
            raise ValueError(f"{owner}: masks: {name}: expected shape ({x.shape[0]}, 1, h, w), "
                             f"got {tuple(m.shape)}")
        if m.device != x.device:
            raise ValueError(f"{owner}: masks: {name}: expected device {x.device}, got "
                             f"{m.device}")
        if not m.is_floating_point():
            raise TypeError(f"{owner}: masks: {name}: expected a floating point tensor, got "
                            f"{m.dtype}")
