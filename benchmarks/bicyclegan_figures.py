"""The README figures of BicycleGAN from a trained checkpoint: the grid of held-out pairs of
synthetic:shapes-paired (input, target, the output with the target's encoded code, K outputs
with random codes) and the `i2i-fast eval` figures (latent and encoded modes).

    i2i-fast train bicyclegan --data synthetic:shapes-paired --config demo --run-dir runs/bicyclegan_demo
    python benchmarks/bicyclegan_figures.py runs/bicyclegan_demo/checkpoints/step_000001000.pt \
        --out runs/bicyclegan_demo/figures
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from i2i_fast.data import open_dataset
from i2i_fast.metrics import evaluate, lpips_or_reason
from i2i_fast.train.images import grid, save_png
from i2i_fast.train.translate import load_method

DATA = "synthetic:shapes-paired"


def paired_grid(method, inputs: int, n_styles: int, seed: int):
    """Rows: held-out pairs 0..inputs-1; columns: input, target, encoded, n_styles random."""
    test = open_dataset(DATA, "paired", split="test", resolution=method.config.image_size)
    items = [test[i] for i in range(inputs)]
    a = torch.stack([item["a"] for item in items])
    b = torch.stack([item["b"] for item in items])
    encoded = method.translate(a, reference=b)[:, 0]
    random = method.translate(a, n_styles=n_styles,
                              generator=torch.Generator().manual_seed(seed))
    rows = [[a[i], b[i], encoded[i], *random[i]] for i in range(inputs)]
    columns = ["input", "target", "encoded"] + [f"random {k + 1}" for k in range(n_styles)]
    return grid(rows, column_labels=columns, row_labels=[f"pair {i}" for i in range(inputs)])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--out", default="bicyclegan_figures")
    p.add_argument("--inputs", type=int, default=4, help="rows of the grid")
    p.add_argument("--n-styles", type=int, default=5)
    p.add_argument("--eval-inputs", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lpips-weights", default=None)
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    method = load_method(args.checkpoint)
    grid_path = save_png(paired_grid(method, args.inputs, args.n_styles, args.seed),
                         out / "grid.png")
    lpips, status = lpips_or_reason(args.lpips_weights, "alex", "cpu")
    report = evaluate(method, DATA, n_inputs=args.eval_inputs, n_styles=args.n_styles,
                      seed=args.seed, lpips=lpips, lpips_status=status)
    print(report.table())
    (out / "eval.json").write_text(report.to_json())
    print(json.dumps({"grid": str(grid_path), "eval": str(out / "eval.json")}))


if __name__ == "__main__":
    main()
