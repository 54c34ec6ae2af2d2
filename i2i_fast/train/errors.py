"""Errors of training and translation that are reported to the user in one line.

The CLI prints ``i2i-fast <command>: error: <message>`` for these and exits with their
``exit_status`` without a traceback: they come from what the user asked for (an argument, a file,
a checkpoint) or from a run that cannot go on, not from a bug.
"""

from __future__ import annotations


class TrainError(Exception):
    """A bad argument or input: the message names it, what was expected and what came."""

    exit_status = 2


class CheckpointError(TrainError):
    """A checkpoint that is missing, unreadable, of another format, or that cannot be resumed."""


class UnreadableCheckpointError(CheckpointError):
    """A checkpoint file that cannot be read or is not a checkpoint at all (truncated, corrupt,
    another kind of file); ``--resume auto`` falls back to an older checkpoint past it."""


class DivergedError(TrainError):
    """A loss became NaN or infinite; nothing is saved after that step."""

    exit_status = 1
