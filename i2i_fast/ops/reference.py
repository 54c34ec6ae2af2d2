"""All reference definitions in one place (``i2i_fast.ops.reference.adain`` etc.).

The definitions live with their operator family (``i2i_fast/ops/<family>/reference.py``).
"""

from __future__ import annotations

from .normalization.reference import adain, instance_norm, layer_norm

__all__ = ["adain", "instance_norm", "layer_norm"]
