"""How far two float32 training runs of the same math drift apart: the reference backend vs the
fused one, per iteration, over many seeds and thread counts.

The float32 tolerances of i2i_fast.testing.runs (FLOAT32_REL_PER_STEP) are stated from this
measurement; the float64 gaps are printed beside it to show that the drift is rounding.

    python benchmarks/equivalence_drift.py [--seeds 20] [--steps 4] [--threads 1,2]
        [--methods munit,stargan_v2] [--out benchmarks/results/equivalence-drift-<date>.json]

For each method (its `tiny` configuration), seed, thread count and dtype: two runs from the same
seed on the same batches, one with the reference backend forced, one with the cpu (fused)
backend; the largest relative gap |a - b| / max(|a|, |b|) over the losses of each iteration whose
magnitude is at least 1e-3 (smaller losses are compared with the absolute tolerance), and the
largest absolute gap over the others.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import torch

from i2i_fast.bench.ops_bench import cpu_name
from i2i_fast.methods import get_method_class, resolve_config
from i2i_fast.testing.runs import train_losses

SMALL = 1e-3


def gaps(a: list[dict], b: list[dict]) -> tuple[list[float], list[float]]:
    rel, absolute = [], []
    for x, y in zip(a, b):
        worst_rel = worst_abs = 0.0
        for name in x:
            scale = max(abs(x[name]), abs(y[name]))
            if scale >= SMALL:
                worst_rel = max(worst_rel, abs(x[name] - y[name]) / scale)
            else:
                worst_abs = max(worst_abs, abs(x[name] - y[name]))
        rel.append(worst_rel)
        absolute.append(worst_abs)
    return rel, absolute


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--methods", default="munit,stargan_v2")
    p.add_argument("--out")
    args = p.parse_args(argv)
    results = {"cpu": cpu_name(), "torch": torch.__version__, "steps": args.steps,
               "seeds": args.seeds, "date": datetime.date.today().isoformat(), "runs": []}
    for name in args.methods.split(","):
        cls = get_method_class(name)
        config = resolve_config(cls, "tiny")
        for threads in (int(t) for t in args.threads.split(",")):
            torch.set_num_threads(threads)
            for dtype in (torch.float32, torch.float64):
                worst_rel = [0.0] * args.steps
                worst_abs = [0.0] * args.steps
                for seed in range(args.seeds):
                    ref, _ = train_losses(cls, config, args.steps, "reference", dtype, seed)
                    fused, _ = train_losses(cls, config, args.steps, "cpu", dtype, seed)
                    rel, absolute = gaps(ref, fused)
                    worst_rel = [max(u, v) for u, v in zip(worst_rel, rel)]
                    worst_abs = [max(u, v) for u, v in zip(worst_abs, absolute)]
                row = {"method": name, "threads": threads, "dtype": str(dtype)[6:],
                       "max_relative_gap_per_step": worst_rel,
                       "max_absolute_gap_small_losses_per_step": worst_abs}
                results["runs"].append(row)
                print(f"{name:12s} threads {threads} {row['dtype']:8s} relative: "
                      + " ".join(f"{g:.1e}" for g in worst_rel) + "   absolute (<1e-3): "
                      + " ".join(f"{g:.1e}" for g in worst_abs), flush=True)
    out = Path(args.out or f"benchmarks/results/equivalence-drift-"
               f"{datetime.datetime.now():%Y%m%d-%H%M%S}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
