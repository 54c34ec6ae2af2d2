"""Disk cache of the small networks that the metrics train (domain classifier, shape segmenter).

A trained network is stored as ``<cache>/metrics/<name>-<key>.pt`` where the key hashes
everything the network depends on: the settings it was trained with (styles, resolution,
steps, seed...), the source of the modules that define it and render its training images, and
the torch version. Change any of them and a new network is trained; nothing stale is loaded.

The file holds ``{"state_dict": ..., "info": {...}, "key_parts": {...}}`` and is read with
``torch.load(weights_only=True)``. Writes go to a temporary file renamed into place under a file
lock, so concurrent evaluations train once and never read a half-written file. A file that fails
to load is reported in a warning and retrained.

Directory: ``$I2I_FAST_CACHE_DIR/metrics`` (default ``~/.cache/i2i_fast/metrics``), or the
``cache_dir`` passed by the caller.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

SUBDIR = "metrics"


def default_dir() -> Path:
    from i2i_fast.extension import cache_root

    return cache_root() / SUBDIR


def source_digest(module_files: Iterable[str | os.PathLike]) -> str:
    """sha256 (hex, 16 chars) of the bytes of the given source files, in order."""
    h = hashlib.sha256()
    for path in module_files:
        h.update(Path(path).read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]


def package_files(*relative: str) -> list[Path]:
    """Files of the i2i_fast package by their path relative to it ("data/styles.py")."""
    root = Path(__file__).resolve().parent.parent
    return [root / r for r in relative]


def cache_key(parts: dict[str, Any]) -> str:
    """A short stable hash of a JSON-serialisable dict (sorted keys)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def load_or_train(
    name: str,
    key_parts: dict[str, Any],
    train: Callable[[], tuple[dict[str, torch.Tensor], dict[str, Any]]],
    directory: str | os.PathLike | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, Any], bool, Path]:
    """The cached (state_dict, info) for `key_parts`, training with `train()` on a miss.

    Returns (state_dict, info, trained_now, path). `train` returns (state_dict, info) where info
    holds JSON-like values only (numbers, strings, lists, dicts).
    """
    parts = {**key_parts, "torch": torch.__version__.split("+")[0]}
    folder = Path(directory).expanduser() if directory is not None else default_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{cache_key(parts)}.pt"
    with open(folder / f"{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.is_file():
            try:
                stored = torch.load(path, map_location="cpu", weights_only=True)
                return stored["state_dict"], stored["info"], False, path
            except Exception as error:  # noqa: BLE001 - a bad cache file is retrained, said so
                warnings.warn(
                    f"i2i_fast.metrics: cached {name} {path} could not be read "
                    f"({type(error).__name__}: {error}); training it again",
                    stacklevel=2,
                )
        state_dict, info = train()
        payload = {
            "state_dict": {k: v.detach().cpu().clone() for k, v in state_dict.items()},
            "info": info,
            "key_parts": json.loads(json.dumps(parts, default=str)),
        }
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
        os.close(fd)
        try:
            torch.save(payload, tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return payload["state_dict"], info, True, path
