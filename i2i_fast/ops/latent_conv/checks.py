"""The argument checks of latent_conv2d and latent_conv_transpose2d: one definition, run by the
public functions, the Triton operators and the fake implementations; csrc/latent_conv/checks.h
says the same in the same order and words for the compiled kernels (tests/test_operator_checks.py
compares them).
"""

from __future__ import annotations

import torch

from .. import checks

PADDING_MODES = ("zeros", "reflect")


def _operands(op: str, x: object, z: object, weight: object, bias: object,
              transposed: bool) -> None:
    """x, z, weight floating tensors of consistent shapes, bias None or (C_out,)."""
    for name, t in (("x", x), ("z", z), ("weight", weight)):
        checks.floating(op, name, checks.tensor(op, name, t))
    if x.dim() != 4:
        raise ValueError(f"{op}: x: expected shape (N, C_x, H, W), got {tuple(x.shape)}")
    if z.dim() != 2 or z.shape[0] != x.shape[0]:
        raise ValueError(f"{op}: z: expected shape ({x.shape[0]}, C_z) (one code per sample of "
                         f"x), got {tuple(z.shape)}")
    expected_in = x.shape[1] + z.shape[1]
    in_dim = 0 if transposed else 1
    if weight.dim() != 4 or weight.shape[in_dim] != expected_in:
        layout = (f"({expected_in}, C_out, k_h, k_w)" if transposed
                  else f"(C_out, {expected_in}, k_h, k_w)")
        raise ValueError(f"{op}: weight: expected shape {layout} (C_x {x.shape[1]} + C_z "
                         f"{z.shape[1]} input channels), got {tuple(weight.shape)}")
    out_channels = weight.shape[1 - in_dim]
    if bias is not None and (not isinstance(bias, torch.Tensor)
                             or tuple(bias.shape) != (out_channels,)):
        raise ValueError(f"{op}: bias: expected None or shape ({out_channels},), got "
                         f"{tuple(bias.shape) if isinstance(bias, torch.Tensor) else bias!r}")


def _geometry(op: str, stride: object, padding: object) -> None:
    for name, value, minimum in (("stride", stride, 1), ("padding", padding, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{op}: {name}: expected an int >= {minimum}, got {value!r}")


def _devices_and_dtypes(op: str, x: torch.Tensor, z: torch.Tensor, weight: torch.Tensor,
                        bias: torch.Tensor | None) -> None:
    checks.on_device_of_x(op, x, (("z", z), ("weight", weight), ("bias", bias)))
    checks.dtype_of_x(op, x, (("weight", weight), ("bias", bias)))


def latent_conv2d(x: object, z: object, weight: object, bias: object, stride: object,
                  padding: object, padding_mode: object, op: str = "latent_conv2d") -> None:
    """Raise TypeError/ValueError "{op}: {argument}: expected ..., got ..." for a bad call."""
    _operands(op, x, z, weight, bias, transposed=False)
    _geometry(op, stride, padding)
    checks.choice(op, "padding_mode", padding_mode, PADDING_MODES)
    h, w = x.shape[2], x.shape[3]
    if padding_mode == "reflect" and (padding >= h or padding >= w):
        raise ValueError(f"{op}: padding: reflect padding needs padding < H and < W, got "
                         f"padding {padding} for x of shape {tuple(x.shape)}")
    _devices_and_dtypes(op, x, z, weight, bias)
    kh, kw = weight.shape[2], weight.shape[3]
    if h + 2 * padding < kh or w + 2 * padding < kw:
        raise ValueError(f"{op}: weight: expected a kernel no larger than the padded input "
                         f"({h + 2 * padding}, {w + 2 * padding}), got ({kh}, {kw})")
    checks.non_empty(op, "x", x)


def latent_conv_transpose2d(x: object, z: object, weight: object, bias: object, stride: object,
                            padding: object, output_padding: object,
                            op: str = "latent_conv_transpose2d") -> None:
    """Raise TypeError/ValueError "{op}: {argument}: expected ..., got ..." for a bad call."""
    _operands(op, x, z, weight, bias, transposed=True)
    _geometry(op, stride, padding)
    if (isinstance(output_padding, bool) or not isinstance(output_padding, int)
            or not 0 <= output_padding < stride):
        raise ValueError(f"{op}: output_padding: expected an int in [0, stride {stride}), got "
                         f"{output_padding!r}")
    _devices_and_dtypes(op, x, z, weight, bias)
    size = tuple(transposed_output_size(x.shape[2 + d], weight.shape[2 + d], stride, padding,
                                        output_padding) for d in range(2))
    if size[0] < 1 or size[1] < 1:
        raise ValueError(f"{op}: padding: expected an output of at least 1 x 1 ((H - 1) * "
                         f"stride - 2 * padding + k + output_padding), got {size}")
    checks.non_empty(op, "x", x)


def output_size(size: int, taps: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - taps) // stride + 1


def transposed_output_size(size: int, taps: int, stride: int, padding: int,
                           output_padding: int) -> int:
    return (size - 1) * stride - 2 * padding + taps + output_padding


def _grad(op: str, grad: object, x: torch.Tensor, expected: tuple[int, ...]) -> None:
    grad = checks.tensor(op, "grad", grad)
    if tuple(grad.shape) != expected:
        raise ValueError(f"{op}: grad: expected shape {expected} (the output's), got "
                         f"{tuple(grad.shape)}")
    checks.on_device_of_x(op, x, (("grad", grad),))
    checks.dtype_of_x(op, x, (("grad", grad),))


def latent_conv2d_backward(grad: object, x: torch.Tensor, z: torch.Tensor, weight: torch.Tensor,
                           stride: int, padding: int, padding_mode: str,
                           output_mask: object = None) -> None:
    """The forward's checks under the backward operator's name, then grad's (output_mask, which
    says which gradients to compute, needs no check: the schema types it)."""
    op = "latent_conv2d_backward"
    latent_conv2d(x, z, weight, None, stride, padding, padding_mode, op=op)
    _grad(op, grad, x, (x.shape[0], weight.shape[0],
                        *(output_size(x.shape[2 + d], weight.shape[2 + d], stride, padding)
                          for d in range(2))))


def latent_conv_transpose2d_backward(grad: object, x: torch.Tensor, z: torch.Tensor,
                                     weight: torch.Tensor, stride: int, padding: int,
                                     output_padding: int, output_mask: object = None) -> None:
    """As latent_conv2d_backward, for the transposed operator."""
    op = "latent_conv_transpose2d_backward"
    latent_conv_transpose2d(x, z, weight, None, stride, padding, output_padding, op=op)
    _grad(op, grad, x, (x.shape[0], weight.shape[1],
                        *(transposed_output_size(x.shape[2 + d], weight.shape[2 + d], stride,
                                                 padding, output_padding) for d in range(2))))
