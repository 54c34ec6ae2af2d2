"""Images in and out: reading inputs for translation, grids, PNG files.

Image tensors are (3, H, W) float in [-1, 1] (the convention of i2i_fast.data and of every
method); files are 8-bit RGB.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..data.folders import list_images, read_image
from ..data.transforms import preset
from .errors import TrainError


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [-1, 1] (any float dtype, any device) -> (H, W, 3) uint8."""
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"to_uint8: image: expected shape (3, H, W), got {tuple(image.shape)}")
    pixels = ((image.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return pixels.permute(1, 2, 0).cpu().numpy()


def grid(rows: Sequence[Sequence[torch.Tensor | None]], gap: int = 2, fill: int = 255,
         column_labels: Sequence[str] | None = None,
         row_labels: Sequence[str] | None = None) -> np.ndarray:
    """Rows of (3, H, W) images as one (H', W', 3) uint8 picture; None leaves a cell blank.

    Rows may have different lengths; images of different sizes are centred in cells of the
    largest height and width. column_labels (one per column) are written above the columns and
    row_labels (one per row) left of the rows, in black.
    """
    cells = [c for row in rows for c in row if c is not None]
    if not cells:
        raise ValueError("grid: rows: expected at least one image, got none")
    for c in cells:
        if c.dim() != 3 or c.shape[0] != 3:
            raise ValueError(f"grid: expected every image of shape (3, H, W), got {tuple(c.shape)}")
    h = max(c.shape[1] for c in cells)
    w = max(c.shape[2] for c in cells)
    columns = max(len(row) for row in rows)
    for name, labels, count in (("column_labels", column_labels, columns),
                                ("row_labels", row_labels, len(rows))):
        if labels is not None and len(labels) != count:
            raise ValueError(f"grid: {name}: expected {count}, got {len(labels)}")
    font = ImageFont.load_default() if column_labels or row_labels else None
    top = _label_size(column_labels, font)[1] + gap if column_labels else 0
    left = _label_size(row_labels, font)[0] + gap if row_labels else 0
    sheet = np.full((top + (h + gap) * len(rows) - gap, left + (w + gap) * columns - gap, 3),
                    fill, np.uint8)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            if image is not None:
                y = top + r * (h + gap) + (h - image.shape[1]) // 2
                x = left + c * (w + gap) + (w - image.shape[2]) // 2
                sheet[y:y + image.shape[1], x:x + image.shape[2]] = to_uint8(image)
    if font is None:
        return sheet
    picture = Image.fromarray(sheet)
    draw = ImageDraw.Draw(picture)
    for c, label in enumerate(column_labels or ()):
        draw.text((left + c * (w + gap) + w // 2, top // 2), label, fill=(0, 0, 0), font=font,
                  anchor="mm")
    for r, label in enumerate(row_labels or ()):
        draw.text((0, top + r * (h + gap) + h // 2), label, fill=(0, 0, 0), font=font,
                  anchor="lm")
    return np.asarray(picture).copy()


def _label_size(labels: Sequence[str], font) -> tuple[int, int]:
    """(width, height) of the largest of `labels` written in `font`."""
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    boxes = [draw.textbbox((0, 0), label, font=font) for label in labels] or [(0, 0, 0, 0)]
    return max(b[2] - b[0] for b in boxes), max(b[3] - b[1] for b in boxes) + 2


def save_png(pixels: np.ndarray, path: str | os.PathLike) -> Path:
    """Write an (H, W, 3) uint8 array as a PNG file (folders created as needed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="PNG")
    return path


def input_paths(path: str | os.PathLike, what: str = "--input") -> list[Path]:
    """An image file, or the image files of a folder (recursive, sorted)."""
    path = Path(path)
    if path.is_dir():
        found = list_images(path)
        if not found:
            raise TrainError(f"{what} {path}: expected image files (png, jpg, jpeg, bmp, webp) in "
                             f"the folder, found none")
        return found
    if not path.exists():
        raise TrainError(f"{what} {path}: no such file or folder")
    return [path]


def read_input(path: str | os.PathLike, what: str = "--input") -> torch.Tensor:
    """An image file as (3, H, W) float32 in [-1, 1], at its own size."""
    try:
        image = read_image(Path(path))
    except OSError as error:
        raise TrainError(f"{what}: {error}") from error
    pixels = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy())
    return pixels.permute(2, 0, 1).float() / 127.5 - 1


def centre_crop(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The centred height x width part of a (3, H, W) image."""
    top = (image.shape[1] - height) // 2
    left = (image.shape[2] - width) // 2
    return image[:, top:top + height, left:left + width]


def load_image(path: str | os.PathLike, size: int, what: str = "--input") -> torch.Tensor:
    """An image file as (3, size, size) float32 in [-1, 1]: shorter side resized to `size`
    (bilinear), centre crop (MUNIT's evaluation transform)."""
    try:
        image = read_image(Path(path))
    except OSError as error:
        raise TrainError(f"{what}: {error}") from error
    transform = preset("munit", size, augment=False)
    return transform(image, np.random.default_rng(0))  # deterministic: no random parameter
