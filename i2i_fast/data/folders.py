"""Image folders: listing, reading, scanning for bad files, and the per-folder image sources.

Layouts (``find_domains``):

- two-domain (MUNIT, DRIT, CycleGAN): ``root/trainA``, ``root/trainB`` (``testA``/``testB`` for
  split "test"; any split name works: ``root/<split>A``...);
- multi-domain (StarGAN v2): ``root/<split>/<domain>/``, one folder per domain, domains sorted by
  name (their index is the domain label);
- paired, side by side (pix2pix "aligned", BicycleGAN): ``root/<split>/`` holding images whose
  left half is A and right half is B.

Listing: files with extensions .jpg .jpeg .png .bmp .webp (any case) found recursively, sorted by
their path relative to the folder; names starting with "." (hidden files, macOS "._" files) are
ignored. Reading: PIL, converted to RGB.

Bad files. Every file's header is read when the folder is opened (in threads; a progress bar on
stderr for folders of ``PROGRESS_MIN_FILES`` files or more when ``progress=True``): by default
unreadable files (not an image, an unknown format, an empty or clipped header) are listed, all of
them, in one ``ImageReadError`` and nothing is opened; with ``skip_bad=True`` they are left out,
listed in ``skipped`` and counted in one warning. A file whose header reads but whose pixels do
not (e.g. truncated) is met when loaded: ``ImageReadError`` naming it; with ``skip_bad=True`` the
caller (the trainer) leaves it out with ``exclude`` and its items take the next readable file of
the folder, so the dataset keeps its length and its items stay the same wherever the file was
found. An empty folder, or one left empty, and an image smaller than a crop that no resize
enlarges are errors naming the folder or file.
"""

from __future__ import annotations

import os
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from .transforms import ImageTransform

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class ImageReadError(OSError):
    """An image file that cannot be opened or decoded; the message names the file."""


class BadImage(NamedTuple):
    """A file left out by ``skip_bad=True`` and why."""

    path: Path
    reason: str


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files under `folder` (recursive), sorted by relative path; hidden names skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder}: expected a directory, it does not exist"
                                if not folder.exists() else
                                f"image folder {folder}: expected a directory, got a file")
    found = []
    for parent, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS):
                found.append(Path(parent, name))
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def read_image(path: Path) -> Image.Image:
    """The whole image, decoded, as RGB; ``ImageReadError`` naming the file if that fails."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB")
    except Exception as error:  # PIL raises OSError, ValueError, SyntaxError, DecompressionBomb...
        raise ImageReadError(f"cannot read image {path}: {type(error).__name__}: {error}") from error


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the header only; ``ImageReadError`` naming the file if unreadable."""
    try:
        with Image.open(path) as image:
            return image.size
    except Exception as error:
        raise ImageReadError(f"cannot read image {path}: {type(error).__name__}: {error}") from error


PROGRESS_MIN_FILES = 2000  # folders this large show a progress bar while their files are checked
MAX_LISTED = 10  # unreadable files named in an error message (all are counted)


def _probe(path: Path) -> tuple[int, int] | str:
    """(width, height) from a readable header, or the reason the file is not readable."""
    try:
        return _image_size(path)
    except ImageReadError as error:
        return str(error)


def _scan(paths: list[Path], label: str | None = None) -> list[tuple[int, int] | str]:
    """`_probe` of every path, in threads; a progress bar titled `label` for large folders."""
    if len(paths) < 16:
        return [_probe(p) for p in paths]
    show = label is not None and len(paths) >= PROGRESS_MIN_FILES
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool, \
            tqdm(total=len(paths), desc=label, unit="file", disable=not show,
                 file=sys.stderr) as bar:
        results = []
        for result in pool.map(_probe, paths):
            results.append(result)
            bar.update(1)
        return results


def read_error_line(message: str) -> str:
    """The ImageReadError's own message out of `message`, which, for an error raised in a
    DataLoader worker, also holds the worker's traceback (the error is its last line)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[-1].split("ImageReadError: ", 1)[-1] if lines else message


def unreadable_message(what: str, bad: list[BadImage]) -> str:
    """One line naming the unreadable files of `what` (the first MAX_LISTED) and counting all."""
    shown = "; ".join(b.reason for b in bad[:MAX_LISTED])
    more = f"; and {len(bad) - MAX_LISTED} more" if len(bad) > MAX_LISTED else ""
    return f"{what}: {len(bad)} unreadable image file(s): {shown}{more}"


class _ImageFolder:
    """The usable image files of one folder for one transform, bad ones skipped or reported.

    Subclasses say what part of a file is transformed (``_transformed_size``) and load items.
    """

    def __init__(self, folder: str | os.PathLike, transform: ImageTransform, skip_bad: bool = False,
                 progress: bool = False):
        self.folder = Path(folder)
        self.transform = transform
        self.skipped: list[BadImage] = []
        self._excluded: set[int] = set()  # indices of files found unreadable while loading
        files = list_images(self.folder)
        if not files:
            raise FileNotFoundError(
                f"image folder {self.folder}: expected image files "
                f"({', '.join(IMAGE_EXTENSIONS)}, any case, in it or its subfolders), found none"
            )
        results = _scan(files, f"checking {self.folder}" if progress else None)
        bad = [BadImage(path, result) for path, result in zip(files, results)
               if isinstance(result, str)]
        if bad and not skip_bad:
            raise ImageReadError(unreadable_message(f"image folder {self.folder}", bad))
        self.skipped = bad
        kept = []
        for path, result in zip(files, results):
            if not isinstance(result, str):
                self._check_size(path, *result)
                kept.append(path)
        files = kept
        if self.skipped:
            warnings.warn(
                f"image folder {self.folder}: skipped {len(self.skipped)} unreadable image(s) of "
                f"{len(files) + len(self.skipped)} (the first: {self.skipped[0].reason}); they "
                f"are listed in the dataset's `skipped`",
                stacklevel=4,
            )
            if not files:
                raise ValueError(
                    f"image folder {self.folder}: expected readable images, all "
                    f"{len(self.skipped)} were unreadable (skipped)"
                )
        self.files = files

    def exclude(self, path: Path, reason: str) -> BadImage | None:
        """Leave out a file found unreadable while loading (for ``skip_bad``): its items take the
        next readable file of the folder (the length stays the same). None when `path` is not
        one of this folder's files or was left out already; ValueError when none is left."""
        try:
            index = self.files.index(path)
        except ValueError:
            return None
        if index in self._excluded:
            return None
        self._excluded.add(index)
        bad = BadImage(path, reason)
        self.skipped.append(bad)
        if len(self._excluded) == len(self.files):
            raise ValueError(f"image folder {self.folder}: expected readable images, all "
                             f"{len(self.skipped)} were unreadable (skipped)")
        return bad

    def _file(self, index: int) -> Path:
        """The file of item `index`: the next readable one if that file was excluded."""
        while index in self._excluded:
            index = (index + 1) % len(self.files)
        return self.files[index]

    def _transformed_size(self, path: Path, width: int, height: int) -> tuple[int, int]:
        """Size of what the transform receives from a file of width x height."""
        return width, height

    def _check_size(self, path: Path, width: int, height: int) -> None:
        reason = self.transform.check_size(*self._transformed_size(path, width, height))
        if reason is not None:
            raise ValueError(f"{self._what(path)} {reason}")

    def _what(self, path: Path) -> str:
        return f"image {path}"

    def _draw(self, path: Path, image: Image.Image, rng: np.random.Generator):
        """Transform parameters for this file (size errors name it)."""
        self._check_size(path, image.width, image.height)
        return self.transform.draw(*self._transformed_size(path, image.width, image.height), rng)

    def __len__(self) -> int:
        return len(self.files)

    def _skipped_note(self) -> str:
        return f", {len(self.skipped)} skipped" if self.skipped else ""

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self.folder)!r}, {len(self)} files, "
            f"transform={self.transform.name!r})"
        )


class FolderDomain(_ImageFolder):
    """The images of one folder (one domain), transformed.

    ``load(index, rng)`` returns {"image": (3, S, S) float32 in [-1, 1]} with the random
    augmentation drawn from `rng`.
    """

    def __init__(
        self, folder: str | os.PathLike, transform: ImageTransform, skip_bad: bool = False,
        name: str | None = None, progress: bool = False,
    ):
        super().__init__(folder, transform, skip_bad, progress)
        self.name = name if name is not None else self.folder.name

    def load(self, index: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        path = self._file(index)
        image = read_image(path)
        return {"image": self.transform.apply(image, self._draw(path, image, rng))}

    def read(self, index: int) -> Image.Image:
        """The file of image `index` as it is (RGB), for datasets that transform it themselves."""
        return read_image(self._file(index))

    def describe(self) -> str:
        return (
            f"folder {self.folder} ({len(self)} images{self._skipped_note()}); "
            f"{self.transform.describe()}"
        )


class AlignedFolder(_ImageFolder):
    """Side-by-side pairs (pix2pix "aligned"): left half A, right half B (width // 2 each).

    ``load(index, rng)`` returns {"a", "b": (3, S, S) float32 in [-1, 1]}, both halves with the
    same random crop and flip.
    """

    def _transformed_size(self, path: Path, width: int, height: int) -> tuple[int, int]:
        if width < 2:
            raise ValueError(
                f"image {path}: expected a side-by-side pair (A | B) at least 2 pixels wide, "
                f"got {width}x{height}"
            )
        return width // 2, height

    def _what(self, path: Path) -> str:
        return f"each half of image {path}"

    def load(self, index: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        path = self._file(index)
        image = read_image(path)
        params = self._draw(path, image, rng)
        half = image.width // 2
        a = image.crop((0, 0, half, image.height))
        b = image.crop((half, 0, 2 * half, image.height))
        return {"a": self.transform.apply(a, params), "b": self.transform.apply(b, params)}

    def describe(self) -> str:
        return (
            f"side-by-side pairs in {self.folder} ({len(self)} images{self._skipped_note()}, "
            f"A = left half, B = right half, same augmentation for both); "
            f"{self.transform.describe()}"
        )


def find_domains(root: str | os.PathLike, split: str) -> list[tuple[str, Path]]:
    """The domain folders of a dataset root for a split, as (name, folder), in label order.

    Multi-domain layout ``root/<split>/<domain>/`` (sorted by name) if ``root/<split>`` has
    subfolders; else two-domain layout ``root/<split>A``, ``root/<split>B`` (named "A", "B").
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {root}: expected a directory, it does not exist")
    split_dir = root / split
    if split_dir.is_dir():
        subdirs = sorted(
            (p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")),
            key=lambda p: p.name,
        )
        if subdirs:
            return [(p.name, p) for p in subdirs]
    a, b = root / f"{split}A", root / f"{split}B"
    if a.is_dir() and b.is_dir():
        return [("A", a), ("B", b)]
    if a.is_dir() or b.is_dir():
        missing = b if a.is_dir() else a
        raise FileNotFoundError(
            f"dataset root {root}: expected both {a.name}/ and {b.name}/ (two-domain layout), "
            f"{missing.name}/ is missing"
        )
    present = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())
    found = ", ".join(present[:12]) + (", ..." if len(present) > 12 else "") or "nothing"
    where = (
        f"{split_dir} exists but has no domain subfolders"
        if split_dir.is_dir() else f"found {found}"
    )
    raise FileNotFoundError(
        f"dataset root {root}: expected {split}A/ and {split}B/ (two-domain layout) or "
        f"{split}/<domain>/ folders (multi-domain layout); {where}"
    )
