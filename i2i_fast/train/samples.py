"""Sample grids during training: a fixed batch, fixed random styles, the same picture each time.

The batch is items 0, s, 2s, ... of the training set (epoch 0: with augmentation, the same
augmented images every time, since items are seeded by their keys). The styles come from a
generator seeded with the run's seed and recreated for every grid, so grids at different steps
differ only by what the networks learned. Drawing a grid never moves the training's random
generators (they are forked around it).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import default_collate

from ..methods.base import Method
from .images import grid


class SampleSheet:
    """Renders ``method.sample_visuals`` on the fixed batch as one grid.

    Rows are the batch's items; columns are the named visuals in the order the method returns
    them (``columns`` after the first render).
    """

    def __init__(self, dataset, count: int, seed: int, device: torch.device, to_device):
        count = min(count, len(dataset))
        stride = max(1, len(dataset) // count)
        items = [dataset[(0, i * stride)] for i in range(count)]
        self.batch = {k: to_device(v) if isinstance(v, torch.Tensor) else v
                      for k, v in default_collate(items).items()}
        self.count = count
        self.seed = seed
        self.device = device
        self.columns: list[str] = []

    def render(self, method: Method) -> np.ndarray:
        """An (H, W, 3) uint8 grid of the method's visuals for the fixed batch."""
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda), method.evaluating():
            generator = torch.Generator(device=self.device).manual_seed(self.seed)
            visuals = method.sample_visuals(self.batch, generator=generator)
        if not isinstance(visuals, dict) or not visuals:
            raise TypeError(f"{method.name}.sample_visuals: expected a non-empty dict of image "
                            f"batches, got {type(visuals).__name__}")
        for name, images in visuals.items():
            if not (isinstance(images, torch.Tensor) and images.dim() == 4
                    and images.shape[0] == self.count and images.shape[1] == 3):
                shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
                raise TypeError(f"{method.name}.sample_visuals: {name!r}: expected a batch "
                                f"({self.count}, 3, H, W), got {shape}")
        self.columns = list(visuals)
        return grid([[images[i] for images in visuals.values()] for i in range(self.count)])
