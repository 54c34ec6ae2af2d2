"""Compile the Triton kernels of the GAN loss operators for a GPU, on a machine without one.

    python tests/triton_gan_loss_compile_check.py [--arch 90]

Runs the operators' host code on small CPU tensors and compiles each kernel launch it would make
for CUDA compute capability `arch` with the real Triton compiler (to PTX and cubin) instead of
running it (the machinery of tests/triton_compile_check.py). Covers every per-element function,
reduction, dtype, one to MAX_SCALES scales with and without heads, and R1 with aligned and odd
per-sample sizes. Prints one JSON object per compiled kernel variant, then a summary line; exits 1
if any compilation failed. Needs Triton's compiled mode: TRITON_INTERPRET must be off.
tests/test_triton_gan_loss.py runs it in a subprocess.
"""

from __future__ import annotations

import os
import sys

os.environ["TRITON_INTERPRET"] = "0"

import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from triton_compile_check import family_main  # noqa: E402

MODE_TARGETS = [("lsgan", "real", 0.0), ("nsgan", "label", 0.5), ("hinge", "real", 0.0),
                ("hinge", "fake", 0.0), ("wgan", "generator", 0.0),
                ("sigmoid_bce", "label", 0.5)]
DTYPES = (torch.float32, torch.bfloat16, torch.float16, torch.float64)


def cases():
    for dtype in DTYPES:
        for mode, target, label in MODE_TARGETS:
            for reduction in ("mean", "sum", "none"):
                yield ("gan_loss", dtype, mode, target, label, reduction, "munit")
        yield ("gan_loss", dtype, "nsgan", "real", 0.0, "mean", "heads")
        yield ("gan_loss", dtype, "lsgan", "fake", 0.0, "none", "one")
        yield ("gan_loss", dtype, "hinge", "fake", 0.0, "sum", "k3")  # one element per head
        for reduction in ("mean", "sum", "none"):
            yield ("r1", dtype, reduction, "aligned")
        yield ("r1", dtype, "mean", "odd")
        yield ("r1", dtype, "none", "single")  # one element per sample


def run_case(tk, case) -> None:
    if case[0] == "r1":
        _, dtype, reduction, kind = case
        shape = {"aligned": (2, 3, 32, 32), "odd": (3, 3, 5, 7), "single": (1, 1)}[kind]
        grads = torch.randn(shape).to(dtype)
        tk._r1_penalty(grads, 0.5, reduction)
        g = torch.ones((shape[0],) if reduction == "none" else ())
        tk._r1_penalty_backward(g, grads, 0.5, reduction)
        return
    _, dtype, mode, target, label, reduction, scales = case
    domain = None
    if scales == "munit":
        outputs = [torch.randn(8, 1, s, s).to(dtype) for s in (16, 8, 4)]
    elif scales == "one":
        outputs = [torch.randn(8, 1, 30, 30).to(dtype)]
    elif scales == "k3":
        outputs = [torch.randn(8, 3).to(dtype)]
        domain = torch.randint(0, 3, (8,))
    else:
        outputs = [torch.randn(8, 3).to(dtype), torch.randn(8, 3, 4, 4).to(dtype)]
        domain = torch.randint(0, 3, (8,))
    tk._gan_loss(outputs, mode, target, label, domain, reduction)
    g = torch.ones((8,) if reduction == "none" else ())
    tk._gan_loss_backward(g, outputs, mode, target, label, domain, reduction)


def main() -> int:
    return family_main(__doc__, "gan_loss", cases(), run_case)


if __name__ == "__main__":
    sys.exit(main())
