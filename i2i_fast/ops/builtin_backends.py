"""The backends that ship with i2i_fast: the reference and the compiled extension."""

from __future__ import annotations

import torch

from .. import extension
from . import reference
from .backends import Backend

CPU_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


class ReferenceBackend(Backend):
    """The plain-PyTorch definitions; runs anything, anywhere (slowly)."""

    name = "reference"
    description = "plain PyTorch (i2i_fast.ops.reference), any device and dtype"

    def __init__(self) -> None:
        super().__init__()
        self.ops = {
            "adain": reference.adain,
            "instance_norm": reference.instance_norm,
            "layer_norm": reference.layer_norm,
        }


class CpuBackend(Backend):
    """The fused C++ kernels of the compiled extension, on CPU tensors."""

    name = "cpu"
    description = "fused C++ kernels (csrc/cpu), CPU tensors"

    def __init__(self) -> None:
        super().__init__()
        if extension.state().loaded:
            ops = torch.ops.i2i_fast
            self.ops = {
                "adain": ops.adain.default,
                "instance_norm": ops.instance_norm.default,
                "layer_norm": ops.layer_norm.default,
            }

    def unavailable_reason(self) -> str | None:
        st = extension.state()
        if not st.loaded:
            return f"the compiled extension failed to build or load: {st.error}"
        return None

    def unsupported_reason(self, x: torch.Tensor) -> str | None:
        if x.device.type != "cpu":
            return f"x is on {x.device}; the cpu backend takes CPU tensors"
        if x.dtype not in CPU_DTYPES:
            return f"x has dtype {x.dtype}; the cpu backend takes float16/bfloat16/float32/float64"
        return None
