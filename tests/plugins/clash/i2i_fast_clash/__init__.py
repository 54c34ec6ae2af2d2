"""Declares a second method named "toy" (the good plugin's name)."""

from i2i_fast_toy import ToyTranslator


class OtherToy(ToyTranslator):
    pass
