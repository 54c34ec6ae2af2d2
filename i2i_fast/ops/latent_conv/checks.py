"""The argument checks of latent_conv2d: one definition, run by the public function, the Triton
operators and the fake implementations; csrc/latent_conv/latent_conv_common.h
(``check_latent_conv2d``) says the same in the same order and words for the compiled kernels.
"""

from __future__ import annotations

import torch

from .. import checks

PADDING_MODES = ("zeros", "reflect")


def latent_conv2d(x: object, z: object, weight: object, bias: object, stride: object,
                  padding: object, padding_mode: object, op: str = "latent_conv2d") -> None:
    """Raise TypeError/ValueError "{op}: {argument}: expected ..., got ..." for a bad call."""
    for name, t in (("x", x), ("z", z), ("weight", weight)):
        if not isinstance(t, torch.Tensor) or t.dtype not in checks.FLOATING:
            raise TypeError(f"{op}: {name}: expected a floating point tensor, got "
                            f"{getattr(t, 'dtype', type(t).__name__)}")
    if x.dim() != 4:
        raise ValueError(f"{op}: x: expected shape (N, C_x, H, W), got {tuple(x.shape)}")
    if z.dim() != 2 or z.shape[0] != x.shape[0]:
        raise ValueError(f"{op}: z: expected shape ({x.shape[0]}, C_z) (one code per sample of "
                         f"x), got {tuple(z.shape)}")
    expected_in = x.shape[1] + z.shape[1]
    if weight.dim() != 4 or weight.shape[1] != expected_in:
        raise ValueError(f"{op}: weight: expected shape (C_out, {expected_in}, k_h, k_w) "
                         f"(C_x {x.shape[1]} + C_z {z.shape[1]} input channels), got "
                         f"{tuple(weight.shape)}")
    if bias is not None and (not isinstance(bias, torch.Tensor)
                             or tuple(bias.shape) != (weight.shape[0],)):
        raise ValueError(f"{op}: bias: expected None or shape ({weight.shape[0]},), got "
                         f"{tuple(bias.shape) if isinstance(bias, torch.Tensor) else bias!r}")
    for name, value, minimum in (("stride", stride, 1), ("padding", padding, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{op}: {name}: expected an int >= {minimum}, got {value!r}")
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"{op}: padding_mode: expected one of {', '.join(PADDING_MODES)}, got "
                         f"{padding_mode!r}")
    h, w = x.shape[2], x.shape[3]
    if padding_mode == "reflect" and (padding >= h or padding >= w):
        raise ValueError(f"{op}: padding: reflect padding needs padding < H and < W, got "
                         f"padding {padding} for x of shape {tuple(x.shape)}")
    for name, t in (("z", z), ("weight", weight), ("bias", bias)):
        if t is not None and t.device != x.device:
            raise ValueError(f"{op}: {name}: expected device {x.device} (the device of x), got "
                             f"{t.device}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != x.dtype:
            raise TypeError(f"{op}: {name}: expected dtype {x.dtype} (the dtype of x), got "
                            f"{t.dtype}")
    kh, kw = weight.shape[2], weight.shape[3]
    if h + 2 * padding < kh or w + 2 * padding < kw:
        raise ValueError(f"{op}: weight: expected a kernel no larger than the padded input "
                         f"({h + 2 * padding}, {w + 2 * padding}), got ({kh}, {kw})")
    if x.numel() == 0:
        raise ValueError(f"{op}: x: expected a non-empty tensor, got shape {tuple(x.shape)}")


def output_size(size: int, taps: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - taps) // stride + 1


def latent_conv2d_backward(grad: object, x: torch.Tensor, z: torch.Tensor, weight: torch.Tensor,
                           stride: int, padding: int, padding_mode: str,
                           output_mask: object = None) -> None:
    """The forward's checks under the backward operator's name, then grad's (output_mask, which
    says which gradients to compute, needs no check: the schema types it)."""
    op = "latent_conv2d_backward"
    latent_conv2d(x, z, weight, None, stride, padding, padding_mode, op=op)
    grad = checks.tensor(op, "grad", grad)
    expected = (x.shape[0], weight.shape[0], output_size(x.shape[2], weight.shape[2], stride, padding),
                output_size(x.shape[3], weight.shape[3], stride, padding))
    if tuple(grad.shape) != expected:
        raise ValueError(f"{op}: grad: expected shape {expected} (the output's), got "
                         f"{tuple(grad.shape)}")
    if grad.device != x.device:
        raise ValueError(f"{op}: grad: expected device {x.device} (the device of x), got "
                         f"{grad.device}")
    if grad.dtype != x.dtype:
        raise TypeError(f"{op}: grad: expected dtype {x.dtype} (the dtype of x), got {grad.dtype}")
