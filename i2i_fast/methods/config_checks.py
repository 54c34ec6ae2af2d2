"""The field checks a method's ``check_config`` repeats, with the one error every method gives:

    ValueError("<method>: <field>: expected <what>, got <value!r>")

    check = FieldChecks("tunit", cfg)
    check.ints("num_clusters", "style_dim")           # ints >= 1 (bool refused)
    check.ints("separated", minimum=0, expected="an int >= 0 (an iteration)")
    check.at_least("lr", "weight_decay")             # values >= 0
    check.within("ema_beta", low=0.0, high=1.0)      # values in [0, 1]
    check.fail("image_size", "a power of two", cfg.image_size)   # anything else
"""

from __future__ import annotations

from typing import Any, NoReturn


class FieldChecks:
    """Checks of the fields of one method's configuration `cfg`, named after `method`."""

    def __init__(self, method: str, cfg: Any):
        self.method, self.cfg = method, cfg

    def fail(self, key: str, expected: str, got: Any) -> NoReturn:
        raise ValueError(f"{self.method}: {key}: expected {expected}, got {got!r}")

    def ints(self, *keys: str, minimum: int = 1, expected: str | None = None,
             optional: str | None = None) -> None:
        """Each field an int (not a bool) >= minimum; with `optional`, None is also accepted and
        the message reads "None (<optional>) or an int >= minimum"."""
        what = expected or f"an int >= {minimum}"
        if optional is not None:
            what = f"None ({optional}) or {what}"
        for key in keys:
            value = getattr(self.cfg, key)
            if value is None and optional is not None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                self.fail(key, what, value)

    def at_least(self, *keys: str, minimum: float = 0.0, expected: str | None = None) -> None:
        """Each field >= minimum (NaN fails)."""
        for key in keys:
            value = getattr(self.cfg, key)
            if not value >= minimum:
                self.fail(key, expected or f"a value >= {minimum:g}", value)

    def within(self, *keys: str, low: float, high: float) -> None:
        """Each field in [low, high] (NaN fails)."""
        for key in keys:
            value = getattr(self.cfg, key)
            if not low <= value <= high:
                self.fail(key, f"a value in [{low:g}, {high:g}]", value)
