"""MISO's claim, measured: MILO in place of the L1 self-reconstruction, at equal iterations and on
the same seeds (issue 19).

    python benchmarks/miso_ablation.py [--arms milo,l1,munit] [--seeds 0,1,2] [--iterations 800]
        [--eval-inputs 50] [--n-styles 10] [--lpips-weights PATH] [--run-dir runs/miso_ablation]
        [--threads 1]
        [--out benchmarks/results/miso-ablation-<date>.json]

Arms (each trained with the regular trainer on synthetic:shapes, CPU, float32):
- ``milo``: MISO's ``demo`` configuration (MILO in the IFI stage);
- ``l1``: ``demo_l1``, the same networks, losses and optimiser with MUNIT's L1 self-reconstruction
  in MILO's place (``self_recon=l1``; i2i_fast/methods/miso.py says which image it is);
- ``munit``: MUNIT's ``demo`` configuration, for scale (same data, iterations, seeds and
  evaluation).

Each (arm, seed) run lives in ``<run-dir>/<arm>-seed<seed>``: an interrupted run continues from
its last checkpoint, and a finished one (its ``ablation.json`` with the same settings) is not run
again, so the script can be stopped and restarted. Every run is evaluated like ``i2i-fast eval``
(both directions, latent mode, N held-out inputs, K random styles each, evaluation seed 0 for all
runs): content IoU (the shapes' masks against what a learned segmenter finds in the outputs),
target-domain accuracy, diversity (mean pixel L1 over the K(K-1)/2 pairs of one input's outputs;
LPIPS with ``--lpips-weights``, otherwise reported unavailable), and, for content preservation,
the mean LPIPS between each input and its outputs when LPIPS is available. The summary gives,
per arm, the mean and the sample standard deviation over the seeds.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from i2i_fast.bench.ops_bench import cpu_name

ARMS = {"milo": ("miso", "demo"), "l1": ("miso", "demo_l1"), "munit": ("munit", "demo")}
DATA = "synthetic:shapes"
FIGURES = ("content_iou", "target_accuracy", "diversity_l1", "diversity_lpips", "io_lpips")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def train(arm: str, seed: int, iterations: int, folder: Path) -> tuple[Any, float]:
    from i2i_fast.train import TrainOptions, Trainer

    method, config = ARMS[arm]
    resume = "auto" if any((folder / "checkpoints").glob("step_*.pt")) else None
    options = TrainOptions(method=method, data=DATA, config=None if resume else config,
                           overrides=[f"max_iter={iterations}"], run_dir=str(folder),
                           resume=resume, device="cpu", seed=seed, log_every=100,
                           sample_every=iterations, checkpoint_every=200, keep_checkpoints=1,
                           workers=1, progress=False)
    trainer = Trainer(options)
    start = time.perf_counter()
    trainer.run()
    return trainer.method, (time.perf_counter() - start) / 60


def input_output_lpips(method, lpips, n_inputs: int, n_styles: int) -> float:
    """Mean LPIPS between each held-out input and its K outputs, both directions."""
    from i2i_fast.data import open_dataset

    test = open_dataset(DATA, "unpaired", split="test", resolution=method.config.image_size)
    values = []
    for source, target in (("a", "b"), ("b", "a")):
        x = torch.stack([test[i][source] for i in range(n_inputs)])
        with method.evaluating():
            y = method.translate(x, n_styles=n_styles, target_domain=target,
                                 generator=torch.Generator().manual_seed(0)).clamp(-1, 1)
        for k in range(n_styles):
            values.append(lpips(x, y[:, k]).double().mean())
    return float(torch.stack(values).mean())


def evaluate(method, args: argparse.Namespace) -> dict[str, Any]:
    from i2i_fast.metrics import evaluate as run_eval
    from i2i_fast.metrics import lpips_distance

    lpips, status = lpips_distance.lpips_or_reason(args.lpips_weights, "alex", "cpu")
    report = run_eval(method, DATA, n_inputs=args.eval_inputs, n_styles=args.n_styles, seed=0,
                      modes=["latent"], lpips=lpips, lpips_status=status, log=say)
    say(report.table())
    latent = report.summary()["latent"]
    figures = {name: latent[name] for name in FIGURES if name in latent}
    figures["io_lpips"] = (input_output_lpips(method, lpips, args.eval_inputs, args.n_styles)
                           if lpips is not None else None)
    figures["per_direction"] = [{"task": f"{t.source} -> {t.target}",
                                 "content_iou": t.content_iou,
                                 "target_accuracy": t.target_accuracy,
                                 "diversity_l1": t.diversity_l1,
                                 "diversity_lpips": t.diversity_lpips} for t in report.tasks]
    figures["lpips"] = report.lpips
    return figures


def run(arm: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    settings = {"arm": arm, "method": ARMS[arm][0], "config": ARMS[arm][1], "seed": seed,
                "iterations": args.iterations, "eval_inputs": args.eval_inputs,
                "n_styles": args.n_styles, "lpips_weights": args.lpips_weights,
                "threads": args.threads}
    folder = Path(args.run_dir) / f"{arm}-seed{seed}"
    stored = folder / "ablation.json"
    if stored.exists():
        previous = json.loads(stored.read_text())
        if previous.get("settings") == settings:
            say(f"[{arm} seed {seed}] done already ({stored})")
            return previous
    folder.mkdir(parents=True, exist_ok=True)
    say(f"[{arm} seed {seed}] training {settings['method']} {settings['config']} for "
        f"{args.iterations} iterations ({folder})")
    method, minutes = train(arm, seed, args.iterations, folder)
    say(f"[{arm} seed {seed}] evaluating")
    result = {"settings": settings, "train_minutes": minutes, **evaluate(method, args)}
    tmp = stored.with_name(".ablation.json.tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(tmp, stored)
    return result


def summary(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for arm in dict.fromkeys(r["settings"]["arm"] for r in runs):
        rows = [r for r in runs if r["settings"]["arm"] == arm]
        figures: dict[str, Any] = {"seeds": [r["settings"]["seed"] for r in rows]}
        for name in FIGURES:
            values = [r.get(name) for r in rows]
            if not values or any(v is None for v in values):
                figures[name] = None
                continue
            figures[name] = {"mean": statistics.fmean(values),
                             "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                             "min": min(values), "max": max(values), "values": values}
        out[arm] = figures
    return out


def markdown(table: dict[str, dict[str, Any]]) -> str:
    def cell(v: Any) -> str:
        return "unavailable" if v is None else f"{v['mean']:.3f} ± {v['std']:.3f}"

    lines = ["| arm | seeds | content IoU | target accuracy | diversity L1 | diversity LPIPS | "
             "input-output LPIPS |", "|---|---|---|---|---|---|---|"]
    for arm, f in table.items():
        lines.append(f"| {arm} | {len(f['seeds'])} | {cell(f['content_iou'])} | "
                     f"{cell(f['target_accuracy'])} | {cell(f['diversity_l1'])} | "
                     f"{cell(f['diversity_lpips'])} | {cell(f['io_lpips'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arms", default="milo,l1", help=f"comma-separated, of {sorted(ARMS)}")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--iterations", type=int, default=800, help="per run (the demo length)")
    p.add_argument("--eval-inputs", type=int, default=50)
    p.add_argument("--n-styles", type=int, default=10)
    p.add_argument("--lpips-weights", default=None)
    p.add_argument("--run-dir", default="runs/miso_ablation")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1: on a shared 2-core machine, two threads per process "
                        "ran 5-15x slower than one, measured)")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = [a for a in arms if a not in ARMS]
    if unknown or not arms:
        p.error(f"--arms: expected names among {sorted(ARMS)}, got {args.arms!r}")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    start = time.perf_counter()
    runs = [run(arm, seed, args) for seed in seeds for arm in arms]
    table = summary(runs)
    result = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
              "command": " ".join(["python", "benchmarks/miso_ablation.py", *(argv or sys.argv[1:])]),
              "cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__,
              "python": platform.python_version(), "data": DATA,
              "load_average_at_end": os.getloadavg(),
              # this invocation only: runs finished by an earlier invocation are read back,
              # not re-run; their own training time is each run's train_minutes
              "invocation_minutes": (time.perf_counter() - start) / 60,
              "train_minutes_all_runs": sum(r["train_minutes"] for r in runs),
              "summary": table, "runs": runs}
    out = Path(args.out or f"benchmarks/results/miso-ablation-"
                           f"{datetime.datetime.now():%Y%m%d-%H%M%S}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(markdown(table))
    say(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
