"""Checkpoints: what they hold, atomic writing, safe reading, and the checkpoints/ folder of a run.

A checkpoint is one ``torch.save`` file of plain containers, numbers, strings and tensors (it
loads with ``torch.load(weights_only=True)``: opening a checkpoint never runs code from it):

===================  ===========================================================================
key                  value
===================  ===========================================================================
format               "i2i_fast.checkpoint"
format_version       1 (``FORMAT_VERSION``; a newer file is refused with a clear error)
method               the registered method name
method_config        the resolved method Config as a dict (``i2i_fast.config.to_dict``)
step                 iterations completed
training_state       ``Method.training_state()``: networks (EMA copies included), optimizers,
                     schedulers
scaler               the fp16 GradScaler state, or None
rng                  one entry per rank: ``rng.capture()`` (torch CPU/CUDA, numpy, random)
world_size           number of processes that trained
data                 ``ResumableLoader.state_dict()`` (position in the data stream)
train_options        the options of ``TrainOptions.stored()`` (data spec, precision, seed, ...)
versions             i2i_fast, torch, python, numpy, CUDA versions that wrote it
===================  ===========================================================================

Nothing named in a checkpoint is imported or called: the file loads with
``torch.load(weights_only=True)``, and its method configuration is read with its code references
(Config fields declared with ``i2i_fast.config.code_reference``, e.g. StarGAN v2's ``hpf_masks``)
set back to their defaults (``stored_method_config``); such a value comes from the command line
(``--set``) or the caller, and the trainer, ``i2i-fast translate`` and ``i2i-fast eval`` say how
to give it when a checkpoint held one (``code_reference_notes``).

Writing is atomic: the file is written to a temporary name in the same folder
(``.step_N.pt.<random>.tmp``), flushed to disk, then renamed over the final name, so a crash while
writing leaves the previous checkpoints as they were and never a truncated ``step_*.pt``. A
process killed while writing leaves its temporary file behind; it is never taken for a
checkpoint, and the trainer removes it when the run next starts
(``CheckpointFolder.remove_temporaries``).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

from .. import config as config_lib
from .errors import CheckpointError, UnreadableCheckpointError

FORMAT = "i2i_fast.checkpoint"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("method", "method_config", "step", "training_state")
_NAME = re.compile(r"^step_(\d+)\.pt$")
_TEMPORARY = re.compile(r"^\.step_\d+\.pt\..+\.tmp$")  # save_atomic's, for a step_N.pt


def checkpoint_name(step: int) -> str:
    """The file name of the checkpoint after `step` iterations: step_000001000.pt."""
    return f"step_{step:09d}.pt"


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # not possible on every platform; the rename itself is atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_atomic(payload: dict[str, Any], path: str | os.PathLike) -> Path:
    """``torch.save(payload)`` to `path` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            torch.save(payload, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_folder(path.parent)
    return path


def validate(data: Any, where: str) -> dict[str, Any]:
    """`data` if it is an i2i_fast checkpoint this version reads; CheckpointError otherwise."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        what = f"a {type(data).__name__}" if not isinstance(data, dict) else (
            f"a dict with keys {sorted(map(str, data))[:8]}")
        raise UnreadableCheckpointError(f"checkpoint {where}: expected an i2i_fast checkpoint "
                                        f"(key 'format' = {FORMAT!r}), got {what}")
    version = data.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise UnreadableCheckpointError(f"checkpoint {where}: format_version: expected a "
                                        f"positive int, got {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {where}: format version {version} was written by a newer "
                              f"i2i_fast; this one reads versions up to {FORMAT_VERSION}")
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise UnreadableCheckpointError(f"checkpoint {where}: missing keys {missing}")
    if not isinstance(data["step"], int) or data["step"] < 0:
        raise UnreadableCheckpointError(f"checkpoint {where}: step: expected an int >= 0, "
                                        f"got {data['step']!r}")
    return data


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and check a checkpoint with ``torch.load(weights_only=True)``.

    Raises CheckpointError naming the file when it is missing, is a folder, or was written by a
    newer format version; UnreadableCheckpointError (a CheckpointError) when it cannot be read as
    a torch file (truncated, corrupt, or holding objects other than tensors and plain
    containers) or is not an i2i_fast checkpoint.
    """
    return validate(read_weights_only(path, map_location), str(path))


def read_weights_only(path: str | os.PathLike, map_location: str | torch.device = "cpu",
                      what: str = "checkpoint") -> Any:
    """What a torch file holds, read with ``torch.load(weights_only=True)`` (nothing in it is
    executed or imported); CheckpointError "<what> <path>: ..." when it is missing, a folder, or
    unreadable (truncated, corrupt, or holding objects other than tensors and plain containers).
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{what} {path}: no such file")
    if path.is_dir():
        raise CheckpointError(f"{what} {path}: expected a file, got a folder")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # noqa: BLE001 - zip, pickle and I/O errors all mean "unreadable"
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise UnreadableCheckpointError(
            f"{what} {path}: cannot be read with torch.load(weights_only=True) (truncated, "
            f"corrupt, not a torch file, or holding objects other than tensors and plain "
            f"containers): {type(error).__name__}: {first_line}") from error
    return data


def stored_method_config(saved: dict[str, Any], config_cls: type, where: str
                         ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the checkpoint's method configuration with every code reference set back to its default,
    {dotted key: value} of the code references it held). Nothing is imported here or later from
    what is dropped."""
    stored = saved["method_config"]
    if not isinstance(stored, dict):
        raise CheckpointError(f"checkpoint {where}: method_config: expected a dict, got "
                              f"{type(stored).__name__}")
    return config_lib.without_code_references(config_cls, stored)


def code_reference_notes(dropped: dict[str, Any], config: Any) -> list[str]:
    """One line per code reference a checkpoint held (`dropped`) for which the resolved `config`
    has none (none given with --set or by the caller): it was not imported, and how to give
    it."""
    defaults = config_lib.code_reference_keys(type(config))
    notes = []
    for key, value in dropped.items():
        current = config
        for part in key.split("."):
            current = getattr(current, part)
        if current == defaults[key]:
            notes.append(f"the checkpoint's configuration names code, {key}={value!r}: not "
                         f"imported (a checkpoint never makes i2i_fast import code); if you trust "
                         f"it, give it on the command line: --set {key}={value}")
    return notes


def step_of(path: str | os.PathLike) -> int | None:
    """The step in a checkpoint file name step_N.pt, or None for another name."""
    match = _NAME.match(Path(path).name)
    return int(match.group(1)) if match else None


class CheckpointFolder:
    """The checkpoints/ folder of a run: step_N.pt files, the newest `keep` of them kept."""

    def __init__(self, folder: str | os.PathLike, keep: int = 3):
        if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
            raise ValueError(f"CheckpointFolder: keep: expected an int >= 1, got {keep!r}")
        self.folder = Path(folder)
        self.keep = keep

    def steps(self) -> list[int]:
        """Steps of the checkpoints present, ascending (temporary files are not checkpoints)."""
        if not self.folder.is_dir():
            return []
        found = (step_of(p) for p in self.folder.iterdir() if p.is_file())
        return sorted(s for s in found if s is not None)

    def temporaries(self) -> list[Path]:
        """Temporary files of checkpoint writes that never finished (``.step_N.pt.*.tmp``)."""
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if p.is_file() and _TEMPORARY.match(p.name))

    def remove_temporaries(self) -> list[Path]:
        """Delete the temporary files of unfinished checkpoint writes; the paths removed.

        Only for a folder no other process is writing to (the trainer calls it when a run starts,
        on rank 0, before it writes anything).
        """
        removed = []
        for path in self.temporaries():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
        return removed

    def path(self, step: int) -> Path:
        return self.folder / checkpoint_name(step)

    def latest(self) -> Path | None:
        steps = self.steps()
        return self.path(steps[-1]) if steps else None

    def save(self, payload: dict[str, Any], step: int) -> Path:
        """Write the checkpoint of `step` atomically, then delete all but the newest `keep`."""
        path = save_atomic(payload, self.path(step))
        for old in self.steps()[:-self.keep]:
            with contextlib.suppress(FileNotFoundError):
                self.path(old).unlink()
        return path
