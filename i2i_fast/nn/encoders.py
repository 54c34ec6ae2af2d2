"""Content and style encoders (MUNIT's, used by the methods that disentangle content and style),
and the variational ResNet encoder of BicycleGAN and DRIT."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import ops
from .conv import Conv2dBlock, make_padding
from .preact_resblocks import PreActDownBlock
from .resblocks import AdaINResBlocks, ResBlock

RES_NORMS = ("same", "adain")


class ContentEncoder(nn.Module):
    """7x7 conv, n_downsample 4x4 stride-2 convs doubling the width, n_res ResBlocks (their
    residual branch scaled by ``residual_scale``: 1 in MUNIT, 0.1 in TUNIT).

    (N, in, H, W) → (N, dim * 2**n_downsample, H / 2**n_downsample, W / 2**n_downsample).

    res_norm: "same" (MUNIT: the ResBlocks use `norm`, forward(x)) or "adain" (MISO's conditional
    content encoder: the ResBlocks are AdaIN ResBlocks, ``self.resblocks``, modulated by
    ``forward(x, adain_params)`` with adain_params (N, num_adain_params) from a style MLP; the
    convolutions before them keep `norm`). The parameters are the same either way (AdaIN and
    MUNIT's IN have none of their own).
    Options for DRIT's per-domain content encoder: ``down_kernel`` 3 (3x3
    stride-2 convs, padding 1), and a first conv with its own ``first_norm`` / ``first_activation``
    (DRIT: no norm, LeakyReLU of slope ``negative_slope`` 0.01).
    """

    def __init__(self, n_downsample: int, n_res: int, in_channels: int, dim: int,
                 norm: str = "in", activation: str = "relu", pad_type: str = "reflect",
                 res_norm: str = "same", down_kernel: int = 4, first_norm: str | None = None,
                 first_activation: str | None = None, negative_slope: float = 0.2,
                 residual_scale: float = 1.0):
        super().__init__()
        if res_norm not in RES_NORMS:
            raise ValueError(f"ContentEncoder: res_norm: expected one of {RES_NORMS}, got "
                             f"{res_norm!r}")
        if down_kernel not in (3, 4):
            raise ValueError(f"ContentEncoder: down_kernel: expected 3 or 4, got {down_kernel}")
        layers = [Conv2dBlock(in_channels, dim, 7, 1, 3, first_norm or norm,
                              first_activation or activation, pad_type,
                              negative_slope=negative_slope)]
        for _ in range(n_downsample):
            layers.append(Conv2dBlock(dim, 2 * dim, down_kernel, 2, 1, norm, activation,
                                      pad_type, negative_slope=negative_slope))
            dim *= 2
        if res_norm == "adain":
            self.resblocks = AdaINResBlocks(n_res, dim, activation, pad_type, residual_scale)
        else:
            layers += [ResBlock(dim, norm, activation, pad_type, residual_scale)
                       for _ in range(n_res)]
            self.resblocks = None
        self.model = nn.Sequential(*layers)
        self.out_channels = dim

    @property
    def num_adain_params(self) -> int:
        """Length of the AdaIN parameter vector forward takes (0 without AdaIN ResBlocks)."""
        return self.resblocks.num_adain_params if self.resblocks is not None else 0

    def forward(self, x: torch.Tensor, adain_params: torch.Tensor | None = None) -> torch.Tensor:
        x = self.model(x)
        if self.resblocks is None:
            if adain_params is not None:
                raise ValueError("ContentEncoder: adain_params: expected None (its ResBlocks "
                                 "have no AdaIN; build it with res_norm='adain'), got a tensor")
            return x
        if adain_params is None:
            raise ValueError(f"ContentEncoder(res_norm='adain'): adain_params: expected shape "
                             f"(N, {self.num_adain_params}), got None")
        return self.resblocks(x, adain_params)


class StyleEncoder(nn.Module):
    """7x7 conv; two 4x4 stride-2 convs doubling the width; n_downsample - 2 more at that width;
    global average pooling; 1x1 conv to style_dim. (N, in, H, W) → (N, style_dim, 1, 1).

    gaussian=True (MISO's stochastic style encoder): the 1x1 conv gives 2 * style_dim channels,
    and forward returns (mu, logvar), the first and second halves, each (N, style_dim, 1, 1): a
    diagonal Gaussian over the style code (sampled with i2i_fast.losses.reparameterize).
    """

    def __init__(self, n_downsample: int, in_channels: int, dim: int, style_dim: int,
                 norm: str = "none", activation: str = "relu", pad_type: str = "reflect",
                 gaussian: bool = False):
        super().__init__()
        self.gaussian = bool(gaussian)
        if n_downsample < 2:
            raise ValueError(f"StyleEncoder: n_downsample: expected at least 2, got {n_downsample}")
        layers = [Conv2dBlock(in_channels, dim, 7, 1, 3, norm, activation, pad_type)]
        for _ in range(2):
            layers.append(Conv2dBlock(dim, 2 * dim, 4, 2, 1, norm, activation, pad_type))
            dim *= 2
        for _ in range(n_downsample - 2):
            layers.append(Conv2dBlock(dim, dim, 4, 2, 1, norm, activation, pad_type))
        out = 2 * style_dim if self.gaussian else style_dim
        layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, out, 1, 1, 0)]
        self.model = nn.Sequential(*layers)
        self.out_channels = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        out = self.model(x)
        if self.gaussian:
            mu, logvar = out.chunk(2, dim=1)
            return mu, logvar
        return out


class VariationalResNetEncoder(nn.Module):
    """A Gaussian posterior (mu, logvar) over a latent code: BicycleGAN's E_ResNet (vaeLike) and
    DRIT's E_attr_concat (one per domain).

    4x4 stride-2 conv (in → dim, padding 1 of `pad_type`); n_blocks - 1 PreActDownBlocks, block n
    (1-based) from dim * min(max_mult, n) to dim * min(max_mult, n + 1) channels, each halving the
    size; LeakyReLU(0.2); average pooling; two Linear heads (``fc``: mu, ``fc_var``: logvar).

    BicycleGAN: zero padding, ``normalize`` (IN), average pooling over the last pool x pool map:
    the official resnet_256 is n_blocks 5 (256 → 8 x 8 before the pooling), resnet_128 is 4, and
    the input side must be pool * 2**n_blocks (``input_size``). DRIT: reflection padding, no
    norm, n_blocks 4, ``pool=None``: global average pooling (AdaptiveAvgPool2d(1)) of any size
    (``input_size`` None).

    forward(x (N, in, H, W)) → (mu, logvar), each (N, latent_dim).
    """

    def __init__(self, in_channels: int, latent_dim: int, dim: int = 64, n_blocks: int = 5,
                 max_mult: int = 4, normalize: bool = True, pool: int | None = 8,
                 pad_type: str = "zero"):
        super().__init__()
        if isinstance(n_blocks, bool) or not isinstance(n_blocks, int) or n_blocks < 1:
            raise ValueError(f"VariationalResNetEncoder: n_blocks: expected an int >= 1, got "
                             f"{n_blocks!r}")
        self.pool = pool
        self.input_size = None if pool is None else pool * 2 ** n_blocks
        own_padding = 1 if pad_type == "zero" else 0
        self.pad = make_padding(pad_type, 1 - own_padding)
        self.conv = nn.Conv2d(in_channels, dim, 4, 2, own_padding)
        widths = [dim * min(max_mult, n) for n in range(1, n_blocks + 1)]
        self.blocks = nn.Sequential(*(PreActDownBlock(widths[i], widths[i + 1], normalize,
                                                      pad_type=pad_type)
                                      for i in range(n_blocks - 1)))
        self.out_channels = widths[-1]
        self.fc = nn.Linear(self.out_channels, latent_dim)
        self.fc_var = nn.Linear(self.out_channels, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.input_size is not None and (x.dim() != 4 or x.shape[2] != self.input_size
                                            or x.shape[3] != self.input_size):
            raise ValueError(f"VariationalResNetEncoder: x: expected (N, C, {self.input_size}, "
                             f"{self.input_size}) (its last map is pooled over "
                             f"{self.pool}x{self.pool}), got {tuple(x.shape)}")
        h = F.leaky_relu(self.blocks(self.conv(self.pad(x))), 0.2)
        h = (h.mean((2, 3)) if self.pool is None else ops.avg_pool(h, self.pool).flatten(1))
        return self.fc(h), self.fc_var(h)
