"""The argument checks of output_conv2d: one definition, run by the public function and the fake
implementations; csrc/output_conv/checks.h says the same in the same order and words for the
compiled kernels (tests/test_operator_checks.py compares them).
"""

from __future__ import annotations

import torch

from .. import checks

PADDING_MODES = ("zeros", "reflect")
ACTIVATIONS = ("none", "tanh")


def output_conv2d(x: object, weight: object, bias: object, padding: object, padding_mode: object,
                  activation: object, op: str = "output_conv2d") -> None:
    """Raise TypeError/ValueError "{op}: {argument}: expected ..., got ..." for a bad call."""
    checks.floating(op, "x", checks.tensor(op, "x", x))
    checks.floating(op, "weight", checks.tensor(op, "weight", weight))
    if x.dim() != 4:
        raise ValueError(f"{op}: x: expected shape (N, C, H, W), got {tuple(x.shape)}")
    if weight.dim() != 4 or weight.shape[1] != x.shape[1]:
        raise ValueError(f"{op}: weight: expected shape (C_out, {x.shape[1]}, k_h, k_w), got "
                         f"{tuple(weight.shape)}")
    out_channels = weight.shape[0]
    if bias is not None:
        shape = tuple(bias.shape) if isinstance(bias, torch.Tensor) else None
        if shape not in ((out_channels,), (x.shape[0], out_channels)):
            raise ValueError(f"{op}: bias: expected None, shape ({out_channels},) or "
                             f"({x.shape[0]}, {out_channels}), got "
                             f"{shape if shape is not None else repr(bias)}")
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"{op}: padding: expected an int >= 0, got {padding!r}")
    checks.choice(op, "padding_mode", padding_mode, PADDING_MODES)
    checks.choice(op, "activation", activation, ACTIVATIONS)
    h, w = x.shape[2], x.shape[3]
    if padding_mode == "reflect" and (padding >= h or padding >= w):
        raise ValueError(f"{op}: padding: reflect padding needs padding < H and < W, got "
                         f"padding {padding} for x of shape {tuple(x.shape)}")
    checks.on_device_of_x(op, x, (("weight", weight), ("bias", bias)))
    checks.dtype_of_x(op, x, (("weight", weight), ("bias", bias)))
    kh, kw = weight.shape[2], weight.shape[3]
    if h + 2 * padding < kh or w + 2 * padding < kw:
        raise ValueError(f"{op}: weight: expected a kernel no larger than the padded input "
                         f"({h + 2 * padding}, {w + 2 * padding}), got ({kh}, {kw})")
    checks.non_empty(op, "x", x)
    checks.non_empty(op, "weight", weight)


def output_conv2d_backward(grad: object, x: object, weight: object, out: object, padding: object,
                           padding_mode: object, activation: object) -> None:
    op = "output_conv2d_backward"
    output_conv2d(x, weight, None, padding, padding_mode, activation, op=op)
    h_out = x.shape[2] + 2 * padding - weight.shape[2] + 1
    w_out = x.shape[3] + 2 * padding - weight.shape[3] + 1
    expected = (x.shape[0], weight.shape[0], h_out, w_out)
    for name, t in (("grad", grad), ("out", out)):
        if t is None:
            continue
        if tuple(t.shape) != expected:
            raise ValueError(f"{op}: {name}: expected shape {expected} (the output's), got "
                             f"{tuple(t.shape)}")
        checks.on_device_of_x(op, x, ((name, t),))
        checks.dtype_of_x(op, x, ((name, t),))
    if (out is not None) != (activation == "tanh"):
        wanted = ("the forward's output (tanh's derivative reads it)" if activation == "tanh"
                  else "None (activation 'none' does not read it)")
        raise ValueError(f"{op}: out: expected {wanted}, got "
                         f"{'a tensor' if out is not None else 'None'}")
