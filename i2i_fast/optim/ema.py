"""Exponential moving averages of networks (the "EMA" copies that sample and evaluate).

An average is a second instance of a network (a child module of the method, so it is saved and
resumed with the method's state dict) whose parameters follow the trained network's:

    average ← lerp(network, average, beta) = network + beta · (average − network)

after each iteration from ``start`` on, for every parameter at once (one foreach call). How the
official codes differ, and the settings that reproduce each:

- StarGAN v2: beta 0.999 from the first iteration; the copies are taken *before* the networks'
  He initialisation (so they start from PyTorch's default initialisation); parameters only.
  ``MovingAverage(0.999)`` on copies the method makes before initialising.
- TUNIT: beta 0.999; the generator's average starts at iteration ``ema_start`` as a copy of the
  generator; buffers (BatchNorm / AdaIN running statistics) are copied at the end of every epoch.
  ``MovingAverage(0.999, start=ema_start, copy_at_start=True)`` and ``copy_buffers()`` at epoch
  ends.

Nothing here holds state of its own: what an update does is a function of the iteration, so a
resumed run continues exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def _parameters(network: nn.Module, average: nn.Module
                ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    params = [p.detach() for p in network.parameters()]
    averages = [p.detach() for p in average.parameters()]
    if len(params) != len(averages) or any(p.shape != a.shape for p, a in zip(params, averages)):
        raise ValueError(f"moving average: the network has {len(params)} parameters, its "
                         f"average {len(averages)} (or their shapes differ): expected two "
                         f"instances of the same architecture")
    return params, averages


@torch.no_grad()
def lerp_parameters(network: nn.Module, average: nn.Module, beta: float) -> None:
    """average ← lerp(network, average, beta) for every parameter (torch.lerp(param, avg, beta),
    the official StarGAN v2 / TUNIT formula and rounding)."""
    params, averages = _parameters(network, average)
    torch._foreach_copy_(averages, torch._foreach_lerp(params, averages, beta))


@torch.no_grad()
def copy_parameters(network: nn.Module, average: nn.Module) -> None:
    """average ← network, parameter by parameter."""
    params, averages = _parameters(network, average)
    torch._foreach_copy_(averages, params)


@torch.no_grad()
def copy_buffers(network: nn.Module, average: nn.Module) -> None:
    """Every buffer of the average ← the network's (running statistics)."""
    buffers = dict(network.named_buffers())
    for name, buffer in average.named_buffers():
        if name not in buffers:
            raise ValueError(f"moving average: buffer {name!r} of the average is not in the "
                             f"network")
        buffer.copy_(buffers[name])


class MovingAverage:
    """The update rule of one or several averaged networks (see the module docstring).

    beta: the weight of the old average (0.999 in StarGAN v2 and TUNIT).
    start: the first iteration (0-based) that updates the averages; earlier ones leave them.
    copy_at_start: at iteration ``start`` the averages become copies of the networks (parameters
        and buffers) instead of being averaged.
    """

    def __init__(self, beta: float, start: int = 0, copy_at_start: bool = False) -> None:
        if not (isinstance(beta, (int, float)) and 0.0 <= beta <= 1.0):
            raise ValueError(f"moving average: beta: expected a value in [0, 1], got {beta!r}")
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ValueError(f"moving average: start: expected an int >= 0, got {start!r}")
        self.beta = float(beta)
        self.start = start
        self.copy_at_start = bool(copy_at_start)

    def update(self, pairs: Sequence[tuple[nn.Module, nn.Module]], step: int) -> None:
        """After iteration `step`: average each (network, average) pair as the settings say."""
        if step < self.start:
            return
        for network, average in pairs:
            if self.copy_at_start and step == self.start:
                copy_parameters(network, average)
                copy_buffers(network, average)
            else:
                lerp_parameters(network, average, self.beta)

    def __repr__(self) -> str:
        return (f"MovingAverage(beta={self.beta}, start={self.start}, "
                f"copy_at_start={self.copy_at_start})")
