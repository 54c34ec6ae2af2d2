"""Compile the Triton kernels of filter response normalization for a GPU, on a machine without one.

    python tests/triton_filter_response_norm_compile_check.py [--arch 90]

Runs the operators' host code on small CPU tensors and compiles each kernel launch it would make
for CUDA compute capability `arch` with the real Triton compiler (to PTX and cubin) instead of
running it (the machinery of tests/triton_compile_check.py). Covers every dtype, float32
parameters with a 16-bit x, contiguous and channels-last x, spatial sizes below, at and above
one tile. Prints one JSON object per compiled kernel variant, then a summary line; exits 1 if any
compilation failed. Needs Triton's compiled mode: TRITON_INTERPRET must be off.
tests/test_triton_filter_response_norm.py runs it in a subprocess.
"""

from __future__ import annotations

import os
import sys

os.environ["TRITON_INTERPRET"] = "0"

import torch  # noqa: E402

TESTS = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [TESTS, os.path.dirname(TESTS)]  # the helpers, and the i2i_fast of this checkout
from triton_compile_check import family_main  # noqa: E402

DTYPES = (torch.float32, torch.bfloat16, torch.float16, torch.float64)
SPATIAL = ((4, 4), (5, 7), (128, 128))  # TUNIT's smallest and largest, and an odd one


def cases():
    for dtype in DTYPES:
        for hw in SPATIAL:
            for layout in ("contiguous", "channels_last"):
                yield dtype, dtype, hw, layout
        if dtype in (torch.bfloat16, torch.float16):
            yield dtype, torch.float32, (8, 8), "contiguous"


def run_case(tk, case) -> None:
    dtype, param_dtype, (h, w), layout = case
    x = torch.randn(2, 3, h, w).to(dtype)
    if layout == "channels_last":
        x = x.to(memory_format=torch.channels_last)
    weight, bias, tau = (torch.randn(3).to(param_dtype) for _ in range(3))
    y, rstd = tk._filter_response_norm_forward(x, weight, bias, tau, 1e-6)
    tk._filter_response_norm_backward(torch.ones_like(x), x, weight, bias, tau, rstd, 1e-6)


def main() -> int:
    return family_main(__doc__, "filter_response_norm", cases(), run_case)


if __name__ == "__main__":
    sys.exit(main())
