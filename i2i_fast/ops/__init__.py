"""Public functional API of the fused operators, and the choice of backend.

    import i2i_fast.ops as ops
    y = ops.adain(x, weight, bias, activation="relu")
    with ops.use_backend("reference"):
        y_ref = ops.adain(x, weight, bias, activation="relu")

Importing this module builds the compiled kernels on first use (cached afterwards; see
i2i_fast.extension) and registers the backends.
"""

from __future__ import annotations

from .. import extension
from . import reference
from .backends import (
    BACKEND_ENV,
    Backend,
    BackendError,
    backend_names,
    chosen_backend,
    forced_backend,
    get_backend,
    register_backend,
    select,
    use_backend,
)
from .builtin_backends import CpuBackend, ReferenceBackend
from .normalization import adain, instance_norm, layer_norm

OPS = ("adain", "instance_norm", "layer_norm")

if extension.load().loaded:
    from . import fake

    fake.register()

register_backend(CpuBackend(), priority=30)
register_backend(ReferenceBackend(), priority=100)

__all__ = [
    "BACKEND_ENV",
    "Backend",
    "BackendError",
    "OPS",
    "adain",
    "backend_names",
    "chosen_backend",
    "forced_backend",
    "get_backend",
    "instance_norm",
    "layer_norm",
    "reference",
    "register_backend",
    "select",
    "use_backend",
]
