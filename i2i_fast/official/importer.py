"""Official checkpoint files → one i2i_fast training checkpoint (what ``i2i-fast train`` writes).

``import_official(method, files, config=..., out=...)``:

1. reads each file with ``torch.load(weights_only=True)`` (nothing in it is executed or
   imported) and tells which of the method's official files it is, by what it holds;
2. resolves the method's Config from ``config`` (a named configuration or a YAML file) and
   ``overrides``, and checks every tensor of the files against the networks of that
   configuration, built on the meta device (no memory, no time): a mismatch names the first
   tensor that does not fit, and the named configurations that would fit;
3. builds the method (seed 0, CPU), loads the files' networks, derives what they lack where the
   format allows it (an EMA copy) and leaves the rest as initialised, saying so; moves the
   official Adam states to our optimizers by parameter name; sets the learning-rate schedules to
   the step;
4. writes the checkpoint atomically: the trainer's format with ``step`` = the iterations done
   (from the file names, or ``step``), no data position and no random generator states (a
   resumed run starts its data stream and draws afresh and says so), and ``imported_from``
   (repository, files, notes), whose notes ``train --resume`` repeats.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .. import config as config_lib
from ..methods.base import Method, RunContext
from ..methods.registry import get_method_class, resolve_config
from ..train import checkpoint as checkpoint_lib
from ..train.errors import CheckpointError
from ..train.run_dir import versions
from .errors import OfficialFormatError
from .formats import OfficialFile, OfficialFormat, Sources
from .munit import MUNITFormat
from .stargan_v2 import StarGANv2Format
from .state import Mismatch, NetworkSource, adam_state, mismatch, our_tensors

FORMATS: dict[str, OfficialFormat] = {f.method: f for f in (MUNITFormat(), StarGANv2Format())}
SEED = 0  # networks the files do not hold are initialised as a new run with --seed 0 would


@dataclasses.dataclass
class ImportResult:
    """What ``import_official`` wrote."""

    path: Path
    method: str
    config: str
    step: int
    files: list[str]
    notes: list[str]


def official_format(method: str) -> OfficialFormat:
    if method not in FORMATS:
        raise OfficialFormatError(f"method: expected one of {', '.join(sorted(FORMATS))} (the "
                                  f"methods whose official checkpoints can be imported), got "
                                  f"{method!r}")
    return FORMATS[method]


def read_files(fmt: OfficialFormat, paths: Sequence[str | os.PathLike]) -> dict[str, OfficialFile]:
    """The files by kind, each read with torch.load(weights_only=True) and recognised."""
    if not paths:
        raise OfficialFormatError(f"{fmt.method}: expected official checkpoint files "
                                  f"({fmt.describe_files()}), got none")
    files: dict[str, OfficialFile] = {}
    for path in map(Path, paths):
        try:
            data = checkpoint_lib.read_weights_only(path, what="file")
        except CheckpointError as error:
            raise OfficialFormatError(str(error)) from None
        kind = _kind(fmt, path, data)
        if kind in files:
            raise OfficialFormatError(f"{path}: a second {fmt.kinds[kind].split(' ')[0]} file "
                                      f"(the first: {files[kind].path})")
        files[kind] = OfficialFile(path, data, kind)
    return files


def _kind(fmt: OfficialFormat, path: Path, data: Any) -> str:
    if isinstance(data, dict) and data.get("format") == checkpoint_lib.FORMAT:
        raise OfficialFormatError(f"{path}: already an i2i_fast checkpoint (method "
                                  f"{data.get('method')!r}): use it as it is with translate, "
                                  f"eval or train --resume")
    if not isinstance(data, dict):
        raise OfficialFormatError(f"{path}: expected a dict of state dicts ({fmt.method}: "
                                  f"{fmt.describe_files()}), got a {type(data).__name__}")
    kind = fmt.kind_of(path.name, data)
    if kind is not None:
        return kind
    for other in FORMATS.values():
        if other is not fmt and other.kind_of(path.name, data) is not None:
            raise OfficialFormatError(f"{path}: a {other.method} checkpoint ({other.repository}), "
                                      f"not a {fmt.method} one: import it with i2i-fast "
                                      f"import-official {other.method}")
    keys = sorted(map(str, data))
    shown = keys[:8] + (["..."] if len(keys) > 8 else [])
    raise OfficialFormatError(f"{path}: not one of the official {fmt.method} files "
                              f"({fmt.repository}: {fmt.describe_files()}); got a dict with keys "
                              f"{shown}")


def step_of_files(fmt: OfficialFormat, files: dict[str, OfficialFile], step: int | None
                  ) -> tuple[int, str]:
    """(iterations done, where that number comes from)."""
    named = {f.name: s for f in files.values() if (s := fmt.step_of(f.name)) is not None}
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise OfficialFormatError(f"step: expected an int >= 0, got {step!r}")
        return step, "given"
    if len(set(named.values())) > 1:
        listing = ", ".join(f"{name}: {s}" for name, s in named.items())
        raise OfficialFormatError(f"the files are of different iterations ({listing}): give the "
                                  f"files of one checkpoint")
    if named:
        return next(iter(named.values())), "from the file names"
    return 0, "the file names carry none: give it with --step N"


def build(cls: type[Method], config: Any, device: str = "cpu") -> Method:
    """The method for `config`; on the meta device, its tensors have shapes and no data."""
    if device == "meta":
        with torch.device("meta"):
            return cls(config, RunContext(device="meta"))
    torch.manual_seed(SEED)
    return cls(config, RunContext(device=device))


def first_mismatch(method: Method, networks: list[NetworkSource]
                   ) -> tuple[NetworkSource, Mismatch] | None:
    for source in networks:
        found = mismatch(source, method.get_submodule(source.target))
        if found:
            return source, found
    return None


def check_fit(cls: type[Method], config: Any, label: str, networks: list[NetworkSource]) -> None:
    """OfficialFormatError naming the first tensor that does not fit the configuration, and the
    named configurations that would fit."""
    problem = first_mismatch(build(cls, config, "meta"), networks)
    if problem is None:
        return
    source, found = problem
    fits = []
    for name, overrides in cls.configs.items():
        try:
            candidate = resolve_config(cls, name)
            if candidate != config and first_mismatch(build(cls, candidate, "meta"),
                                                      networks) is None:
                fits.append(name)
        except (ValueError, TypeError, RuntimeError):
            continue  # a configuration that does not build is no candidate
    hint = (f"; config {' and '.join(fits)} fits: --config {fits[0]}" if fits
            else f"; no named configuration of {cls.name} fits")
    raise OfficialFormatError(f"{source.label}: does not fit {cls.name} config {label}: "
                              f"{found.describe()}{hint}")


def load_networks(method: Method, networks: list[NetworkSource]) -> int:
    """Load the sources into the method (strict); the number of official keys dropped."""
    state = method.state_dict()
    dropped = 0
    for source in networks:
        tensors, n = our_tensors(source, method.get_submodule(source.target))
        state.update(tensors)
        dropped += n
    try:
        method.load_state_dict(state)
    except RuntimeError as error:
        lines = [line.strip() for line in str(error).splitlines()[1:] if line.strip()]
        raise OfficialFormatError(f"the files do not load into {method.name}: "
                                  f"{' '.join(lines) or error}") from None
    return dropped


def load_optimizers(method: Method, sources: Sources) -> list[str]:
    notes = []
    names = {id(p): name for name, p in method.named_parameters(remove_duplicate=False)}
    for source in sources.optimizers:
        optimizer = method.optimizers[source.optimizer]
        state, hyper_notes = adam_state(source, optimizer, names, method.get_submodule)
        optimizer.load_state_dict(state)
        notes += hyper_notes
    return notes


def set_schedules(method: Method, step: int) -> None:
    """Each learning-rate schedule as after `step` iterations of the trainer (which steps them
    once per iteration; the methods' schedules are functions of that count)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "step() before optimizer.step()"
        for scheduler in method.schedulers.values():
            scheduler.last_epoch = step - 1
            scheduler.step()


def import_official(method: str, files: Sequence[str | os.PathLike], *, config: str,
                    out: str | os.PathLike, overrides: Sequence[str] = (),
                    step: int | None = None) -> ImportResult:
    """Convert official checkpoint files of `method` into an i2i_fast checkpoint at `out`.

    config: a named configuration of the method (``i2i-fast methods``; e.g. "afhq") or a YAML
    file; overrides: ``--set`` values. step: iterations done (default: from the file names).
    Raises OfficialFormatError (one line) for any file or configuration that does not fit.
    """
    fmt = official_format(method)
    out = Path(out)
    if out.exists():
        raise OfficialFormatError(f"--out {out}: already exists (remove it or choose another "
                                  f"name)")
    cls = get_method_class(fmt.method)
    resolved = resolve_config(cls, config, list(overrides))
    _refuse_code_references(resolved)
    read = read_files(fmt, files)
    step, step_origin = step_of_files(fmt, read, step)
    sources = fmt.sources(read)
    label = str(config) + "".join(f" --set {o}" for o in overrides)
    check_fit(cls, resolved, label, sources.networks)
    try:
        built = build(cls, resolved)
    except ValueError as error:  # a config value the method refuses
        raise OfficialFormatError(f"config {label}: {error}") from None
    dropped = load_networks(built, sources.networks)
    notes = list(sources.notes)
    if dropped:
        notes.append(f"dropped {dropped} running statistics the official layers carry but "
                     f"never use")
    notes += fmt.complete(built, sources)
    notes += load_optimizers(built, sources)
    set_schedules(built, step)
    notes.append(f"step {step} ({step_origin})")
    payload = {
        "format": checkpoint_lib.FORMAT,
        "format_version": checkpoint_lib.FORMAT_VERSION,
        "method": built.name,
        "method_config": config_lib.to_dict(built.config),
        "step": step,
        "training_state": built.training_state(),
        "scaler": None,
        "rng": [],  # none: a resumed run seeds its generators from --seed and the step
        "world_size": None,
        "data": None,  # no position: a resumed run starts its data stream at the beginning
        "train_options": None,
        "versions": versions(),
        "imported_from": {"repository": fmt.repository,
                          "files": [str(f.path) for f in read.values()], "notes": notes},
    }
    checkpoint_lib.save_atomic(payload, out)
    return ImportResult(out, built.name, label, step, [f.name for f in read.values()], notes)


def _refuse_code_references(config: Any) -> None:
    """A checkpoint never names code to import (hpf_masks): it is given where it is used."""
    if getattr(config, "hpf_masks", ""):
        raise OfficialFormatError(f"hpf_masks: a checkpoint does not store code references; "
                                  f"expected '' here (give {config.hpf_masks!r} where the "
                                  f"checkpoint is used), got {config.hpf_masks!r}")
