"""The backends that ship with i2i_fast: the reference and the compiled extension.

They start empty; each operator family adds its implementations (backends.implement).
"""

from __future__ import annotations

import torch

from .. import extension
from .backends import Backend

EXTENSION_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


class ReferenceBackend(Backend):
    """The plain-PyTorch definitions; runs anything, anywhere (slowly)."""

    name = "reference"
    description = "plain PyTorch definitions (i2i_fast.ops.reference), any device and dtype"


class ExtensionBackend(Backend):
    """The fused kernels of the compiled extension, for tensors on one device type.

    "cpu": the C++ kernels (csrc/*/cpu.cpp). "cuda": the CUDA kernels (csrc/*/cuda.cu), which
    also need the library to have been built with CUDA and a visible GPU.
    """

    def __init__(self, device_type: str) -> None:
        super().__init__()
        self.device_type = device_type
        self.name = device_type
        self.description = f"fused kernels of the compiled extension, {device_type} tensors"
        # Computed once: neither the loaded library nor the visible GPUs change in a process, and
        # this is consulted on every call (torch.cuda.is_available() alone costs microseconds).
        self._unavailable: tuple[str | None] | None = None

    def unavailable_reason(self) -> str | None:
        if self._unavailable is None:
            self._unavailable = (self._compute_unavailable_reason(),)
        return self._unavailable[0]

    def _compute_unavailable_reason(self) -> str | None:
        st = extension.state()
        if not st.loaded:
            return f"the compiled extension failed to build or load: {st.error}"
        if self.device_type == "cuda":
            if not st.cuda_built:
                return f"the extension was not built with CUDA: {st.cuda_reason}"
            if not torch.cuda.is_available():
                return "no CUDA device (torch.cuda.is_available() is False)"
        return None

    def unsupported_reason(self, x: torch.Tensor) -> str | None:
        if x.device.type != self.device_type:
            return f"x is on {x.device}; the {self.name} backend takes {self.device_type} tensors"
        if x.dtype not in EXTENSION_DTYPES:
            return (f"x has dtype {x.dtype}; the {self.name} backend takes "
                    "float16/bfloat16/float32/float64")
        return None
