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
from PIL import Image

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
