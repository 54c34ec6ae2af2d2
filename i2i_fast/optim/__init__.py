"""Optimisation pieces the methods share: learning-rate and loss-weight schedules, moving
averages of networks (like torch.optim.swa_utils, they follow the optimizer's updates)."""

from .ema import MovingAverage, copy_buffers, copy_parameters, lerp_parameters
from .schedules import (
    constant,
    linear_decay,
    linear_decay_by_epoch,
    lr_scheduler,
    step_decay,
)

__all__ = ["MovingAverage", "constant", "copy_buffers", "copy_parameters", "lerp_parameters",
           "linear_decay", "linear_decay_by_epoch", "lr_scheduler", "step_decay"]
