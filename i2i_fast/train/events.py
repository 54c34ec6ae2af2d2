"""TensorBoard event files of a run: scalars and images (written by rank 0 only)."""

from __future__ import annotations

import os

import numpy as np


class EventLog:
    """A TensorBoard SummaryWriter, or nothing at all on ranks other than 0.

    purge_step: the first step whose earlier events TensorBoard drops from the view. A run that
    resumes from the checkpoint of step k passes k + 1: what the interrupted process logged after
    step k is dropped (the resumed run logs those steps again), step k itself is kept (the
    resumed run starts at k + 1), so every step shows once.
    """

    def __init__(self, folder: str | os.PathLike, enabled: bool = True,
                 purge_step: int | None = None):
        self._writer = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(folder), purge_step=purge_step)

    def scalars(self, step: int, values: dict[str, float], prefix: str = "") -> None:
        if self._writer is not None:
            for name, value in values.items():
                self._writer.add_scalar(prefix + name, value, step)

    def image(self, tag: str, step: int, pixels: np.ndarray) -> None:
        """An (H, W, 3) uint8 image."""
        if self._writer is not None:
            self._writer.add_image(tag, pixels, step, dataformats="HWC")

    def text(self, tag: str, text: str, step: int = 0) -> None:
        if self._writer is not None:
            self._writer.add_text(tag, text, step)

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
