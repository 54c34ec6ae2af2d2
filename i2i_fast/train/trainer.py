"""The training loop: a method, its data stream, logging, samples, checkpoints and resume.

``Trainer(TrainOptions(...)).run()`` is what ``i2i-fast train`` runs, in each process of a
torchrun launch as well. Per run:

1. the process's place (``Distributed.from_environment``: rank, world size, device);
2. the checkpoint to resume (``--resume``), if any: its method config, options, step;
3. the method (``create_method`` semantics: registry name, Config resolved from the named
   configuration / YAML / ``--set`` overrides), built with the same seed on every process, with a
   ``RunContext`` (device, precision, channels_last, fused Adam, DDP);
4. the data: ``open_dataset(data, kind=method.data_kind, resolution=config.image_size)`` and a
   ``ResumableLoader`` of ``config.batch_size`` items per process;
5. ``method.train_step(batch, step)`` for step = start .. ``config.max_iter`` - 1, with losses
   logged every ``log_every`` steps (means over the interval and over processes), a sample grid
   every ``sample_every`` steps and a checkpoint every ``checkpoint_every`` steps and at the end.

Every method Config has three fields the trainer reads: ``batch_size`` (per process),
``image_size`` (side of the square training images) and ``max_iter`` (iterations in the run).

Stopping: an error between two steps (a file unreadable when loaded, a failing sample grid or
event file, Ctrl-C) first saves the last whole step, on one process, when its losses are finite;
Ctrl-C inside a step lets the step finish (``_DeferredInterrupt``). An error inside a step saves
nothing (the networks may hold half an update). Data: every file's header is checked when the
dataset opens; with ``--skip-bad-images`` a file found unreadable later is left out
(``Dataset.exclude_unreadable``), said once, and the loader restarts at the same position.

Exact resume: the checkpoint holds everything the next step depends on (networks, EMA,
optimizers, schedulers, scaler, step, data position, every process's random generator states), so
a run of N steps equals k steps + resume + N - k steps, bitwise on the CPU. Random draws are
seeded per process (``rng.process_seed``) once the method is built; sampling and data loading do
not touch the training's generators.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import torch

from .. import config as config_lib
from ..data import BadImage, Dataset, ImageReadError, ResumableLoader, open_dataset
from ..data.folders import read_error_line
from ..methods.base import Method, RunContext
from ..methods.registry import MethodError, find_method, get_method_class, resolve_config
from . import checkpoint as checkpoint_lib
from . import rng
from .distributed import Distributed
from .errors import CheckpointError, DivergedError, TrainError, UnreadableCheckpointError
from .events import EventLog
from .images import save_png
from .meter import LossMeter, as_floats
from .options import TrainOptions
from .progress import Progress, format_losses
from .run_dir import DEFAULT_ROOT, RunDir, run_record, versions
from .samples import SampleSheet

TRAINING_FIELDS = ("batch_size", "image_size", "max_iter")
SKIPPED_LIST = "skipped_images.txt"  # in the run folder: every file --skip-bad-images left out
MAX_SKIPPED_LINES = 20  # files left out that are named on the terminal

StepCallback = Callable[[int, dict[str, float]], None]


@dataclasses.dataclass
class TrainResult:
    """What a finished run (of this process) reports."""

    run_dir: Path
    step: int
    max_iter: int
    resumed_from: Path | None
    last_checkpoint: Path | None  # written by this run (rank 0), or None
    losses: dict[str, float]  # of the last step, this process


def training_fields(method_name: str, config: Any) -> tuple[int, int, int]:
    """(batch_size, image_size, max_iter) of a method Config, checked."""
    values = []
    for name in TRAINING_FIELDS:
        if not hasattr(config, name):
            raise TrainError(
                f"method {method_name}: its Config ({type(config).__name__}) has no field "
                f"{name!r}; the trainer reads {', '.join(TRAINING_FIELDS)} from every method's "
                f"Config (subclass i2i_fast.methods.MethodConfig, which declares them)")
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise TrainError(f"{name}: expected an int >= 1, got {value!r}")
        values.append(value)
    return values[0], values[1], values[2]


def _why(bad: BadImage) -> str:
    """Why a file is unreadable, without the file's name that the reason starts with."""
    prefix = f"cannot read image {bad.path}: "
    return bad.reason[len(prefix):] if bad.reason.startswith(prefix) else bad.reason


class _DeferredInterrupt:
    """Ctrl-C (SIGINT) inside a training step waits for the step to end, so that the state saved
    before stopping is that of a whole step; a second Ctrl-C interrupts at once. Outside a step,
    and where no handler can be installed (another thread), Ctrl-C interrupts as usual."""

    def __init__(self, say: Callable[[str], None]):
        self._say = say
        self._in_step: int | None = None  # the step being computed
        self._pending = False

    @contextlib.contextmanager
    def installed(self):
        usable = (threading.current_thread() is threading.main_thread()
                  and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
        if not usable:
            yield
            return
        signal.signal(signal.SIGINT, self._handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def _handler(self, signum, frame) -> None:
        if self._in_step is None or self._pending:
            raise KeyboardInterrupt
        self._pending = True
        self._say(f"interrupt: finishing step {self._in_step}, then saving (Ctrl-C again to stop "
                  f"at once, without saving)")

    @contextlib.contextmanager
    def deferred(self, step: int):
        """The block of one training step: an interrupt during it waits for ``raise_pending``."""
        self._in_step = step
        try:
            yield
        finally:
            self._in_step = None

    def raise_pending(self) -> None:
        """KeyboardInterrupt if one came during the last step (call once it is reported)."""
        if self._pending:
            self._pending = False
            raise KeyboardInterrupt


def changed_keys(before: dict, after: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts."""
    keys = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += changed_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            keys.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return keys


def _backend_scope(name: str) -> contextlib.AbstractContextManager:
    """``use_backend(name)`` for the run, after checking that the backend can run at all."""
    if name == "auto":
        return contextlib.nullcontext()
    from .. import ops

    try:
        backend = ops.get_backend(name)
    except ops.BackendError as error:
        raise TrainError(f"--backend: {error}") from None
    reason = backend.unavailable_reason()
    if reason is not None:
        raise TrainError(f"--backend {name}: not available here: {reason}")
    return ops.use_backend(name)


@dataclasses.dataclass
class _Plan:
    """What a run does, decided from the options and the checkpoint to resume."""

    cls: type[Method]
    name: str  # the registry name that reaches the method (stored in checkpoints)
    run: RunDir
    resume_path: Path | None
    saved: dict | None  # the checkpoint resumed
    config: Any  # the method's resolved Config
    options: TrainOptions  # resolved: every stored option set
    notes: list[str]  # differences from the checkpoint's run, said at the start


@dataclasses.dataclass(frozen=True)
class Hints:
    """How the command that runs the trainer spells what the trainer's messages suggest
    (``i2i-fast train``'s flags by default; ``i2i-fast demo`` has its own)."""

    resume: str = "--resume auto"  # continue the run in the run folder
    more_steps: str = "--set max_iter=N"  # train a finished run further


class Trainer:
    """One process's part of a training run (see the module docstring).

    on_step(step, losses) is called after every step (step = iterations done) on every process,
    with the losses as floats (reading them every step waits for the device; without on_step they
    are read once per log interval).
    Messages and the progress bar go to `stream` (stderr by default), on rank 0 only. After
    ``run`` (or during it, from on_step), ``method`` is the method being trained, ``step`` the
    iterations done and ``last_checkpoint`` the last checkpoint this process wrote. `hints`: how
    messages name the flags they suggest.
    """

    def __init__(self, options: TrainOptions, on_step: StepCallback | None = None,
                 stream: TextIO | None = None, hints: Hints = Hints()):
        self.options = options
        self.hints = hints
        self.on_step = on_step
        self.stream = stream
        self.method: Method | None = None
        self.step = 0
        self.last_checkpoint: Path | None = None
        self._method_name = options.method
        self._saved_step = 0  # the step of the latest checkpoint (or the resumed one)
        self._skipped_said = 0

    # ----- where the run lives and where it resumes from -----

    def run_dir(self) -> RunDir:
        """--run-dir, else the run a --resume PATH belongs to, else runs/<method>."""
        options = self.options
        if options.run_dir:
            return RunDir(options.run_dir)
        if options.resume not in (None, "auto"):
            path = Path(options.resume)
            if path.is_file() and path.parent.name == "checkpoints":
                return RunDir(path.parent.parent)
            if path.is_dir():
                return RunDir(path.parent if path.name == "checkpoints" else path)
        return RunDir(DEFAULT_ROOT / options.method.replace(":", "_"))

    def checkpoint_to_resume(self, run: RunDir) -> Path | None:
        resume = self.options.resume
        present = run.checkpoints().latest()
        if resume is None:
            if present is not None:
                raise TrainError(
                    f"run folder {run.root} already holds checkpoints (latest {present.name}); "
                    f"pass {self.hints.resume} to continue that run, or choose another --run-dir")
            return None
        if resume == "auto":
            return present
        path = Path(resume)
        if path.is_dir():
            folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
            latest = checkpoint_lib.CheckpointFolder(folder).latest()
            if latest is None:
                raise CheckpointError(f"--resume {path}: no checkpoint (step_N.pt) in {folder}")
            return latest
        return path

    # ----- the run -----

    def run(self) -> TrainResult:
        dist = Distributed.from_environment(self.options.device)
        try:
            return self._run(dist)
        finally:
            dist.close()

    def _say(self, dist: Distributed, message: str) -> None:
        if dist.is_main:
            print(message, file=self.stream or sys.stderr, flush=True)

    def _plan(self, dist: Distributed) -> _Plan:
        """Decide what the run does (method, folder, checkpoint, configuration, options) before
        anything is built; every user error about the arguments is raised here."""
        options = self.options
        name = find_method(options.method).reachable_as
        cls = get_method_class(options.method)
        run = self.run_dir()
        resume_path = self.checkpoint_to_resume(run)
        if resume_path is None and options.resume == "auto":
            self._say(dist, f"no checkpoint in {run.checkpoint_dir}: starting a new run")
        if resume_path is None:
            config = resolve_config(cls, options.config, options.overrides)
            resolved, notes = options.resolved(None)
            return _Plan(cls, name, run, None, None, config, resolved, notes)
        saved, resume_path, unreadable = self._read_checkpoint(resume_path, dist)
        if not self._same_method(saved["method"], name):
            raise CheckpointError(f"checkpoint {resume_path}: trained method "
                                  f"{saved['method']!r}, not {options.method!r}")
        later = [s for s in run.checkpoints().steps() if s > saved["step"] and s not in unreadable]
        if later:
            raise TrainError(
                f"run folder {run.root} holds checkpoints after step {saved['step']} (step "
                f"{later[-1]}); continuing from {resume_path} there would mix two runs: "
                f"delete the later checkpoints or pass another --run-dir")
        if options.config is not None:
            raise TrainError("--config: a resumed run keeps its checkpoint's configuration; "
                             "change single values with --set")
        # nothing the checkpoint names is imported: its code references are dropped (said)
        stored, dropped = checkpoint_lib.stored_method_config(saved, cls.Config, str(resume_path))
        config = resolve_config(cls, stored, options.overrides)
        notes = [f"--set {c}" for c in changed_keys(stored, config_lib.to_dict(config))]
        notes += checkpoint_lib.code_reference_notes(dropped, config)
        resolved, option_notes = options.resolved(saved.get("train_options"))
        return _Plan(cls, name, run, resume_path, saved, config, resolved,
                     notes + option_notes)

    @staticmethod
    def _same_method(stored: Any, name: str) -> bool:
        """Whether a checkpoint's method name reaches the registry entry `name` reaches."""
        if stored == name:
            return True
        try:
            return (isinstance(stored, str)
                    and find_method(stored).qualified_name == find_method(name).qualified_name)
        except MethodError:
            return False

    def _read_checkpoint(self, path: Path, dist: Distributed) -> tuple[dict, Path, list[int]]:
        """(the checkpoint to resume, its path, the steps of unreadable newer checkpoints passed
        over). A checkpoint named by its file is read or refused; with ``--resume auto`` or a
        folder, an unreadable latest checkpoint (truncated, corrupt) gives way to the newest
        readable one, and that is said."""
        if self.options.resume not in ("auto", None) and not Path(self.options.resume).is_dir():
            return checkpoint_lib.load(path), path, []
        folder = checkpoint_lib.CheckpointFolder(path.parent)
        failures: list[tuple[Path, UnreadableCheckpointError]] = []
        for step in reversed(folder.steps()):
            candidate = folder.path(step)
            try:
                saved = checkpoint_lib.load(candidate)
            except UnreadableCheckpointError as error:
                failures.append((candidate, error))
                continue
            for _, error in failures:
                self._say(dist, f"{error}; resuming from the newest readable one, {candidate}")
            return saved, candidate, [checkpoint_lib.step_of(p) for p, _ in failures]
        reasons = "; ".join(f"{p.name} ({str(e).split(': ', 1)[-1]})" for p, e in failures)
        raise CheckpointError(f"no readable checkpoint in {folder.folder}: {reasons}")

    def _run(self, dist: Distributed) -> TrainResult:
        plan = self._plan(dist)
        opts, run, saved = plan.options, plan.run, plan.saved
        self._method_name = plan.name
        if dist.is_main:
            removed = run.checkpoints().remove_temporaries()
            if removed:
                self._say(dist, f"removed {len(removed)} temporary file(s) of an interrupted "
                                f"checkpoint write: {', '.join(p.name for p in removed)}")
        batch_size, image_size, max_iter = training_fields(plan.cls.name, plan.config)
        with _backend_scope(opts.backend):
            try:
                context = RunContext(device=dist.device, precision=opts.precision,
                                     channels_last=opts.channels_last,
                                     fused_optimizers=opts.fused_adam,
                                     world_size=dist.world_size, rank=dist.rank)
            except ValueError as error:
                raise TrainError(f"--precision {opts.precision}: {error}") from None
            rng.seed_all(opts.seed)  # the same networks on every process
            try:
                method = self.method = plan.cls(plan.config, context)
            except ValueError as error:  # a config value the method refuses
                raise TrainError(str(error)) from None
            try:
                with warnings.catch_warnings():
                    # the files left out are said below, one line each
                    warnings.filterwarnings("ignore", message="image folder .*: skipped")
                    # A method may name its own data transform and other dataset options
                    # (Method.dataset_options: e.g. BicycleGAN's load_size / no_flip transform).
                    dataset = open_dataset(opts.data, kind=method.data_kind, split="train",
                                           resolution=image_size, seed=opts.seed,
                                           skip_bad=opts.skip_bad_images,
                                           progress=dist.is_main and opts.progress,
                                           **method.dataset_options())
            except ImageReadError as error:
                raise TrainError(f"--data {opts.data}: {error} (checked before training; pass "
                                 f"--skip-bad-images to leave unreadable files out)") from None
            except (ValueError, TypeError, OSError) as error:
                raise TrainError(f"--data {opts.data}: {error}") from None
            loader = ResumableLoader(dataset, batch_size, seed=opts.seed, rank=dist.rank,
                                     world_size=dist.world_size, num_workers=opts.workers)
            start = 0
            if saved is not None:
                start = self._restore(saved, plan.resume_path, method, loader, dist, opts.seed,
                                      plan.notes)
            self.step = self._saved_step = start

            if dist.is_main:
                run.create()
                run.write_config(run_record(plan.name, config_lib.to_dict(plan.config),
                                            opts.stored(), dist.world_size, start))
            self._say(dist, f"{plan.name} on {opts.data}: {len(dataset)} items, batch "
                            f"{batch_size} x {dist.world_size} process(es), {image_size}x"
                            f"{image_size}, steps {start}..{max_iter}; device {dist.device}, "
                            f"{opts.precision}{', channels_last' if opts.channels_last else ''}, "
                            f"backend {opts.backend}; run folder {run.root}")
            self._report_skipped(dist, run, list(getattr(dataset, "skipped", [])))
            if saved is not None:
                self._say(dist, f"resumed from {plan.resume_path} at step {start}")
            for note in plan.notes:
                self._say(dist, f"note: {note}")
            # The checkpoint's own step was logged by the run that wrote it and is not logged
            # again: only what that run logged after it is dropped.
            events = EventLog(run.tensorboard_dir, enabled=dist.is_main,
                              purge_step=start + 1 if saved is not None else None)
            if dist.is_main:
                events.text("config", f"```\n{run.config_path.read_text()}\n```", start)
            sheet = (self._skipping_bad_files(
                lambda: SampleSheet(dataset, opts.n_samples, opts.seed, dist.device,
                                    context.to_device), dataset, dist, run, opts)
                if dist.is_main else None)
            if saved is None:
                rng.seed_all(rng.process_seed(opts.seed, dist.rank))
            try:
                losses = self._loop(method, loader, dataset, dist, run, opts, events, sheet,
                                    start, max_iter)
            except ImageReadError as error:
                latest = (f"; the run's latest checkpoint is {self.last_checkpoint}"
                          if self.last_checkpoint else "")
                raise TrainError(f"--data {opts.data}: {read_error_line(str(error))} (pass "
                                 f"--skip-bad-images to leave unreadable files out){latest}"
                                 ) from None
            finally:
                events.close()
                loader.close()
        if start >= max_iter:
            self._say(dist, f"the run is already at step {start} of max_iter {max_iter}: "
                            f"nothing to do (raise it with {self.hints.more_steps})")
        else:
            self._say(dist, f"done: step {max_iter}; checkpoint {self.last_checkpoint}")
        return TrainResult(run.root, self.step, max_iter, plan.resume_path, self.last_checkpoint,
                           losses)

    def _restore(self, saved: dict, path: Path, method: Method, loader: ResumableLoader,
                 dist: Distributed, seed: int, notes: list[str]) -> int:
        """Load a checkpoint's state into the method, the loader and the random generators."""
        try:
            method.load_training_state(saved["training_state"])
        except (RuntimeError, KeyError, ValueError) as error:
            raise CheckpointError(f"checkpoint {path}: does not fit method {method.name} with "
                                  f"this configuration: {error}") from None
        method.context.load_scaler_state(saved.get("scaler"))
        imported = saved.get("imported_from")
        if isinstance(imported, dict):  # official weights (i2i-fast import-official)
            notes += [f"imported from {imported.get('repository')}: {note}"
                      for note in imported.get("notes", [])]
        if imported is not None and saved.get("data") is None:
            notes.append("the checkpoint holds no data stream position (imported weights): the "
                         "data stream starts at its beginning")
        else:
            try:
                loader.load_state_dict(saved["data"])
            except (KeyError, TypeError, ValueError) as error:
                raise CheckpointError(f"checkpoint {path}: the data stream cannot continue: "
                                      f"{error}") from None
        step = saved["step"]
        states = saved.get("rng") or []
        if saved.get("world_size") == dist.world_size and len(states) == dist.world_size:
            rng.restore(states[dist.rank], dist.device)
        else:
            rng.seed_all(rng.process_seed(seed, dist.rank, step))
            notes.append("the checkpoint holds no random generator states (imported weights): "
                         "seeded from --seed and the step" if not states else
                         f"the checkpoint's random generator states are for "
                         f"{saved.get('world_size')} process(es), this run has "
                         f"{dist.world_size}: reseeded (the data stream continues exactly; random "
                         f"draws of the method do not)")
        return step

    def _loop(self, method: Method, loader: ResumableLoader, dataset: Dataset,
              dist: Distributed, run: RunDir, opts: TrainOptions, events: EventLog,
              sheet: SampleSheet | None, start: int, max_iter: int) -> dict[str, float]:
        folder = run.checkpoints(opts.keep_checkpoints)
        progress = Progress(max_iter, start, show_bar=dist.is_main and opts.progress,
                            stream=self.stream, lines=dist.is_main and not opts.progress)
        context = method.context
        meter = LossMeter(method.name, start + 1)
        interval_start = time.perf_counter()
        losses: dict[str, Any] = {}
        # What the loop is doing when an error stops it: while it fetches data ("data") or
        # reports a finished step ("report"), the state is that of a whole step and is saved
        # before the error goes on; inside a step or a checkpoint write it is not.
        phase = "data"
        interrupt = _DeferredInterrupt(lambda message: self._say(dist, message))
        try:
            with interrupt.installed():
                for step in range(start, max_iter):
                    phase = "data"
                    batch = self._skipping_bad_files(lambda: next(loader), dataset, dist, run,
                                                     opts, loader.close)
                    batch = {k: context.to_device(v) if isinstance(v, torch.Tensor) else v
                             for k, v in batch.items()}
                    phase = "step"
                    with interrupt.deferred(step + 1):
                        losses = method.train_step(batch, step)
                        method.context.end_iteration()
                        meter.add(losses)
                        done = self.step = step + 1
                        phase = "report"
                    if self.on_step is not None:
                        self.on_step(done, as_floats(losses))
                    log = done % opts.log_every == 0 or done == max_iter
                    save = done % opts.checkpoint_every == 0 or done == max_iter
                    logged = None
                    if log or save:
                        # read once per interval (and before any checkpoint): nothing non-finite
                        # is logged as progress or saved
                        means = dist.mean(meter.means())
                        self._check_finite(means, meter.first_step, done)
                    if log:
                        seconds = time.perf_counter() - interval_start
                        events.scalars(done, means, "loss/")
                        events.scalars(done, {name: opt.param_groups[0]["lr"]
                                              for name, opt in method.optimizers.items()}, "lr/")
                        events.scalars(done, {"it_per_s": meter.count / seconds if seconds > 0
                                              else 0.0, "epoch": loader.epoch}, "progress/")
                        logged = means
                        meter.reset(done + 1)
                        interval_start = time.perf_counter()
                    progress.step(logged)
                    if sheet is not None and (done % opts.sample_every == 0 or done == max_iter):
                        self._sample(method, sheet, run, events, done)
                    if save:
                        phase = "checkpoint"
                        self._checkpoint(method, loader, dist, folder, opts, done)
                        events.flush()
                        phase = "report"
                    interrupt.raise_pending()
        except BaseException as error:
            progress.close()
            if phase in ("data", "report"):
                self._save_before_stopping(error, method, loader, dist, folder, opts, meter)
            raise
        finally:
            progress.close()
        return as_floats(losses)

    def _save_before_stopping(self, error: BaseException, method: Method,
                              loader: ResumableLoader, dist: Distributed,
                              folder: checkpoint_lib.CheckpointFolder, opts: TrainOptions,
                              meter: LossMeter) -> None:
        """A checkpoint of the last whole step before `error` ends the run, when there is
        progress to keep and the state is sound (finite losses; one process: several would have
        to agree to save together)."""
        if self.step <= self._saved_step or isinstance(error, DivergedError):
            return
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        if len(lines) > 1 and lines[0].startswith("Caught "):  # a DataLoader worker's error
            lines = [lines[-1].rsplit(".", 1)[-1]]  # its last line: module.Error: message
        why = type(error).__name__ + (f": {lines[0]}" if lines else "")
        if dist.world_size > 1:
            self._say(dist, f"stopping at step {self.step} ({why}); not saved: with several "
                            f"processes the checkpoints are written at the periodic steps only")
            return
        try:
            means = meter.means()
            if not all(math.isfinite(value) for value in means.values()):
                self._say(dist, f"stopping at step {self.step}; not saved: non-finite mean "
                                f"loss {format_losses(means)}")
                return
            self._checkpoint(method, loader, dist, folder, opts, self.step)
        except Exception as save_error:  # noqa: BLE001 - the first error is the one raised
            self._say(dist, f"stopping at step {self.step}; could not write a checkpoint "
                            f"first: {type(save_error).__name__}: {save_error}")
            return
        self._say(dist, f"stopping at step {self.step} ({why}): wrote checkpoint "
                        f"{self.last_checkpoint} first (continue with {self.hints.resume})")

    def _skipping_bad_files(self, fetch: Callable[[], Any], dataset: Dataset, dist: Distributed,
                            run: RunDir, opts: TrainOptions,
                            restart: Callable[[], None] | None = None) -> Any:
        """fetch(); with --skip-bad-images, a file found unreadable while loading is left out
        (its items take the next readable file of its folder), said once, and fetch() is tried
        again, after restart() (the loader's workers restart with the dataset that leaves the
        file out; its position has not moved)."""
        while True:
            try:
                return fetch()
            except ImageReadError as error:
                if not opts.skip_bad_images:
                    raise
                try:
                    bad = dataset.exclude_unreadable(str(error))
                except ValueError as empty:
                    raise TrainError(f"--data {opts.data}: {empty}") from None
                if bad is None:
                    raise
                self._report_skipped(dist, run, [bad], every_rank=True)
                if restart is not None:
                    restart()

    def _report_skipped(self, dist: Distributed, run: RunDir, bad: list[BadImage],
                        every_rank: bool = False) -> None:
        """Each file left out by --skip-bad-images said once, in one line (the first
        MAX_SKIPPED_LINES; all of them are listed in <run>/skipped_images.txt)."""
        if not bad or not (dist.is_main or every_rank):
            return
        listing = run.root / SKIPPED_LIST
        if dist.is_main:
            run.root.mkdir(parents=True, exist_ok=True)
            with open(listing, "a") as file:
                file.writelines(f"{b.path}\t{_why(b)}\n" for b in bad)
        rank = f"[rank {dist.rank}] " if dist.world_size > 1 else ""
        for b in bad:
            self._skipped_said += 1
            if self._skipped_said <= MAX_SKIPPED_LINES:
                message = f"{rank}--skip-bad-images: left out {b.path} ({_why(b)})"
            elif self._skipped_said == MAX_SKIPPED_LINES + 1:
                message = f"{rank}--skip-bad-images: more files left out: see {listing}"
            else:
                continue
            print(message, file=self.stream or sys.stderr, flush=True)

    @staticmethod
    def _check_finite(means: dict[str, float], first: int, last: int) -> None:
        bad = {name: value for name, value in means.items() if not math.isfinite(value)}
        if bad:
            steps = f"step {last}" if first == last else f"steps {first}..{last}"
            raise DivergedError(f"{steps}: mean loss {format_losses(bad)}; training stopped "
                                f"without saving this state (resume from the last checkpoint, "
                                f"e.g. with a lower learning rate)")

    def _sample(self, method: Method, sheet: SampleSheet, run: RunDir, events: EventLog,
                step: int) -> None:
        pixels = sheet.render(method)
        save_png(pixels, run.sample_dir / f"step_{step:09d}.png")
        events.image("samples/" + ",".join(sheet.columns), step, pixels)

    def _checkpoint(self, method: Method, loader: ResumableLoader, dist: Distributed,
                    folder: checkpoint_lib.CheckpointFolder, opts: TrainOptions,
                    step: int) -> None:
        states = dist.gather(rng.capture(dist.device))  # every process takes part
        if not dist.is_main:
            return
        payload = {
            "format": checkpoint_lib.FORMAT,
            "format_version": checkpoint_lib.FORMAT_VERSION,
            "method": self._method_name,
            "method_config": config_lib.to_dict(method.config),
            "step": step,
            "training_state": method.training_state(),
            "scaler": method.context.scaler_state(),
            "rng": states,
            "world_size": dist.world_size,
            "data": loader.state_dict(),
            "train_options": opts.stored(),
            "versions": versions(),
        }
        self.last_checkpoint = folder.save(payload, step)
        self._saved_step = step
