"""The backends that ship with i2i_fast: the reference, the compiled extension and Triton.

They start empty; each operator family adds its implementations (backends.implement).
"""

from __future__ import annotations

import torch

from .. import extension
from . import triton_support
from .backends import Backend

EXTENSION_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _dtype_reason(x: torch.Tensor, backend: str) -> str:
    return f"x has dtype {x.dtype}; the {backend} backend takes float16/bfloat16/float32/float64"


class ReferenceBackend(Backend):
    """The plain-PyTorch definitions; runs anything, anywhere (slowly)."""

    name = "reference"
    description = "plain PyTorch definitions (i2i_fast.ops.reference), any device and dtype"

    def forward_ad_reason(self, op: str) -> str | None:
        return None  # plain PyTorch: autograd computes forward-mode derivatives too


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

    def unsupported_reasons(self, x: torch.Tensor) -> list[str]:
        # x.is_cpu / x.is_cuda: a bool, where x.device.type costs more than a kernel launch.
        on_device = x.is_cpu if self.device_type == "cpu" else (
            x.is_cuda if self.device_type == "cuda" else x.device.type == self.device_type)
        found = []
        if not on_device:
            found.append(f"x is on {x.device}; the {self.name} backend takes {self.device_type} "
                         "tensors")
        if x.dtype not in EXTENSION_DTYPES:
            found.append(_dtype_reason(x, self.name))
        return found


class TritonBackend(Backend):
    """The Triton kernels (i2i_fast/ops/<family>/triton.py): CUDA tensors, or CPU tensors in the
    Triton interpreter (TRITON_INTERPRET=1, for tests) when forced."""

    name = "triton"
    description = ("Triton kernels (i2i_fast/ops/<family>/triton.py), cuda tensors; cpu tensors "
                   "in the Triton interpreter when forced")

    def unavailable_reason(self) -> str | None:
        return triton_support.state().unavailable_reason

    def unsupported_reasons(self, x: torch.Tensor) -> list[str]:
        found = []
        why = triton_support.kernel_device_reason(x)
        if why is not None:
            found.append(why)
        if x.dtype not in EXTENSION_DTYPES:
            found.append(_dtype_reason(x, self.name))
        return found

    def automatic_reason(self, op: str, x: torch.Tensor) -> str | None:
        why = self.reason(op, x)
        if why is None and x.device.type == "cpu":
            return ("cpu tensors run in the Triton interpreter (numpy speed, for tests) only "
                    "when the triton backend is forced (use_backend('triton') or "
                    "I2I_FAST_BACKEND=triton)")
        return why
