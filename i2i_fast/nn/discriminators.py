"""Patch discriminators.

- ``MultiScalePatchDiscriminator`` (MUNIT's MsImageDis, DRIT's MultiScaleDis, BicycleGAN's
  D_NLayersMulti): one PatchGAN per scale on a pyramid made by AvgPool2d(3, stride 2, padding 1,
  count_include_pad=False).
- ``ContentDiscriminator`` (DRIT's Dis_content): tells the content codes of two domains apart.
"""

from __future__ import annotations

import torch
from torch import nn

from .conv import Conv2dBlock

PATCHES = ("munit", "pix2pix")
SCALE_WIDTHS = ("same", "halved")


def munit_patch_net(in_channels: int, dim: int, n_layer: int, norm: str, activation: str,
                    pad_type: str, negative_slope: float = 0.2) -> nn.Sequential:
    """MUNIT's PatchGAN: 4x4 stride-2 conv (no norm), n_layer - 1 more doubling the width (with
    `norm`), 1x1 conv to one logit map. A side S gives S / 2**n_layer."""
    layers = [Conv2dBlock(in_channels, dim, 4, 2, 1, "none", activation, pad_type,
                          negative_slope)]
    for _ in range(n_layer - 1):
        layers.append(Conv2dBlock(dim, 2 * dim, 4, 2, 1, norm, activation, pad_type,
                                  negative_slope))
        dim *= 2
    layers.append(nn.Conv2d(dim, 1, 1, 1, 0))
    return nn.Sequential(*layers)


def pix2pix_patch_net(in_channels: int, dim: int, n_layer: int, norm: str, activation: str,
                      pad_type: str, negative_slope: float = 0.2) -> nn.Sequential:
    """pix2pix's N-layer PatchGAN (BicycleGAN's get_layers): 4x4 stride-2 conv (no norm), n_layer
    - 1 more (with `norm`), the width doubling up to 8 * dim; a 4x4 stride-1 conv (with `norm`)
    to min(2**n_layer, 8) * dim; a 4x4 stride-1 conv to one logit map. Padding 1 everywhere,
    bias everywhere. A side S gives S / 2**n_layer - 2 (256 → 30 for n_layer 3)."""
    layers = [Conv2dBlock(in_channels, dim, 4, 2, 1, "none", activation, pad_type,
                          negative_slope)]
    mult = 1
    for n in range(1, n_layer):
        previous, mult = mult, min(2 ** n, 8)
        layers.append(Conv2dBlock(dim * previous, dim * mult, 4, 2, 1, norm, activation,
                                  pad_type, negative_slope))
    previous, mult = mult, min(2 ** n_layer, 8)
    layers.append(Conv2dBlock(dim * previous, dim * mult, 4, 1, 1, norm, activation, pad_type,
                              negative_slope))
    layers.append(Conv2dBlock(dim * mult, 1, 4, 1, 1, "none", "none", pad_type))
    return nn.Sequential(*layers)


class MultiScalePatchDiscriminator(nn.Module):
    """num_scales PatchGANs, the first on the input, each next one on the input downsampled once
    more. forward(x) → [outputs per scale], finest first.

    patch: "munit" (``munit_patch_net``) or "pix2pix" (``pix2pix_patch_net``); scale_width:
    "same" (every scale has width `dim`: MUNIT, DRIT) or "halved" (scale i has
    round(dim / 2**i): BicycleGAN); negative_slope: of the LeakyReLUs (DRIT: 0.01).
    """

    def __init__(self, in_channels: int = 3, dim: int = 64, n_layer: int = 4,
                 num_scales: int = 3, norm: str = "none", activation: str = "lrelu",
                 pad_type: str = "reflect", patch: str = "munit", scale_width: str = "same",
                 negative_slope: float = 0.2):
        super().__init__()
        if patch not in PATCHES:
            raise ValueError(f"patch: expected one of {', '.join(PATCHES)}, got {patch!r}")
        if scale_width not in SCALE_WIDTHS:
            raise ValueError(f"scale_width: expected one of {', '.join(SCALE_WIDTHS)}, got "
                             f"{scale_width!r}")
        make = munit_patch_net if patch == "munit" else pix2pix_patch_net
        widths = [dim if scale_width == "same" else int(round(dim / 2 ** i))
                  for i in range(num_scales)]
        self.cnns = nn.ModuleList(make(in_channels, width, n_layer, norm, activation, pad_type,
                                       negative_slope)
                                  for width in widths)
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for i, cnn in enumerate(self.cnns):
            if i > 0:
                x = self.downsample(x)
            outputs.append(cnn(x))
        return outputs


class ContentDiscriminator(nn.Module):
    """DRIT's Dis_content: n_down 7x7 stride-2 convs (reflection padding 1), a 4x4 conv
    (no padding), all LeakyReLU (slope 0.01, no norm: the official blocks never insert the
    instance norm their callers ask for), then a 1x1 conv to one logit.

    forward(content (N, in, s, s)) → (N, 1, m, m) with m = ``output_size(s)``; the official
    configuration (a 216 crop, content 54x54, n_down 3) gives m = 1.
    """

    def __init__(self, in_channels: int = 256, dim: int = 256, n_down: int = 3,
                 negative_slope: float = 0.01):
        super().__init__()
        self.n_down = n_down
        layers = []
        for i in range(n_down):
            layers.append(Conv2dBlock(in_channels if i == 0 else dim, dim, 7, 2, 1, "none",
                                      "lrelu", "reflect", negative_slope))
        layers.append(Conv2dBlock(dim if n_down else in_channels, dim, 4, 1, 0, "none", "lrelu",
                                  "reflect", negative_slope))
        layers.append(nn.Conv2d(dim, 1, 1, 1, 0))
        self.model = nn.Sequential(*layers)

    @staticmethod
    def output_size(size: int, n_down: int = 3) -> int:
        """Side of the logit map for a content map of side `size` (0: too small, the convs
        cannot run: reflection padding needs a side > 1, a kernel a side >= its size)."""
        for _ in range(n_down):
            if size < 5:  # padding 1 on each side must reach the 7x7 kernel
                return 0
            size = (size + 2 - 7) // 2 + 1
        return max(size - 3, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
