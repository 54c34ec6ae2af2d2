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


def grid(rows: Sequence[Sequence[torch.Tensor | None]], gap: int = 2, fill: int = 255) -> np.ndarray:
    """Rows of (3, H, W) images as one (H', W', 3) uint8 picture; None leaves a cell blank.

    Every image must have the same size; rows may have different lengths.
    """
    cells = [c for row in rows for c in row if c is not None]
    if not cells:
        raise ValueError("grid: rows: expected at least one image, got none")
    h, w = cells[0].shape[-2:]
    for c in cells:
        if tuple(c.shape) != (3, h, w):
            raise ValueError(f"grid: expected every image of shape (3, {h}, {w}), got "
                             f"{tuple(c.shape)}")
    columns = max(len(row) for row in rows)
    sheet = np.full(((h + gap) * len(rows) - gap, (w + gap) * columns - gap, 3), fill, np.uint8)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            if image is not None:
                y, x = r * (h + gap), c * (w + gap)
                sheet[y:y + h, x:x + w] = to_uint8(image)
    return sheet


def _wrapped(draw: ImageDraw.ImageDraw, text: str, width: int, font) -> list[str]:
    """`text` in lines no wider than `width` pixels (words are not split)."""
    lines: list[str] = []
    for word in text.split():
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and draw.textlength(candidate, font=font) <= width:
            lines[-1] = candidate
        else:
            lines.append(word)
    return lines or [""]


def labelled_grid(rows: Sequence[Sequence[torch.Tensor | None]], row_labels: Sequence[str],
                  column_labels: Sequence[str], gap: int = 2, fill: int = 255) -> np.ndarray:
    """``grid(rows)`` with a label left of every row and above every column (words wrapped to
    the column's width)."""
    if len(row_labels) != len(rows):
        raise ValueError(f"labelled_grid: row_labels: expected {len(rows)}, got "
                         f"{len(row_labels)}")
    columns = max(len(row) for row in rows)
    if len(column_labels) != columns:
        raise ValueError(f"labelled_grid: column_labels: expected {columns}, got "
                         f"{len(column_labels)}")
    body = grid(rows, gap, fill)
    h, w = next(c for row in rows for c in row if c is not None).shape[-2:]
    font = ImageFont.load_default()
    scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line_height = int(scratch.textbbox((0, 0), "Ag", font=font)[3]) + 2
    wrapped = [_wrapped(scratch, label, w - 4, font) for label in column_labels]
    top = max(len(lines) for lines in wrapped) * line_height + 4
    left = int(max(scratch.textlength(label, font=font) for label in row_labels)) + 8
    sheet = Image.new("RGB", (left + body.shape[1], top + body.shape[0]), (fill,) * 3)
    sheet.paste(Image.fromarray(body), (left, top))
    draw = ImageDraw.Draw(sheet)
    for c, lines in enumerate(wrapped):
        for k, line in enumerate(lines):
            draw.text((left + c * (w + gap), 2 + k * line_height), line, fill=(0, 0, 0),
                      font=font)
    for r, label in enumerate(row_labels):
        y = top + r * (h + gap) + (h - line_height) // 2
        draw.text((4, y), label, fill=(0, 0, 0), font=font)
    return np.asarray(sheet)


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


def load_image(path: str | os.PathLike, size: int, what: str = "--input") -> torch.Tensor:
    """An image file as (3, size, size) float32 in [-1, 1]: shorter side resized to `size`
    (bilinear), centre crop (MUNIT's evaluation transform)."""
    try:
        image = read_image(Path(path))
    except OSError as error:
        raise TrainError(f"{what}: {error}") from error
    transform = preset("munit", size, augment=False)
    return transform(image, np.random.default_rng(0))  # deterministic: no random parameter
