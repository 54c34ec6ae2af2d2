"""Pre-activation residual blocks: with LeakyReLU (StarGAN v2's ResBlk and AdainResBlk; DRIT's
and BicycleGAN's BasicBlock), and with FRN + TLU (TUNIT's ActFirstResBlk).

All put the normalization and the activation *before* each convolution, so every
"norm → LeakyReLU" pair runs as one fused operator (instance norm, or AdaIN with
``1 + gamma``); average pooling and nearest upsampling run on the fused resampling operators.
The StarGAN v2 blocks' attribute names follow its official code (conv1, conv2, norm1, norm2,
conv1x1), so state dicts have the official keys.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import ops
from .conv import make_padding
from .norms import FilterResponseNorm, InstanceNorm, StyleAdaIN

# TUNIT scales its sums by torch.rsqrt(torch.tensor(2.0)), a float32 tensor: 0.70710677 (not
# 1/√2 to float64 precision), in every dtype.
FLOAT32_RSQRT2 = float(torch.rsqrt(torch.tensor(2.0, dtype=torch.float32)))


class PreActResBlock(nn.Module):
    """``(shortcut(x) + residual(x)) / √2`` (StarGAN v2's ResBlk).

    residual: [IN affine] → LeakyReLU → 3x3 conv (dim_in → dim_in) → [avgpool 2] → [IN affine] →
    LeakyReLU → 3x3 conv (dim_in → dim_out); the IN layers only with ``normalize``.
    shortcut: 1x1 conv without bias when dim_in != dim_out (a "learned shortcut"), then [avgpool 2].

    forward: (N, dim_in, H, W) → (N, dim_out, H/2, W/2) with ``downsample``, else (.., H, W).
    """

    def __init__(self, dim_in: int, dim_out: int, normalize: bool = False,
                 downsample: bool = False, negative_slope: float = 0.2):
        super().__init__()
        self.normalize, self.downsample = normalize, downsample
        self.negative_slope = negative_slope
        self.learned_shortcut = dim_in != dim_out
        self.conv1 = nn.Conv2d(dim_in, dim_in, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        if normalize:
            self.norm1 = InstanceNorm(dim_in, affine=True, activation="leaky_relu",
                                      negative_slope=negative_slope)
            self.norm2 = InstanceNorm(dim_in, affine=True, activation="leaky_relu",
                                      negative_slope=negative_slope)
        if self.learned_shortcut:
            self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False)

    def _norm_act(self, x: torch.Tensor, norm: str) -> torch.Tensor:
        if self.normalize:
            return getattr(self, norm)(x)  # instance norm + LeakyReLU, fused
        return F.leaky_relu(x, self.negative_slope)

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.learned_shortcut:
            x = self.conv1x1(x)
        if self.downsample:
            x = ops.avg_pool(x, 2)
        return x

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(self._norm_act(x, "norm1"))
        if self.downsample:
            x = ops.avg_pool(x, 2)
        return self.conv2(self._norm_act(x, "norm2"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.shortcut(x) + self.residual(x)) / math.sqrt(2)


class AdaINPreActResBlock(nn.Module):
    """StarGAN v2's AdainResBlk: residual(x, s), plus the shortcut and /√2 when ``shortcut``.

    residual: AdaIN(s) → LeakyReLU → [nearest ×2] → 3x3 conv (dim_in → dim_out) → AdaIN(s) →
    LeakyReLU → 3x3 conv; each AdaIN is ``(1 + gamma) * IN(x) + beta`` with (gamma, beta) from its
    own Linear(style_dim, 2C) of the style code s (``StyleAdaIN``), fused with the activation.
    shortcut: [nearest ×2] → 1x1 conv without bias when dim_in != dim_out.

    ``shortcut=False`` is the official w_hpf > 0 rule: the block returns the residual alone. The
    1x1 conv is still built (the official networks have it: parameter counts and checkpoint keys
    include it) but nothing uses it, so its weight is frozen (``requires_grad`` False): it gets no
    gradient either way, and a frozen parameter keeps DistributedDataParallel from waiting for one.

    forward(x (N, dim_in, H, W), s (N, style_dim)) → (N, dim_out, 2H, 2W) with ``upsample``.
    """

    def __init__(self, dim_in: int, dim_out: int, style_dim: int, upsample: bool = False,
                 shortcut: bool = True, negative_slope: float = 0.2):
        super().__init__()
        self.upsample, self.use_shortcut = upsample, shortcut
        self.learned_shortcut = dim_in != dim_out
        self.conv1 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_out, dim_out, 3, 1, 1)
        self.norm1 = StyleAdaIN(style_dim, dim_in, activation="leaky_relu",
                                negative_slope=negative_slope)
        self.norm2 = StyleAdaIN(style_dim, dim_out, activation="leaky_relu",
                                negative_slope=negative_slope)
        if self.learned_shortcut:
            self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False)
            if not shortcut:
                self.conv1x1.weight.requires_grad_(False)

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = ops.upsample_nearest(x, 2)
        if self.learned_shortcut:
            x = self.conv1x1(x)
        return x

    def residual(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x, s)  # AdaIN + LeakyReLU, fused
        if self.upsample:
            x = ops.upsample_nearest(x, 2)
        x = self.conv1(x)
        return self.conv2(self.norm2(x, s))

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        out = self.residual(x, s)
        if self.use_shortcut:
            out = (out + self.shortcut(x)) / math.sqrt(2)
        return out


class PreActDownBlock(nn.Module):
    """DRIT's and BicycleGAN's BasicBlock: ``residual(x) + shortcut(x)``, half the size.

    residual: [IN] → LeakyReLU → 3x3 conv (dim_in → dim_in) → [IN] → LeakyReLU → 3x3 conv
    (dim_in → dim_out) → avgpool 2; shortcut: avgpool 2 → 1x1 conv (dim_in → dim_out, with bias).
    The IN layers (no affine) only with ``normalize`` (BicycleGAN's norm "instance"; DRIT has
    none), each fused with its LeakyReLU. pad_type of the 3x3 convs: "zero" (BicycleGAN) or
    "reflect" (DRIT, on the fused reflection_pad). It differs from PreActResBlock (StarGAN v2) in
    where the pooling sits, the shortcut's bias and the missing 1/√2.

    forward: (N, dim_in, H, W) → (N, dim_out, H/2, W/2).
    """

    def __init__(self, dim_in: int, dim_out: int, normalize: bool = True,
                 negative_slope: float = 0.2, pad_type: str = "zero"):
        super().__init__()
        self.normalize, self.negative_slope = normalize, negative_slope
        own_padding = 1 if pad_type == "zero" else 0
        self.pad = make_padding(pad_type, 1 - own_padding)  # before each 3x3 conv
        self.conv1 = nn.Conv2d(dim_in, dim_in, 3, 1, own_padding)
        self.conv2 = nn.Conv2d(dim_in, dim_out, 3, 1, own_padding)
        self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0)
        if normalize:
            self.norm1 = InstanceNorm(dim_in, activation="leaky_relu",
                                      negative_slope=negative_slope)
            self.norm2 = InstanceNorm(dim_in, activation="leaky_relu",
                                      negative_slope=negative_slope)

    def _norm_act(self, x: torch.Tensor, norm: str) -> torch.Tensor:
        if self.normalize:
            return getattr(self, norm)(x)  # instance norm + LeakyReLU, fused
        return F.leaky_relu(x, self.negative_slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.conv1(self.pad(self._norm_act(x, "norm1")))
        residual = self.conv2(self.pad(self._norm_act(residual, "norm2")))
        return ops.avg_pool(residual, 2) + self.conv1x1(ops.avg_pool(x, 2))


class FRNPreActResBlock(PreActResBlock):
    """TUNIT's ActFirstResBlk: ``rsqrt(2) · (shortcut(x) + residual(x))``, with rsqrt(2) in
    float32 (``FLOAT32_RSQRT2``, the official constant).

    residual: FRN + TLU → 3x3 conv (dim_in → dim_in) → [avgpool 2] → FRN + TLU → 3x3 conv
    (dim_in → dim_out); the thresholded FRN is the only nonlinearity. shortcut: as
    ``PreActResBlock``'s (1x1 conv without bias when dim_in != dim_out, then [avgpool 2]).
    """

    def __init__(self, dim_in: int, dim_out: int, downsample: bool = False):
        super().__init__(dim_in, dim_out, normalize=False, downsample=downsample)
        self.norm1 = FilterResponseNorm(dim_in)
        self.norm2 = FilterResponseNorm(dim_in)

    def _norm_act(self, x: torch.Tensor, norm: str) -> torch.Tensor:
        return getattr(self, norm)(x)  # FRN + TLU

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return FLOAT32_RSQRT2 * (self.shortcut(x) + self.residual(x))
