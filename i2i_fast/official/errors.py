"""The error of ``i2i-fast import-official``: reported in one line, like the trainer's."""

from __future__ import annotations

from ..train.errors import CheckpointError


class OfficialFormatError(CheckpointError):
    """An official checkpoint file that cannot be imported: unreadable, of another method or
    configuration, with missing or unexpected tensors; the message names the file and what
    was expected."""
