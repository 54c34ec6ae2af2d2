"""Argument checks shared by the public operators.

Every message names the operator, the argument, what was expected and what came. Runs before a
backend is chosen, so every backend (the reference included) sees only valid calls.
"""

from __future__ import annotations

import math

import torch

FLOATING = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
LOW_PRECISION = (torch.float16, torch.bfloat16)
ACTIVATIONS = {None: "none", "none": "none", "relu": "relu", "leaky_relu": "leaky_relu"}


def tensor(op: str, name: str, t: object) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{op}: {name}: expected a torch.Tensor, got {type(t).__name__}")
    return t


def floating(op: str, name: str, t: torch.Tensor) -> None:
    if t.dtype not in FLOATING:
        raise TypeError(
            f"{op}: {name}: expected a floating tensor (float16, bfloat16, float32 or float64), "
            f"got {t.dtype}"
        )


def norm_input(op: str, x: object) -> torch.Tensor:
    """x of a normalization: (N, C, L), (N, C, H, W) or (N, C, D, H, W), floating, non-empty."""
    x = tensor(op, "x", x)
    if not 3 <= x.dim() <= 5:
        raise ValueError(
            f"{op}: x: expected shape (N, C, L), (N, C, H, W) or (N, C, D, H, W), got "
            f"{x.dim()} dims with shape {tuple(x.shape)}"
        )
    floating(op, "x", x)
    if x.numel() == 0:
        raise ValueError(f"{op}: x: expected a non-empty tensor, got shape {tuple(x.shape)}")
    return x


def norm_param(
    op: str, name: str, p: object, expected_shape: tuple[int, ...], x: torch.Tensor
) -> None:
    """A modulation parameter: given shape, x's device, x's dtype (or float32 for a 16-bit x)."""
    p = tensor(op, name, p)
    if tuple(p.shape) != tuple(expected_shape):
        raise ValueError(
            f"{op}: {name}: expected shape {tuple(expected_shape)}, got {tuple(p.shape)}"
        )
    if p.device != x.device:
        raise ValueError(
            f"{op}: {name}: expected device {x.device} (the device of x), got {p.device}"
        )
    if p.dtype != x.dtype and not (p.dtype == torch.float32 and x.dtype in LOW_PRECISION):
        raise TypeError(
            f"{op}: {name}: expected dtype {x.dtype} (or float32 for a float16/bfloat16 x), "
            f"got {p.dtype}"
        )


def activation(op: str, value: object) -> str:
    """None / 'relu' / 'leaky_relu' → the name the kernels take ('none', 'relu', 'leaky_relu')."""
    try:
        return ACTIVATIONS[value]
    except (KeyError, TypeError):
        raise ValueError(
            f"{op}: activation: expected None, 'relu' or 'leaky_relu', got {value!r}"
        ) from None


def eps(op: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{op}: eps: expected a number, got {type(value).__name__}")
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"{op}: eps: expected a finite non-negative number, got {value}")
    return float(value)


def negative_slope(op: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{op}: negative_slope: expected a number, got {type(value).__name__}")
    return float(value)
