"""Compile the Triton kernels of max pooling (the resampling family) for a GPU, on a machine
without one.

    python tests/triton_resampling_compile_check.py [--arch 90]

Runs the operators' host code on small CPU tensors and compiles each kernel launch it would make
for CUDA compute capability `arch` with the real Triton compiler (to PTX and cubin) instead of
running it (the machinery of tests/triton_compile_check.py). Covers every dtype, contiguous and
channels-last x, factor 2 (TUNIT's) and 3, and 17 (int32 window positions). Prints one JSON
object per compiled kernel variant, then a summary line; exits 1 if any compilation failed.
Needs Triton's compiled mode: TRITON_INTERPRET must be off. tests/test_triton_resampling.py runs
it in a subprocess.
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


def cases():
    for dtype in DTYPES:
        for factor, hw in ((2, (8, 8)), (3, (7, 10))):
            for layout in ("contiguous", "channels_last"):
                yield dtype, factor, hw, layout
    yield torch.float32, 17, (17, 35), "contiguous"


def run_case(tk, case) -> None:
    dtype, factor, (h, w), layout = case
    x = torch.randn(2, 3, h, w).to(dtype)
    if layout == "channels_last":
        x = x.to(memory_format=torch.channels_last)
    out, index = tk._block_max_forward(x, factor)
    tk._block_max_scatter(torch.ones_like(out), index, factor, h, w)
    tk._block_max_gather(x, index, factor, int(out.shape[2]), int(out.shape[3]))


def main() -> int:
    return family_main(__doc__, "resampling", cases(), run_case)


if __name__ == "__main__":
    sys.exit(main())
