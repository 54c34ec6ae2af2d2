"""Conv2dBlock (pad → conv → norm → activation), ConvTranspose2dBlock and LinearBlock.

A normalization followed by ReLU or LeakyReLU runs as one fused operator; reflection padding
runs on the fused reflection_pad operator. A generator's output layer (stride 1, at most
OUTPUT_CONV_CHANNELS output channels, no norm, tanh or no activation, reflect or zero padding)
runs as the output_conv2d operator: padding, conv, bias and tanh in one.
"""

from __future__ import annotations

import torch
from torch import nn

from .. import ops
from .norms import AdaptiveInstanceNorm, ChannelAffineLayerNorm, InstanceNorm, MunitLayerNorm
from .resampling import ReflectionPad

NORMS = ("none", "in", "ln", "ln_standard", "adain")
ACTIVATIONS = ("relu", "lrelu", "tanh", "none")
PAD_TYPES = ("reflect", "replicate", "zero")
_FUSABLE = {"relu": "relu", "lrelu": "leaky_relu", "none": None}
# Up to this many output channels a stride-1 conv without norm runs as ops.output_conv2d (its CPU
# kernel holds up to 4 outputs in registers; oneDNN's blocks of 16 channels suit wider convs).
OUTPUT_CONV_CHANNELS = 4


def _check(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}: expected one of {', '.join(allowed)}, got {value!r}")


def make_padding(pad_type: str, padding: int) -> nn.Module:
    _check("pad_type", pad_type, PAD_TYPES)
    if padding == 0:
        return nn.Identity()
    return {"reflect": ReflectionPad, "replicate": nn.ReplicationPad2d,
            "zero": nn.ZeroPad2d}[pad_type](padding)


def make_activation(activation: str, negative_slope: float = 0.2) -> nn.Module | None:
    _check("activation", activation, ACTIVATIONS)
    return {"relu": nn.ReLU(), "lrelu": nn.LeakyReLU(negative_slope), "tanh": nn.Tanh(),
            "none": None}[activation]


def make_norm_activation(norm: str, activation: str, channels: int,
                         negative_slope: float = 0.2) -> tuple[nn.Module | None, nn.Module | None]:
    """(norm, activation) modules after a conv: a norm followed by ReLU or LeakyReLU is one fused
    operator (the activation module is then None)."""
    _check("norm", norm, NORMS)
    _check("activation", activation, ACTIVATIONS)
    fused = norm != "none" and activation in _FUSABLE
    act = _FUSABLE[activation] if fused else None
    norm_cls = {"in": InstanceNorm, "ln": MunitLayerNorm, "ln_standard": ChannelAffineLayerNorm,
                "adain": AdaptiveInstanceNorm}.get(norm)
    norm_module = (norm_cls(channels, activation=act, negative_slope=negative_slope)
                   if norm_cls else None)
    return norm_module, None if fused else make_activation(activation, negative_slope)


class Conv2dBlock(nn.Module):
    """pad → Conv2d (with bias) → norm → activation.

    pad_type: "reflect" and "replicate" pad first (reflect on the fused operator); "zero" is the
    convolution's own zero padding (no padded copy of the input).
    norm: "none", "in" (InstanceNorm, no affine), "ln" (MUNIT's LayerNorm), "ln_standard"
    (ChannelAffineLayerNorm: F.layer_norm + per-channel affine), "adain" (modulation passed to forward as (weight, bias)).
    activation: "relu", "lrelu" (slope 0.2), "tanh", "none".
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, norm: str = "none", activation: str = "relu",
                 pad_type: str = "zero", negative_slope: float = 0.2):
        super().__init__()
        self.norm_kind = norm
        _check("pad_type", pad_type, PAD_TYPES)
        own_padding = padding if pad_type == "zero" else 0
        self.pad = make_padding(pad_type, padding - own_padding)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, own_padding,
                              bias=True)
        self.norm, self.activation = make_norm_activation(norm, activation, out_channels,
                                                          negative_slope)
        # The output layer: ops.output_conv2d(x, weight, bias, padding, padding_mode, activation)
        self.output_conv = None
        if (norm == "none" and activation in ("tanh", "none") and stride == 1
                and pad_type in ("reflect", "zero") and out_channels <= OUTPUT_CONV_CHANNELS):
            self.output_conv = (padding, "reflect" if pad_type == "reflect" else "zeros",
                                activation)

    def forward(self, x: torch.Tensor,
                adain: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        if self.output_conv is not None:
            padding, padding_mode, activation = self.output_conv
            return ops.output_conv2d(x, self.conv.weight, self.conv.bias, padding, padding_mode,
                                     activation)
        x = self.conv(self.pad(x))
        if self.norm_kind == "adain":
            if adain is None:
                raise ValueError("Conv2dBlock(norm='adain'): adain: expected (weight, bias) of "
                                 "shape (N, C), got None")
            x = self.norm(x, *adain)
        elif self.norm is not None:
            x = self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x


class ConvTranspose2dBlock(nn.Module):
    """ConvTranspose2d (with bias) → norm → activation (DRIT's ReLUINSConvTranspose2d:
    kernel 3, stride 2, padding 1, output_padding 1, norm "ln_standard", ReLU; the official
    class name says IN but the norm is a LayerNorm). norm: "none", "in", "ln", "ln_standard"."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, output_padding: int = 0, norm: str = "none",
                 activation: str = "relu", negative_slope: float = 0.2):
        super().__init__()
        if norm == "adain":
            raise ValueError("ConvTranspose2dBlock: norm: expected one of none, in, ln, "
                             "ln_standard, got 'adain'")
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride, padding,
                                       output_padding, bias=True)
        self.norm, self.activation = make_norm_activation(norm, activation, out_channels,
                                                          negative_slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.norm is not None:
            x = self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x


class LinearBlock(nn.Module):
    """Linear (with bias) → activation (MUNIT's MLP layers; no normalization is used there)."""

    def __init__(self, in_features: int, out_features: int, activation: str = "relu",
                 negative_slope: float = 0.2):
        super().__init__()
        self.fc = nn.Linear(in_features, out_features, bias=True)
        self.activation = make_activation(activation, negative_slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc(x)
        return self.activation(x) if self.activation is not None else x
