"""Compile the Triton kernels of the normalization operators for a GPU, on a machine without one.

    python tests/triton_compile_check.py [--arch 90] [--sm-count 132] [--quick]

Runs the operators' host code (launch plans, argument specialisation) on small CPU tensors, and
compiles each kernel launch it would make for CUDA compute capability `arch` with the real Triton
compiler (to PTX and cubin) instead of running it: a kernel that would not build on the GPU fails
here. Launch plans are made as on a GPU with `sm_count` SMs. Prints one JSON object per compiled
kernel variant (kernel, constexprs, and the widest global load in its PTX), then a summary line;
exits 1 if any compilation failed. Needs Triton's compiled mode: TRITON_INTERPRET must be off.
tests/test_triton_normalization.py runs it in a subprocess.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import traceback

os.environ["TRITON_INTERPRET"] = "0"

import torch  # noqa: E402

# The launches to compile: (op[/style or /no_affine], dtype, layout, shape, activation)
FULL_CASES = [
    (op, dtype, layout, shape, act)
    for op in ("adain", "instance_norm", "instance_norm/no_affine", "layer_norm/munit",
               "layer_norm/standard")
    for dtype in (torch.float32, torch.bfloat16)
    for layout in ("contiguous", "channels_last")
    for shape, act in (((2, 64, 16, 16), "relu"), ((1, 8, 96, 96), "leaky_relu"),
                       ((1, 2, 256, 256), "none"))
] + [
    ("adain", dtype, layout, (2, 64, 16, 16), "leaky_relu")
    for dtype in (torch.float16, torch.float64)
    for layout in ("contiguous", "channels_last")
]
QUICK_CASES = [
    ("adain", torch.float32, "contiguous", (2, 64, 16, 16), "relu"),
    ("adain", torch.bfloat16, "channels_last", (2, 64, 16, 16), "leaky_relu"),
    ("instance_norm", torch.float32, "contiguous", (1, 2, 256, 256), "none"),
    ("layer_norm/munit", torch.bfloat16, "contiguous", (1, 8, 96, 96), "relu"),
    ("layer_norm/standard", torch.float64, "channels_last", (2, 64, 16, 16), "leaky_relu"),
]


def _widest_load(ptx: str) -> int:
    """Bytes of the widest ld.global in the PTX (0 if none)."""
    widest = 0
    for m in re.finditer(r"ld\.global(?:\.[a-z]+)*?(?:\.v(\d))?\.(b|f|u|s)(\d+)", ptx):
        lanes = int(m.group(1) or 1)
        widest = max(widest, lanes * int(m.group(3)) // 8)
    return widest


class _CompilingLauncher:
    """Stands in for torch.library.wrap_triton: compiles the launch instead of running it."""

    def __init__(self, compiled: dict) -> None:
        self.compiled = compiled

    def __call__(self, kernel):
        def at(grid):
            def launch(*args, **kwargs):
                compiled = kernel.warmup(*args, grid=grid, **kwargs)
                consts = {k: (str(v) if not isinstance(v, (int, float, bool)) else v)
                          for k, v in kwargs.items()}
                key = (kernel.__name__, json.dumps(consts, sort_keys=True),
                       tuple(a.dtype if isinstance(a, torch.Tensor) else a == 1 for a in args))
                self.compiled.setdefault(key, (kernel.__name__, consts, compiled))
            return launch

        class _Grid:
            def __getitem__(self, grid):
                return at(grid)

        return _Grid()


def run_case(tk, case) -> None:
    from helpers import channels_last, make_args

    op, dtype, layout, shape, act = case
    name = op.split("/")[0]
    x, w, b = make_args("adain" if name == "adain" else "instance_norm", shape, dtype)
    if layout == "channels_last":
        x = channels_last(x)
    if op.endswith("no_affine"):
        w = b = None
    layer = name == "layer_norm"
    munit = op.endswith("munit")
    y, mean, rstd = tk._forward(x, w, b, 1e-5, act, 0.2, layer, munit)
    stat_shape = (shape[0],) if layer else shape[:2]
    acc = torch.float64 if dtype == torch.float64 else torch.float32
    mean, rstd = torch.zeros(stat_shape, dtype=acc), torch.ones(stat_shape, dtype=acc)
    tk._backward(torch.ones_like(x), x, w, b, mean, rstd, 1e-5, act, 0.2, layer, munit)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", type=int, default=90)
    parser.add_argument("--sm-count", type=int, default=132)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

    from i2i_fast.ops import triton_support as ts
    from i2i_fast.ops.normalization import triton as tk

    tk.ts.min_programs = lambda device: ts.PROGRAMS_PER_SM * args.sm_count
    return compile_cases(tk, QUICK_CASES if args.quick else FULL_CASES, run_case, args.arch)


def compile_cases(tk, cases, run_case, arch: int) -> int:
    """Run run_case(tk, case) for every case with the launches of the Triton host module tk
    compiled for compute capability `arch` instead of run; print one JSON object per failing
    case and per compiled kernel variant, then a summary line. Returns the exit status (1 if
    any case failed)."""
    from i2i_fast.ops import triton_support as ts

    compiled: dict = {}
    tk.wrap_triton = _CompilingLauncher(compiled)
    failures = 0
    with ts.compile_only(arch):
        for case in cases:
            try:
                run_case(tk, case)
            except Exception:  # noqa: BLE001 - report every failing case, then fail
                failures += 1
                print(json.dumps({"case": str(case), "error": traceback.format_exc()}))
    for name, consts, kernel in compiled.values():
        print(json.dumps({"kernel": name, "constexprs": consts,
                          "widest_load_bytes": _widest_load(kernel.asm["ptx"])}))
    print(json.dumps({"arch": arch, "compiled": len(compiled), "failures": failures,
                      "triton": __import__("triton").__version__}))
    return 1 if failures else 0

if __name__ == "__main__":
    sys.exit(main())
