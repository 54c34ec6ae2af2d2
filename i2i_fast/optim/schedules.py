"""Learning-rate (and loss-weight) schedules as the official implementations define them.

Each schedule is a pure function of the iteration (0-based: the factor used by iteration
`step`), so a resumed run gets exactly the rates of a straight one, whatever the official code
stepped per epoch. ``lr_scheduler(optimizer, factor)`` turns one into the LambdaLR a method
registers with ``add_optimizer`` (stepped once per iteration, after it).

- ``step_decay``: MUNIT's StepLR stepped *before* each iteration: gamma ** ((step + 1) // step_size).
- ``linear_decay``: constant, then linear to zero (StarGAN v2's lambda_ds over ds_iter iterations).
- ``linear_decay_by_epoch``: the pix2pix/CycleGAN "lambda" rule of DRIT and BicycleGAN, stepped
  per epoch: 1 - max(0, epoch + epoch_count - n_constant) / (n_decay + 1), with the epoch of an
  iteration = step // iterations_per_epoch.
- ``constant``: 1 (TUNIT).
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def _check(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")


def constant(step: int) -> float:
    """1 at every iteration."""
    return 1.0


def step_decay(step: int, step_size: int, gamma: float) -> float:
    """MUNIT (train.py steps its StepLR before each iteration): iteration `step` runs at
    lr · gamma ** ((step + 1) // step_size)."""
    _check("step_decay: step_size", step_size, 1)
    return gamma ** ((step + 1) // step_size)


def linear_decay(step: int, start: int, length: int) -> float:
    """1 until iteration `start`, then linearly to 0 over `length` iterations, 0 after:
    max(0, 1 - max(0, step - start) / length). StarGAN v2's lambda_ds is
    initial · linear_decay(step, 0, ds_iter)."""
    _check("linear_decay: start", start, 0)
    _check("linear_decay: length", length, 1)
    return max(0.0, 1.0 - max(0, step - start) / length)


def linear_decay_by_epoch(step: int, iterations_per_epoch: int, n_constant: int, n_decay: int,
                          epoch_count: int = 0) -> float:
    """The "lambda" policy of DRIT and BicycleGAN (a LambdaLR stepped once per epoch):
    1 - max(0, epoch + epoch_count - n_constant) / (n_decay + 1), where the epoch of iteration
    `step` is step // iterations_per_epoch. DRIT: n_constant = n_ep_decay (600), n_decay =
    n_ep - n_ep_decay (600), epoch_count 0; BicycleGAN: niter, niter_decay, epoch_count (1 by
    default, its epochs counting from 1)."""
    _check("linear_decay_by_epoch: iterations_per_epoch", iterations_per_epoch, 1)
    _check("linear_decay_by_epoch: n_constant", n_constant, 0)
    _check("linear_decay_by_epoch: n_decay", n_decay, 0)
    epoch = step // iterations_per_epoch
    return 1.0 - max(0, epoch + epoch_count - n_constant) / float(n_decay + 1)


def lr_scheduler(optimizer: torch.optim.Optimizer, factor: Callable[[int], float]
                 ) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR giving iteration `step` the rate base_lr · factor(step), when it is stepped once
    after every iteration (its state is the step count, saved and resumed with the optimizer's)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
