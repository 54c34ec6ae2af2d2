"""Errors a method raises about what it was asked to do (reported in one line by the CLI)."""

from __future__ import annotations


class MethodUsageError(ValueError):
    """A method cannot run as configured or on the input it got (e.g. StarGAN v2 with high-pass
    skips and no masks): the message says what is missing and how to give it. Raised where the
    method finds out, at construction or at a training or translation step; the command line
    prints it as one line, without a traceback."""
