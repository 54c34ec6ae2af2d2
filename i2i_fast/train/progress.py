"""What a run shows while it trains (rank 0 only): a progress bar, or plain loss lines.

With the bar (default): steps done, it/s, ETA and the latest logged losses next to it. Without it
(``--no-progress``, e.g. for a log file): one line per logged step (every ``--log-every``
steps), ``step N/T (P%) R it/s, ETA H:MM:SS: name=value ...``.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm


def format_losses(losses: dict[str, float]) -> str:
    return " ".join(f"{name}={value:.4g}" for name, value in losses.items())


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """A tqdm bar over the run's steps, starting at the resumed step, or loss lines.

    show_bar: the bar; lines: without the bar, one line per logged step (both False: silent,
    e.g. on ranks other than 0). tqdm measures it/s over the steps of this process (a resumed
    run's rate does not count the steps done before it resumed) and derives the ETA from it; the
    lines do the same. On a terminal the bar redraws at most every 0.5 s; into a file or pipe (a
    cluster log) it writes a line every 30 s.
    """

    def __init__(self, total: int, initial: int, show_bar: bool = True,
                 stream: TextIO | None = None, lines: bool = False):
        self.stream = stream or sys.stderr
        interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.show_bar = show_bar
        self.lines = lines and not show_bar
        self.total = total
        self.done = initial
        self._initial = initial
        self._started = time.perf_counter()
        self._bar = tqdm(total=total, initial=initial, unit="it", file=self.stream,
                         disable=not show_bar, dynamic_ncols=interactive,
                         mininterval=0.5 if interactive else 30.0, smoothing=0.1, leave=True)

    def step(self, losses: dict[str, float] | None = None) -> None:
        """One step done; `losses` (when logged) are shown next to the bar or as a line."""
        self.done += 1
        if losses is not None and self.show_bar:
            self._bar.set_postfix_str(format_losses(losses), refresh=False)
        self._bar.update(1)
        if losses is not None and self.lines:
            self.write(self._line(losses))

    def _line(self, losses: dict[str, float]) -> str:
        seconds = time.perf_counter() - self._started
        steps = self.done - self._initial
        rate = steps / seconds if seconds > 0 else 0.0
        eta = format_duration((self.total - self.done) / rate) if rate > 0 else "?"
        percent = 100.0 * self.done / self.total if self.total else 100.0
        return (f"step {self.done}/{self.total} ({percent:.0f}%) {rate:.3g} it/s, ETA {eta}: "
                f"{format_losses(losses)}")

    def write(self, message: str) -> None:
        """A line of text (above the bar when it is shown)."""
        if self.show_bar:
            tqdm.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)

    def close(self) -> None:
        self._bar.close()
