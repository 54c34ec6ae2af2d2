"""Triton device functions (``@triton.jit``) that the kernels of several operator families call.

Imported only where Triton kernels can run (``triton_support.state()``): by the families'
``triton_kernels.py``.
"""

import triton
import triton.language as tl


@triton.jit
def scalar(v, DTYPE: tl.constexpr):
    """A scalar kernel argument (an int or a float, or a specialised constant) as a DTYPE value."""
    return (tl.zeros([], tl.float64) + v).to(DTYPE)


@triton.jit
def index(i, LONG_INDEX: tl.constexpr):
    """Offsets `i` in 64 bits when LONG_INDEX (tensors of 2**31 elements or more), else as they
    are."""
    if LONG_INDEX:
        i = i.to(tl.int64)
    return i
