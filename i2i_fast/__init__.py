"""i2i_fast: fused kernels and a training workflow for multimodal image-to-image translation GANs.

Submodules load on first access, so `import i2i_fast` stays cheap; `i2i_fast.ops` builds the
compiled kernels on first use.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = ("bench", "cli", "config", "data", "extension", "info", "methods", "nn", "ops", "train", "losses", "metrics")


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'i2i_fast' has no attribute {name!r}")
