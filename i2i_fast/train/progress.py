"""The progress bar of a run: steps done, it/s, ETA, the latest logged losses (rank 0 only)."""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm


def format_losses(losses: dict[str, float]) -> str:
    return " ".join(f"{name}={value:.4g}" for name, value in losses.items())


class Progress:
    """A tqdm bar over the run's steps, starting at the resumed step.

    tqdm measures it/s over the steps of this process (a resumed run's rate does not count the
    steps done before it resumed) and derives the ETA from it. On a terminal the bar redraws at
    most every 0.5 s; into a file or pipe (a cluster log) it writes a line every 30 s.
    """

    def __init__(self, total: int, initial: int, show_bar: bool = True,
                 stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.show_bar = show_bar
        self._bar = tqdm(total=total, initial=initial, unit="it", file=self.stream,
                         disable=not show_bar, dynamic_ncols=interactive, mininterval=0.5 if interactive else 30.0,
                         smoothing=0.1, leave=True)

    def step(self, losses: dict[str, float] | None = None) -> None:
        """One step done; `losses` (when logged) are shown next to the bar."""
        if losses is not None and self.show_bar:
            self._bar.set_postfix_str(format_losses(losses), refresh=False)
        self._bar.update(1)

    def write(self, message: str) -> None:
        """A line of text (above the bar when it is shown)."""
        if self.show_bar:
            tqdm.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)

    def close(self) -> None:
        self._bar.close()
