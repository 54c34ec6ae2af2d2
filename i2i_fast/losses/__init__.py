"""Loss terms of the methods, on the fused operators of i2i_fast.ops."""

from .clustering import iic_joint, iic_loss
from .contrastive import KeyQueue, moco_loss
from .gan import discriminator_loss, generator_loss, sigmoid_bce_loss
from .latent import (
    gaussian_nll,
    kl_standard_normal,
    latent_regression,
    mode_seeking,
    reparameterize,
)
from .reconstruction import l1

__all__ = ["KeyQueue", "discriminator_loss", "gaussian_nll", "generator_loss", "iic_joint",
           "iic_loss", "kl_standard_normal", "l1", "latent_regression", "mode_seeking",
           "moco_loss", "reparameterize", "sigmoid_bce_loss"]
