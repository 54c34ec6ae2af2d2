"""TrainOptions: how a run trains (as opposed to what it trains: the method's Config).

Options left as None are "not given": a new run takes the defaults below; a resumed run takes the
values stored in its checkpoint (so ``--resume auto`` alone continues a run as it was started),
and any option given again on the command line wins, with a note saying what changed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..methods.base import PRECISIONS
from .errors import TrainError

# Options kept in checkpoints and restored on resume, with their defaults for a new run.
STORED_DEFAULTS: dict[str, Any] = {
    "data": None,
    "precision": "fp32",
    "channels_last": False,
    "backend": "auto",
    "fused_adam": True,
    "seed": 0,
    "log_every": 100,
    "sample_every": 1000,
    "checkpoint_every": 5000,
    "keep_checkpoints": 3,
    "workers": 2,
    "n_samples": 8,
    "skip_bad_images": False,
}
_POSITIVE = ("log_every", "sample_every", "checkpoint_every", "keep_checkpoints", "n_samples")


def flag(name: str) -> str:
    """The command-line flag of an option: log_every -> --log-every."""
    return "--" + name.replace("_", "-")


@dataclasses.dataclass
class TrainOptions:
    """Everything ``i2i-fast train`` takes.

    method: registered method name. data: dataset folder or "synthetic:NAME" (required for a new
    run; a resumed run reuses its own). config: named configuration or YAML file (new runs only);
    overrides: ["a.b=c", ...] applied to the method Config (also on resume, e.g. max_iter=...).
    run_dir: the run folder (default runs/<method>). resume: None, "auto" (the latest checkpoint
    of the run folder, or a new run if it has none) or a checkpoint file or folder.
    device: auto | cpu | cuda | cuda:N. precision: fp32 | bf16 | fp16 (CUDA only).
    backend: i2i_fast.ops backend forced for the whole run, or "auto". fused_adam: Adam with
    fused=True where the device has it. log_every / sample_every / checkpoint_every: periods in
    steps; keep_checkpoints: how many recent checkpoints stay on disk; workers: DataLoader
    worker processes; n_samples: images in the fixed sample batch. skip_bad_images: leave
    unreadable image files of a folder dataset out (listed and counted) instead of stopping with
    an error naming the file. progress: show the bar.
    """

    method: str
    data: str | None = None
    config: str | None = None
    overrides: list[str] = dataclasses.field(default_factory=list)
    run_dir: str | None = None
    resume: str | None = None
    device: str = "auto"
    precision: str | None = None
    channels_last: bool | None = None
    backend: str | None = None
    fused_adam: bool | None = None
    seed: int | None = None
    log_every: int | None = None
    sample_every: int | None = None
    checkpoint_every: int | None = None
    keep_checkpoints: int | None = None
    workers: int | None = None
    n_samples: int | None = None
    skip_bad_images: bool | None = None
    progress: bool = True

    def stored(self) -> dict[str, Any]:
        """The options a checkpoint keeps (plain values)."""
        return {name: getattr(self, name) for name in STORED_DEFAULTS}

    def resolved(self, stored: dict[str, Any] | None = None) -> tuple[TrainOptions, list[str]]:
        """(options with every stored option set, notes on values that differ from `stored`).

        stored: the ``train_options`` of the checkpoint being resumed, or None for a new run.
        """
        stored = stored or {}
        changes: dict[str, Any] = {}
        notes = []
        for name, default in STORED_DEFAULTS.items():
            given = getattr(self, name)
            if given is None:
                changes[name] = stored.get(name, default)
            else:
                changes[name] = given
                if name in stored and stored[name] != given:
                    notes.append(f"{flag(name)} {given} (the checkpoint's run used {stored[name]})")
        options = dataclasses.replace(self, **changes)
        options.check()
        return options, notes

    def check(self) -> None:
        """TrainError naming the flag for a value out of range (on resolved options)."""
        if self.precision not in PRECISIONS:
            raise TrainError(f"--precision: expected one of {', '.join(PRECISIONS)}, "
                             f"got {self.precision!r}")
        for name in _POSITIVE:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise TrainError(f"{flag(name)}: expected an int >= 1, got {value!r}")
        for name in ("seed", "workers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise TrainError(f"{flag(name)}: expected an int >= 0, got {value!r}")
        if not isinstance(self.backend, str) or not self.backend:
            raise TrainError(f"--backend: expected a backend name or 'auto', got {self.backend!r}")
        if self.data is None:
            raise TrainError("--data: expected a dataset folder or synthetic:NAME for a new run, "
                             "got nothing")
