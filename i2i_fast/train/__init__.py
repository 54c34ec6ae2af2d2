"""Training and translation: the loop, checkpoints, run folders, logging, DDP.

    from i2i_fast.train import TrainOptions, Trainer
    result = Trainer(TrainOptions("munit", data="synthetic:shapes",
                                  overrides=["max_iter=1000"])).run()

    from i2i_fast.train import load_method
    method = load_method("runs/munit/checkpoints/step_000001000.pt")

Modules: ``trainer`` (the loop), ``options`` (how a run trains), ``checkpoint`` (format, atomic
write, safe load), ``run_dir`` (run folder layout), ``distributed`` (torchrun processes),
``rng`` (random generator states), ``progress`` / ``events`` / ``samples`` (what a run reports),
``images`` (grids, PNGs, inputs), ``translate`` (inference from a checkpoint), ``cli_commands``
(``i2i-fast train`` and ``i2i-fast translate``).
"""

from .checkpoint import CheckpointFolder, load as load_checkpoint, save_atomic
from .errors import CheckpointError, DivergedError, TrainError
from .options import TrainOptions
from .run_dir import RunDir
from .trainer import Trainer, TrainResult
from .translate import Translation, load_method, translate_files

__all__ = [
    "CheckpointError",
    "CheckpointFolder",
    "DivergedError",
    "RunDir",
    "TrainError",
    "TrainOptions",
    "TrainResult",
    "Trainer",
    "Translation",
    "load_checkpoint",
    "load_method",
    "save_atomic",
    "translate_files",
]
