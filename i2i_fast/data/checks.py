"""Argument checks of the data package; messages name the owner, the argument, the expected and
the actual value."""

from __future__ import annotations

import numpy as np


def integer(owner: str, name: str, value: object, minimum: int) -> int:
    """`value` as an int >= minimum (bools refused): TypeError for a non-int, ValueError below."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{owner}: {name}: expected an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{owner}: {name}: expected an int >= {minimum}, got {value}")
    return int(value)
