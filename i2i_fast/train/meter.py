"""The losses of the steps since the last log, summed where the method computed them.

A method's ``train_step`` returns its losses as Python floats or as 0-dim tensors. Tensors stay on
their device and are summed there: reading a CUDA value waits for the GPU, and doing it every
step would keep the host from queueing the next step while the GPU works. The sums are read in one
transfer when the trainer logs or checks them.
"""

from __future__ import annotations

from typing import Any

import torch


def as_floats(values: dict[str, Any]) -> dict[str, float]:
    """Losses (floats or one-element tensors) as floats, the tensors read in one transfer."""
    tensors = [name for name, v in values.items() if isinstance(v, torch.Tensor)]
    read = {}
    if tensors:
        stacked = torch.stack([values[n].detach().float().reshape(()) for n in tensors])
        read = dict(zip(tensors, stacked.tolist()))
    return {name: read[name] if name in read else float(v) for name, v in values.items()}


class LossMeter:
    """Sums of each loss since ``reset`` (``first_step`` is the first step summed)."""

    def __init__(self, owner: str, first_step: int = 1):
        self.owner = owner
        self.reset(first_step)

    def reset(self, first_step: int) -> None:
        self.sums: dict[str, Any] = {}
        self.counts: dict[str, int] = {}  # steps that computed each loss
        self.count = 0
        self.first_step = first_step

    def add(self, losses: Any) -> None:
        """One step's losses: a dict of floats or one-element tensors."""
        if not isinstance(losses, dict):
            raise TypeError(f"{self.owner}.train_step: expected a dict of losses, got "
                            f"{type(losses).__name__}")
        for name, value in losses.items():
            if isinstance(value, torch.Tensor):
                if value.numel() != 1:
                    raise TypeError(f"{self.owner}.train_step: loss {name!r}: expected a float "
                                    f"or a one-element tensor, got shape {tuple(value.shape)}")
                value = value.detach().float().reshape(())
            elif not isinstance(value, (int, float)) or isinstance(value, bool):
                raise TypeError(f"{self.owner}.train_step: loss {name!r}: expected a float or a "
                                f"one-element tensor, got {type(value).__name__}")
            self.sums[name] = self.sums[name] + value if name in self.sums else value
            self.counts[name] = self.counts.get(name, 0) + 1
        self.count += 1

    def means(self) -> dict[str, float]:
        """Mean of each loss over the steps that computed it (DRIT's generator losses come every
        d_iter-th step only); empty before the first step."""
        return {name: total / self.counts[name] for name, total in as_floats(self.sums).items()}
