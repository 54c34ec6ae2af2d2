"""Shared pieces of the trainer tests: the toy method registered as a plugin, short runs."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest
import torch

from i2i_fast.train import TrainOptions, Trainer

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent

# Small, fast runs: 16x16 synthetic images, 6 steps, everything logged often.
FAST = dict(data="synthetic:shapes", device="cpu", workers=0, log_every=2, sample_every=3,
            checkpoint_every=3, keep_checkpoints=5, n_samples=3, progress=False)


def write_plugin(folder: Path) -> Path:
    """A distribution's metadata declaring the toy method as entry point i2i_fast.methods:toygan
    (exactly what pip writes for a package with that entry point)."""
    info = folder / "i2i_fast_test_toygan-0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: i2i-fast-test-toygan\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[i2i_fast.methods]\ntoygan = train_toy:ToyGAN\n")
    return folder


@pytest.fixture(scope="module")
def toy_plugin(tmp_path_factory) -> Path:
    """The folder holding the toy plugin's metadata, on sys.path for the test module."""
    folder = write_plugin(tmp_path_factory.mktemp("toy_plugin"))
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))


def subprocess_env(plugin: Path) -> dict[str, str]:
    """Environment of a child process that sees this worktree, the tests and the toy plugin."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(TESTS), str(plugin)])
    env["OMP_NUM_THREADS"] = "1"
    env.pop("WORLD_SIZE", None)
    env.pop("RANK", None)
    return env


class Run:
    """A finished in-process run: the trainer, its result, the losses of every step."""

    def __init__(self, trainer: Trainer, result, losses: dict[int, dict[str, float]], log: str):
        self.trainer = trainer
        self.result = result
        self.method = trainer.method
        self.losses = losses
        self.log = log
        self.run_dir = result.run_dir


def train(run_dir: Path, on_step=None, **options) -> Run:
    """Train the toy method in this process; options override FAST; on_step(step, losses) is
    called after each step."""
    losses: dict[int, dict[str, float]] = {}

    def record(step, values):
        losses[step] = values
        if on_step is not None:
            on_step(step, values)

    stream = io.StringIO()
    merged = {**FAST, "run_dir": str(run_dir), **options}
    trainer = Trainer(TrainOptions("toygan", **merged), on_step=record, stream=stream)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 16x16 images gain nothing from threads; a busy machine loses a lot
    try:
        result = trainer.run()
    finally:
        torch.set_num_threads(threads)
    return Run(trainer, result, losses, stream.getvalue())


def load(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def assert_same_tensors(a, b, path: str = "") -> None:
    """Nested dicts/lists of tensors and values, bitwise equal."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, dict):
        assert a.keys() == b.keys(), f"{path}: keys {sorted(a)} vs {sorted(b)}"
        for key in a:
            assert_same_tensors(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_tensors(x, y, f"{path}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        assert torch.equal(a, b), f"{path}: values differ (max {(a.double() - b.double()).abs().max()})"
    else:
        assert a == b, f"{path}: {a!r} vs {b!r}"
