"""Compile the Triton kernels of the latent_conv operators for a GPU, on a machine without one.

    python tests/triton_latent_conv_compile_check.py [--arch 90]

Runs the operators' host code on small CPU tensors and compiles each kernel launch it would make
for CUDA compute capability `arch` with the real Triton compiler (to PTX and cubin) instead of
running it (the machinery of tests/triton_compile_check.py). Covers latent_conv2d (zero and
reflect padding) and latent_conv_transpose2d (DRIT's 3x3 stride 2 and 1x1 layers), every dtype,
contiguous and channels-last outputs, forward and backward. Prints one JSON object per compiled
kernel variant, then a summary line; exits 1 if any compilation failed. Needs Triton's compiled
mode: TRITON_INTERPRET must be off. tests/test_latent_conv_transpose2d.py runs it in a subprocess.
"""

from __future__ import annotations

import os
import sys

os.environ["TRITON_INTERPRET"] = "0"

import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from triton_compile_check import family_main  # noqa: E402

DTYPES = (torch.float32, torch.bfloat16, torch.float16, torch.float64)
# (operator, C_x, C_z, C_out, H, W, k, stride, padding, padding_mode or output_padding)
CALLS = [("conv2d", 6, 8, 5, 9, 8, 4, 2, 1, "zeros"), ("conv2d", 6, 8, 5, 9, 8, 3, 1, 1, "reflect"),
         ("transpose2d", 6, 8, 5, 5, 7, 3, 2, 1, 1), ("transpose2d", 6, 8, 3, 6, 6, 1, 1, 0, 0)]


def cases():
    for dtype in DTYPES:
        for call in CALLS:
            for layout in ("contiguous", "channels_last"):
                yield (dtype, layout, *call)


def run_case(tk, case) -> None:
    dtype, layout, op, cx, cz, o, h, w, k, stride, padding, last = case
    x = torch.randn(2, cx, h, w).to(dtype)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    z = torch.randn(2, cz).to(dtype)
    shape = (o, cx + cz, k, k) if op == "conv2d" else (cx + cz, o, k, k)
    weight = torch.randn(shape).to(dtype)
    forward = tk._conv2d_forward if op == "conv2d" else tk._transpose2d_forward
    backward = tk._conv2d_backward if op == "conv2d" else tk._transpose2d_backward
    out = forward(x, z, weight, None, stride, padding, last)
    backward(torch.ones_like(out), x, z, weight, stride, padding, last, [True] * 4)


def main() -> int:
    return family_main(__doc__, "latent_conv", cases(), run_case)


if __name__ == "__main__":
    sys.exit(main())
