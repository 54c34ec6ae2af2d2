"""Generators that translate an image into the style of a code given from outside.

- ``PreActStyleGenerator``: StarGAN v2's, a pre-activation residual encoder-decoder whose decoder
  is modulated by a style code (AdaIN with ``1 + gamma``), with optional high-pass skips from the
  encoder. Child names follow the official code (from_rgb, encode, decode, to_rgb, hpf).
- ``ContentStyleGenerator``: TUNIT's, MUNIT's auto-encoder without its style encoder: a content
  encoder, and a decoder whose AdaIN parameters an MLP computes from the style code. Child names
  follow the official TUNIT code (cnt_encoder, decoder, mlp).

So state dicts have the official keys.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .decoders import AdaINDecoder
from .encoders import ContentEncoder
from .entry_points import EntryPoints
from .filters import HighPass
from .mlp import MLP
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


class ContentStyleGenerator(EntryPoints):
    """TUNIT's G: ``encode(x (N, 3, S, S))`` → content (N, 2**n dim, 16, 16), n = log2(S / 16);
    ``decode(content, style (N, style_dim))`` → image (N, 3, S, S) in [-1, 1]. Training calls both
    through forward (``method.nets.generator.encode(x)``), so DistributedDataParallel sees them.

    The content encoder: 7x7 conv, n stride-2 4x4 convs, n_res residual blocks, instance norm and
    ReLU; the decoder: n_res residual blocks and n (2x upsampling, 5x5 conv) with AdaIN + ReLU,
    7x7 conv, tanh; both kinds of residual block add 0.1 x their branch; the MLP (3 layers of
    mlp_dim, ReLU) gives the decoder's AdaIN parameters, [bias, weight] per layer (no +1).
    dim None: the official width, 64 below 256², else 32."""

    entry_points = ("encode", "decode")

    def __init__(self, image_size: int = 128, style_dim: int = 128, dim: int | None = None,
                 n_res: int = 2, mlp_dim: int = 256):
        super().__init__()
        dim = dim if dim is not None else (64 if image_size < 256 else 32)
        n_downs = int(math.log2(image_size // 16))
        self.cnt_encoder = ContentEncoder(n_downs, n_res, 3, dim, "in", "relu", "reflect",
                                          residual_scale=0.1)
        self.decoder = AdaINDecoder(n_downs, n_res, self.cnt_encoder.out_channels, 3, "relu",
                                    "reflect", upsample_norm="adain", residual_scale=0.1)
        self.mlp = MLP(style_dim, self.decoder.num_adain_params, mlp_dim, 3, "relu")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.cnt_encoder(x)

    def decode(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.decoder(content, self.mlp(style))
