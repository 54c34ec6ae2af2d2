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


def colour_jitter(owner: str, value: object) -> dict[str, float]:
    """(brightness, contrast, saturation, hue) strengths of a colour jitter as PairAugmentation's
    keyword arguments: four numbers, the first three >= 0, hue in [0, 0.5]."""
    names = ("brightness", "contrast", "saturation", "hue")
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 4:
        raise ValueError(f"{owner}: colour_jitter: expected 4 numbers ({', '.join(names)}), "
                         f"got {value!r}")
    out = {}
    for name, v in zip(names, value):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer,
                                                                  np.floating)):
            raise TypeError(f"{owner}: colour_jitter: {name}: expected a number, got "
                            f"{type(v).__name__}")
        high = 0.5 if name == "hue" else float("inf")
        if not 0.0 <= v <= high:
            raise ValueError(f"{owner}: colour_jitter: {name}: expected a value in [0, {high:g}], "
                             f"got {v!r}")
        out[name] = float(v)
    return out
