"""Contact sheets: a grid of a dataset's items, to look at a dataset before training on it."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image


def _picture_keys(item: dict[str, torch.Tensor]) -> list[str]:
    """Keys of the item's images (3, H, W) and masks (1, H, W), in item order."""
    return [k for k, v in item.items() if isinstance(v, torch.Tensor) and v.dim() == 3 and v.shape[0] in (1, 3)]


def contact_sheet(dataset, indices: Sequence[int] = range(8), gap: int = 2) -> Image.Image:
    """One column per item (``dataset[i]`` for i in indices), one row per picture of the item
    (images as they are, masks white on black). Every picture must have the same size."""
    items = [dataset[i] for i in indices]
    if not items:
        raise ValueError("contact_sheet: indices: expected at least one index, got none")
    keys = _picture_keys(items[0])
    if not keys:
        raise ValueError(f"contact_sheet: the dataset's items hold no images: keys {list(items[0])}")
    h, w = items[0][keys[0]].shape[-2:]
    sheet = np.full(((h + gap) * len(keys) - gap, (w + gap) * len(items) - gap, 3), 128, np.uint8)
    for col, item in enumerate(items):
        for row, key in enumerate(keys):
            t = item[key].float()
            t = t.expand(3, -1, -1) * 2 - 1 if t.shape[0] == 1 else t  # masks {0,1} -> [-1,1]
            pixels = ((t.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0)
            y, x = row * (h + gap), col * (w + gap)
            sheet[y : y + h, x : x + w] = pixels.numpy()
    return Image.fromarray(sheet)


def save_contact_sheet(
    dataset, path: str | os.PathLike, indices: Sequence[int] = range(8)
) -> None:
    """Write ``contact_sheet(dataset, indices)`` as an image file (format from the extension)."""
    contact_sheet(dataset, indices).save(path)
