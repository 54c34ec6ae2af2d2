"""Compile the Triton kernels of the Gaussian latent terms for a GPU, on a machine without one.

    python tests/triton_gaussian_nll_compile_check.py [--arch 90]

Runs the operators' host code on small CPU tensors and compiles each kernel launch it would make
for CUDA compute capability `arch` with the real Triton compiler (to PTX and cubin) instead of
running it (the machinery of tests/triton_compile_check.py). Covers both operators (gaussian_nll,
gaussian_kl), every dtype and reduction, a call of one program and one of several. Prints one JSON
object per compiled kernel variant, then a summary line; exits 1 if any compilation failed. Needs
Triton's compiled mode: TRITON_INTERPRET must be off. tests/test_triton_latent_terms.py runs it in a subprocess.
"""

from __future__ import annotations

import os
import sys

os.environ["TRITON_INTERPRET"] = "0"

import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from triton_compile_check import family_main  # noqa: E402

DTYPES = (torch.float32, torch.bfloat16, torch.float16, torch.float64)
SHAPES = ((8, 8), (3, 1500))  # MISO's codes (one program); several programs


def cases():
    for dtype in DTYPES:
        for shape in SHAPES:
            for reduction in ("batch_sum", "sum", "mean"):
                yield dtype, shape, reduction


def run_case(tk, case) -> None:
    dtype, shape, reduction = case
    z, mu, logvar = (torch.randn(shape).to(dtype) for _ in range(3))
    tk._gaussian_nll(z, mu, logvar, reduction)
    tk._gaussian_nll_backward(torch.tensor(1.0), z, mu, logvar, reduction)
    tk._gaussian_kl(mu, logvar, reduction)
    tk._gaussian_kl_backward(torch.tensor(1.0), mu, logvar, reduction)


def main() -> int:
    return family_main(__doc__, "gaussian_nll", cases(), run_case)


if __name__ == "__main__":
    sys.exit(main())
