"""Where the Triton tests run (tests/test_triton_*.py): the interpreter on CPU tensors without a
GPU (tests/conftest.py sets TRITON_INTERPRET=1), CUDA tensors with one (marked `cuda`)."""

from __future__ import annotations

import pytest
import torch

from i2i_fast.ops import triton_support as ts

STATE = ts.state()
INTERPRETER = STATE.unavailable_reason is None and STATE.interpreter
ON_GPU = STATE.unavailable_reason is None and not STATE.interpreter and torch.cuda.is_available()

DEVICES = [
    pytest.param("cpu", id="interpreter", marks=pytest.mark.skipif(
        not INTERPRETER, reason=f"the Triton interpreter is off: {STATE.describe()}")),
    pytest.param("cuda", id="cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(
        not ON_GPU, reason=f"needs a CUDA GPU with compiled Triton: {STATE.describe()}")]),
]
needs_triton = pytest.mark.skipif(STATE.unavailable_reason is not None and not ON_GPU,
                                  reason=STATE.describe())
