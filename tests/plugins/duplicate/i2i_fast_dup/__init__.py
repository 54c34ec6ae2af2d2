"""Declares a second method named "munit"."""

from i2i_fast.methods.munit import MUNIT


class OtherMUNIT(MUNIT):
    pass
