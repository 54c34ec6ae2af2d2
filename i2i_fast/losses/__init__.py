"""Loss terms of the methods, on the fused operators of i2i_fast.ops."""

from .gan import discriminator_loss, generator_loss
from .reconstruction import l1

__all__ = ["discriminator_loss", "generator_loss", "l1"]
