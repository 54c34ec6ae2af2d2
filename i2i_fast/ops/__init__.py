"""Public functional API of the fused operators, and the choice of backend.

    import i2i_fast.ops as ops
    y = ops.adain(x, weight, bias, activation="relu")
    with ops.use_backend("reference"):
        y_ref = ops.adain(x, weight, bias, activation="relu")

Importing this module builds the compiled kernels on first use (cached afterwards; see
i2i_fast.extension; loading a cached build takes about 10 ms), registers the backends, and lets
each operator family add its implementations to them. One subpackage per family: its public
functions (__init__), its reference definitions (reference.py), its argument checks (checks.py),
its fake implementations (fake.py) and, where it has Triton kernels, triton_kernels.py (the
kernels) and triton.py (their launches and operators). CONTRIBUTING.md: adding a family.
"""

from __future__ import annotations

from .. import extension
from .backends import (
    BACKEND_ENV,
    Backend,
    BackendError,
    backend_names,
    chosen_backend,
    forced_backend,
    get_backend,
    implement,
    register_backend,
    select,
    use_backend,
)
from .builtin_backends import ExtensionBackend, ReferenceBackend, TritonBackend

extension.load()
# Lower numbers are tried first: the CUDA kernels, then Triton (the second GPU backend).
register_backend(ExtensionBackend("cuda"), priority=10)
register_backend(TritonBackend(), priority=20)
register_backend(ExtensionBackend("cpu"), priority=30)
register_backend(ReferenceBackend(), priority=100)

from . import filter_response_norm as _frn_family  # noqa: E402 - families register after backends
from . import gan_loss as _gan_loss_family  # noqa: E402
from . import gaussian_nll as _gaussian_nll_family  # noqa: E402
from . import latent_conv as _latent_conv_family  # noqa: E402
from . import normalization  # noqa: E402
from . import output_conv as _output_conv_family  # noqa: E402
from . import reference  # noqa: E402
from . import resampling  # noqa: E402
from .filter_response_norm import filter_response_norm  # noqa: E402 - shadows its subpackage
from .gan_loss import gan_loss, r1_penalty  # noqa: E402 - the function shadows its subpackage
from .gaussian_nll import gaussian_kl, gaussian_nll  # noqa: E402
from .latent_conv import latent_conv2d, latent_conv_transpose2d  # noqa: E402
from .normalization import adain, batch_norm, instance_norm, layer_norm  # noqa: E402
from .output_conv import output_conv2d  # noqa: E402
from .resampling import avg_pool, max_pool, reflection_pad, upsample_nearest  # noqa: E402

OPS = (normalization.OPS + _frn_family.OPS + _gan_loss_family.OPS + _gaussian_nll_family.OPS
       + resampling.OPS
       + _latent_conv_family.OPS + _output_conv_family.OPS)

__all__ = [
    "BACKEND_ENV",
    "Backend",
    "BackendError",
    "OPS",
    "adain",
    "avg_pool",
    "backend_names",
    "batch_norm",
    "chosen_backend",
    "filter_response_norm",
    "forced_backend",
    "gan_loss",
    "gaussian_kl",
    "gaussian_nll",
    "get_backend",
    "implement",
    "instance_norm",
    "latent_conv2d",
    "latent_conv_transpose2d",
    "layer_norm",
    "max_pool",
    "output_conv2d",
    "r1_penalty",
    "reference",
    "reflection_pad",
    "register_backend",
    "select",
    "upsample_nearest",
    "use_backend",
]
