"""The run folder: everything a training run writes.

    <run>/config.yaml          the resolved configuration: method, method config, data, train
                               options, world size, versions (rewritten when the run resumes)
    <run>/checkpoints/         step_N.pt (see checkpoint.py), the newest few kept
    <run>/samples/             step_N.png: sample grids from the fixed batch
    <run>/tensorboard/         TensorBoard event files (scalars, sample grids)
    <run>/skipped_images.txt   with --skip-bad-images: each file left out, and why (tab-separated)

Several runs must not share a folder: a new run refuses a folder that already holds checkpoints
(resume it, or choose another folder).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from .checkpoint import CheckpointFolder

DEFAULT_ROOT = Path("runs")


def plain(value: Any) -> Any:
    """Tuples as lists, recursively (YAML's safe dumper writes no tuples)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def versions() -> dict[str, str | None]:
    """Versions of what computed a run (stored in its config and checkpoints)."""
    from .. import __version__

    return {
        "i2i_fast": __version__,
        "torch": str(torch.__version__),
        "cuda": str(torch.version.cuda) if torch.version.cuda else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


class RunDir:
    """Paths of a run folder."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.config_path = self.root / "config.yaml"
        self.checkpoint_dir = self.root / "checkpoints"
        self.sample_dir = self.root / "samples"
        self.tensorboard_dir = self.root / "tensorboard"

    def checkpoints(self, keep: int = 3) -> CheckpointFolder:
        return CheckpointFolder(self.checkpoint_dir, keep)

    def create(self) -> None:
        for folder in (self.checkpoint_dir, self.sample_dir, self.tensorboard_dir):
            folder.mkdir(parents=True, exist_ok=True)

    def write_config(self, record: dict[str, Any]) -> Path:
        """Write config.yaml (through a temporary file and a rename)."""
        text = yaml.safe_dump(plain(record), sort_keys=False)
        temporary = self.config_path.with_name(f".{self.config_path.name}.{os.getpid()}.tmp")
        temporary.write_text(text)
        os.replace(temporary, self.config_path)
        return self.config_path

    def read_config(self) -> dict[str, Any] | None:
        if not self.config_path.is_file():
            return None
        return yaml.safe_load(self.config_path.read_text())

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"


def run_record(method: str, method_config: dict[str, Any], train_options: dict[str, Any],
               world_size: int, step: int) -> dict[str, Any]:
    """The content of config.yaml."""
    return {
        "method": method,
        "method_config": method_config,
        "data": train_options.get("data"),
        "train": {k: v for k, v in train_options.items() if k != "data"},
        "world_size": world_size,
        "started_at_step": step,
        "versions": versions(),
    }
