"""Record the losses of the built-in methods' first iterations (the fixture of
tests/test_method_losses_unchanged.py).

    python tests/golden/record_method_losses.py [--out tests/golden/method_losses.json]

For each built-in method (its `tiny` configuration), backend (reference, cpu) and dtype (float32,
float64): 3 iterations from seed 0 on i2i_fast.testing's random batches, one thread; the losses
as exact hexadecimal floats, with the machine, the torch version and the commit they came from.
Re-record only when a change is *meant* to change the rounding (a kernel's summation order, ...),
and say so in that commit.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
METHODS = ("munit", "stargan_v2")
BACKENDS = ("reference", "cpu")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
STEPS = 3


SIMD_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16",
              "avx512_fp16", "amx_tile")


def cpu_fingerprint() -> str:
    """The CPU model and its SIMD extensions (what the kernels' and oneDNN's code paths, hence
    their rounding, depend on)."""
    model, flags = "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return f"{model} [{' '.join(f for f in SIMD_FLAGS if f in flags)}]"


def record() -> dict:
    from i2i_fast.methods import get_method_class, resolve_config
    from i2i_fast.testing.runs import train_losses

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runs = {}
        for name in METHODS:
            cls = get_method_class(name)
            config = resolve_config(cls, "tiny")
            for backend in BACKENDS:
                for dtype_name, dtype in DTYPES.items():
                    history, _ = train_losses(cls, config, STEPS, backend, dtype, seed=0)
                    runs[f"{name}/{backend}/{dtype_name}"] = [
                        {k: v.hex() for k, v in sorted(step.items())} for step in history]
        return runs
    finally:
        torch.set_num_threads(threads)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(HERE / "method_losses.json"))
    args = p.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=HERE).stdout.strip()
    data = {"commit": commit, "cpu": cpu_fingerprint(), "torch": torch.__version__, "threads": 1,
            "steps": STEPS, "runs": record()}
    Path(args.out).write_text(json.dumps(data, indent=1) + "\n")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
