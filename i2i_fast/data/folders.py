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

Bad files: by default a file that cannot be read raises ``ImageReadError`` naming it when it is
loaded (or while the folder is opened, if the transform needs the image sizes to check them).
With ``skip_bad=True`` every file is decoded once while the folder is opened (a full pass over
the data, in threads), unreadable ones are left out, listed in ``skipped`` and counted in a
warning. An empty folder, or one left empty, and an image smaller than a crop that no resize
enlarges are errors naming the folder or file.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

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


def _probe(path: Path, decode: bool) -> tuple[int, int] | str:
    """Size of a readable image, or the reason it is not readable."""
    try:
        if decode:
            return read_image(path).size
        return _image_size(path)
    except ImageReadError as error:
        return str(error)


def _scan(paths: list[Path], decode: bool) -> list[tuple[int, int] | str]:
    """`_probe` of every path, in threads (PIL releases the GIL while decoding)."""
    if len(paths) < 16:
        return [_probe(p, decode) for p in paths]
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda p: _probe(p, decode), paths))


class _ImageFolder:
    """The usable image files of one folder for one transform, bad ones skipped or reported.

    Subclasses say what part of a file is transformed (``_transformed_size``) and load items.
    """

    def __init__(self, folder: str | os.PathLike, transform: ImageTransform, skip_bad: bool = False):
        self.folder = Path(folder)
        self.transform = transform
        self.skipped: list[BadImage] = []
        files = list_images(self.folder)
        if not files:
            raise FileNotFoundError(
                f"image folder {self.folder}: expected image files "
                f"({', '.join(IMAGE_EXTENSIONS)}, any case, in it or its subfolders), found none"
            )
        if skip_bad or transform.needs_input_size:
            results = _scan(files, decode=skip_bad)
            kept = []
            for path, result in zip(files, results):
                if isinstance(result, str):
                    if not skip_bad:
                        raise ImageReadError(result)
                    self.skipped.append(BadImage(path, result))
                    continue
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
        name: str | None = None,
    ):
        super().__init__(folder, transform, skip_bad)
        self.name = name if name is not None else self.folder.name

    def load(self, index: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        path = self.files[index]
        image = read_image(path)
        return {"image": self.transform.apply(image, self._draw(path, image, rng))}

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
        path = self.files[index]
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
