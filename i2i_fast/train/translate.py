"""Translation with a trained checkpoint: what ``i2i-fast translate`` runs.

``load_method(checkpoint)`` rebuilds the method from the name and resolved Config stored in the
checkpoint (read with ``torch.load(weights_only=True)``) and loads its networks (EMA copies
included); ``translate_files`` reads images, translates them with K random styles or the style of
a reference image, and writes one PNG per output and a grid.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from .. import config as config_lib
from ..methods.base import Method, RunContext
from ..methods.registry import MethodError, get_method_class, resolve_config
from . import checkpoint as checkpoint_lib
from .errors import CheckpointError, TrainError
from ..methods.sizes import SizeRule
from .images import centre_crop, grid, load_image, read_input, save_png


def load_method(path: str | os.PathLike, device: str | torch.device = "cpu",
                code: Sequence[str] | dict | None = None,
                report: Callable[[str], None] | None = None) -> Method:
    """The method of a checkpoint, in eval mode on `device`, ready for ``translate``.

    code, report: see ``method_from_checkpoint``.
    """
    return method_from_checkpoint(checkpoint_lib.load(path), path, device, code, report)


def method_from_checkpoint(saved: dict, path: str | os.PathLike,
                           device: str | torch.device = "cpu",
                           code: Sequence[str] | dict | None = None,
                           report: Callable[[str], None] | None = None) -> Method:
    """The method of a checkpoint already read with ``checkpoint.load`` (eval mode, on `device`).

    The stored configuration is used without its code references (nothing named in a checkpoint
    is imported): `code` gives them, as ``["hpf_masks=package.module:function"]`` (what
    ``--set`` takes) or a nested dict, and only them (the rest of the configuration is the
    checkpoint's). `report(line)` is told about each code reference the checkpoint held and
    `code` did not give again (default: a warning).

    Raises CheckpointError naming `path` when the method is unknown, refuses its stored
    configuration, or its networks do not fit the stored weights; TrainError for a `code` key
    that is not a code reference.
    """
    try:
        cls = get_method_class(saved["method"])
    except MethodError as error:
        raise CheckpointError(f"checkpoint {path}: method {saved['method']!r}: {error}") from None
    stored, dropped = checkpoint_lib.stored_method_config(saved, cls.Config, str(path))
    given = config_lib.parse_overrides(list(code)) if isinstance(code, (list, tuple)) \
        else dict(code or {})
    allowed = config_lib.code_reference_keys(cls.Config)
    for key in _dotted_keys(given):
        if key not in allowed:
            names = ", ".join(allowed) or "none"
            raise TrainError(f"--set {key}: only the code references of {cls.name} ({names}) "
                             f"are given here; the rest of the configuration is the "
                             f"checkpoint's")
    try:
        config = resolve_config(cls, stored)
    except config_lib.ConfigError as error:
        raise CheckpointError(f"checkpoint {path}: method_config: {error}") from None
    config = resolve_config(cls, config, given)
    for note in checkpoint_lib.code_reference_notes(dropped, config):
        if report is not None:
            report(note)
        else:
            warnings.warn(note, stacklevel=3)
    try:
        method = cls(config, RunContext(device=torch.device(device)))
    except ValueError as error:
        raise CheckpointError(f"checkpoint {path}: method {cls.name} refuses its stored "
                              f"configuration: {error}") from None
    networks = saved["training_state"].get("networks") if isinstance(
        saved["training_state"], dict) else None
    if not isinstance(networks, dict):
        raise CheckpointError(f"checkpoint {path}: training_state: expected a dict with "
                              f"'networks', got {type(saved['training_state']).__name__}")
    try:
        method.load_state_dict(networks)
    except RuntimeError as error:
        raise CheckpointError(f"checkpoint {path}: its networks do not fit method "
                              f"{cls.name}: {error}") from None
    return method.eval()


def _dotted_keys(data: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in data.items():
        if isinstance(value, dict):
            keys += _dotted_keys(value, f"{prefix}{key}.")
        else:
            keys.append(prefix + str(key))
    return keys


def parse_domain(text: str | None) -> int | str | None:
    """--target-domain: an index ("2") or a domain name ("night")."""
    if text is None:
        return None
    return int(text) if text.strip().lstrip("-").isdigit() else text


@dataclasses.dataclass
class Translation:
    """Files written by ``translate_files``, and what was done to the inputs to fit the method."""

    outputs: list[Path]  # one per input and style, input-major
    grid: Path  # rows: input, [reference], outputs
    notes: list[str] = dataclasses.field(default_factory=list)


def _unique_stems(paths: Sequence[Path]) -> list[str]:
    seen: dict[str, int] = {}
    stems = []
    for path in paths:
        count = seen.get(path.stem, 0)
        seen[path.stem] = count + 1
        stems.append(path.stem if count == 0 else f"{path.stem}_{count}")
    return stems


class _Inputs:
    """Reads inputs at the sizes the method takes.

    A method with a ``size_rule`` (``i2i_fast.methods.sizes.SizeRule``: fully convolutional
    networks, e.g. MUNIT) takes an image at its own size when both sides are allowed; otherwise
    the largest allowed centred part is taken (said), and an image smaller than the minimum is
    refused. Any other method runs at its image_size: inputs are resized (shorter side) and
    centre-cropped to it (said)."""

    def __init__(self, method: Method, size: int):
        rule = getattr(method, "size_rule", None)
        self.rule = rule if isinstance(rule, SizeRule) else None
        self.method = method
        self.size = size
        self.cropped: list[str] = []
        self.resized = 0

    def read(self, path: Path, what: str = "--input") -> torch.Tensor:
        if self.rule is None:
            self.resized += 1
            return load_image(path, self.size, what)
        image = read_input(path, what)
        h, w = image.shape[1:]
        if self.rule.allows(h) and self.rule.allows(w):
            return image
        fitted_h, fitted_w = self.rule.fitted(h), self.rule.fitted(w)
        if not fitted_h or not fitted_w:
            raise TrainError(f"{what} {path}: {w}x{h} (width x height) is smaller than "
                             f"{self.method.name} takes: each side {self.rule.describe()}")
        self.cropped.append(f"{path.name} {w}x{h} -> {fitted_w}x{fitted_h}")
        return centre_crop(image, fitted_h, fitted_w)

    def notes(self) -> list[str]:
        notes = []
        if self.resized:
            notes.append(f"{self.resized} image(s) resized (shorter side) and centre-cropped to "
                         f"{self.size}x{self.size}: {self.method.name} runs at the size it was "
                         f"trained at")
        if self.cropped:
            shown = "; ".join(self.cropped[:5])
            more = f"; and {len(self.cropped) - 5} more" if len(self.cropped) > 5 else ""
            notes.append(f"{len(self.cropped)} image(s) centre-cropped to sides "
                         f"{self.method.name} takes ({self.rule.describe()}): {shown}{more}; the "
                         f"others keep their size")
        return notes


def translate_files(method: Method, inputs: Sequence[Path], out_dir: str | os.PathLike, *,
                    n_styles: int | None = None, reference: Path | None = None,
                    target_domain: Any = None, seed: int = 0,
                    batch_size: int = 8) -> Translation:
    """Translate image files and write the results.

    Input sizes: a method with a ``size_rule`` (fully convolutional, e.g. MUNIT) translates each
    image at its own size when the rule allows it (any multiple of the networks' stride from
    their minimum on), otherwise its largest allowed centred part; an image below the minimum is
    refused (TrainError). Other methods get every image resized (shorter side) and centre-cropped
    to their image_size. What was done is listed in ``Translation.notes``. Images are in
    [-1, 1]. Without `reference`: n_styles (default 3) random styles per input, drawn from one
    generator seeded by `seed` (the same command gives the same images). With `reference`: one
    output per input in the reference image's style. `target_domain` goes to the method as it is
    (multi-domain methods need one; two-domain methods may take one for the direction, e.g.
    MUNIT's 0/"a" for B to A). Writes <stem>_style<k>.png (k = 1..K) or
    <stem>_ref.png per input, and grid.png (one row per input: input, [reference], outputs).
    """
    size = getattr(method.config, "image_size", None)
    if not isinstance(size, int) or size < 1:
        raise TrainError(f"method {method.name}: its Config has no image_size to resize inputs to")
    if reference is not None and n_styles not in (None, 1):
        raise TrainError(f"--n-styles: with --reference the output takes the reference's style: "
                         f"expected 1 (or nothing), got {n_styles}")
    n_styles = 1 if reference is not None else (3 if n_styles is None else n_styles)
    if not isinstance(n_styles, int) or n_styles < 1:
        raise TrainError(f"--n-styles: expected an int >= 1, got {n_styles!r}")
    if batch_size < 1:
        raise TrainError(f"--batch-size: expected an int >= 1, got {batch_size}")
    if method.data_kind in ("multi_domain", "multi_domain_reference") \
            and target_domain is None:
        raise TrainError(f"--target-domain: method {method.name} translates between several "
                         f"domains: expected the target domain's index or name")
    reader = _Inputs(method, size)
    images = [reader.read(p) for p in inputs]  # every input checked before anything is written
    ref_image = reader.read(reference, "--reference") if reference is not None else None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = method.context.device
    generator = torch.Generator(device=device).manual_seed(seed)
    stems = _unique_stems(inputs)
    outputs: list[Path] = []
    rows = []
    for first, last in _batches([tuple(x.shape) for x in images], batch_size):
        x = torch.stack(images[first:last]).to(device)
        n = last - first
        ref = ref_image[None].expand(n, -1, -1, -1).to(device) if ref_image is not None else None
        try:
            with method.evaluating():
                y = method.translate(x, n_styles=n_styles, reference=ref,
                                     target_domain=target_domain, generator=generator)
        except ValueError as error:  # the method refusing an argument (e.g. the target domain)
            raise TrainError(f"{method.name}.translate: {error}") from None
        expected = (n, n_styles, *x.shape[1:])
        if not isinstance(y, torch.Tensor) or tuple(y.shape) != expected:
            got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise TypeError(f"{method.name}.translate: expected an output of shape {expected} "
                            f"(N, K, 3, H, W), got {got}")
        for i, stem in enumerate(stems[first:last]):
            for k in range(n_styles):
                name = f"{stem}_ref.png" if ref is not None else f"{stem}_style{k + 1}.png"
                outputs.append(save_png(grid([[y[i, k]]], gap=0), out_dir / name))
            rows.append([x[i].cpu()] + ([ref_image] if ref_image is not None else [])
                        + [y[i, k].cpu() for k in range(n_styles)])
    grid_path = save_png(grid(rows), out_dir / "grid.png")
    return Translation(outputs, grid_path, reader.notes())


def _batches(shapes: Sequence[tuple], batch_size: int) -> list[tuple[int, int]]:
    """(first, last) index ranges of consecutive inputs of one shape, at most batch_size each."""
    ranges = []
    first = 0
    for i in range(1, len(shapes) + 1):
        if i == len(shapes) or shapes[i] != shapes[first] or i - first == batch_size:
            ranges.append((first, i))
            first = i
    return ranges
