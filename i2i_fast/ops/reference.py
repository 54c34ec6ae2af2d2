"""All reference definitions in one place (``i2i_fast.ops.reference.adain`` etc.).

The definitions live with their operator family (``i2i_fast/ops/<family>/reference.py``).
"""

from __future__ import annotations

from .filter_response_norm.reference import filter_response_norm
from .gan_loss.reference import gan_loss, r1_penalty
from .gaussian_nll.reference import gaussian_kl, gaussian_nll
from .latent_conv.reference import latent_conv2d, latent_conv_transpose2d
from .normalization.reference import adain, batch_norm, instance_norm, layer_norm
from .output_conv.reference import output_conv2d
from .resampling.reference import avg_pool, max_pool, reflection_pad, upsample_nearest

__all__ = [
    "adain", "avg_pool", "batch_norm", "filter_response_norm", "gan_loss", "gaussian_kl",
    "gaussian_nll", "instance_norm", "latent_conv2d", "latent_conv_transpose2d", "layer_norm",
    "max_pool", "output_conv2d", "r1_penalty",
    "reflection_pad", "upsample_nearest",
]
