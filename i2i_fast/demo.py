"""`i2i-fast demo`: MUNIT trained on the CPU on the bundled two-domain synthetic set, end to end.

1. trains MUNIT's "demo" configuration (the official architecture and losses scaled down: widths
   /4, 2 residual blocks, 64x64 images, batch 4; see i2i_fast/methods/munit.py) on
   synthetic:shapes (day ↔ night) with the regular trainer (run folder, checkpoints, TensorBoard);
2. writes a grid: held-out inputs of each domain, each followed by several random styles;
3. evaluates the model on the held-out split (content IoU, target-domain accuracy, diversity);
4. measures its own training step on the fused kernels and on the reference backend, in one run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

DEMO_DATA = "synthetic:shapes"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=int, default=None,
                   help="training iterations (default: the demo configuration's max_iter)")
    p.add_argument("--run-dir", default="runs/demo", help="run folder (default runs/demo)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    p.add_argument("--n-styles", type=int, default=6, help="random styles per input in the grid")
    p.add_argument("--n-inputs", type=int, default=6, help="inputs per domain in the grid")
    p.add_argument("--eval-inputs", type=int, default=64,
                   help="held-out inputs per direction for the evaluation (0: skip it)")
    p.add_argument("--speed-iterations", type=int, default=5,
                   help="timed iterations per backend for the speed line (0: skip it)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")


def _say(message: str) -> None:
    print(message, flush=True)


def _grid(method, run_dir: Path, n_inputs: int, n_styles: int) -> Path:
    from i2i_fast.data import open_dataset
    from i2i_fast.train import images

    test = open_dataset(DEMO_DATA, "unpaired", split="test",
                       resolution=method.config.image_size)
    rows, row_labels = [], []
    generator = torch.Generator(device=method.context.device).manual_seed(0)
    names = dict(zip("ab", test.domain_names))
    for source, target in (("a", "b"), ("b", "a")):
        x = torch.stack([test[i][source] for i in range(n_inputs)])
        out = method.translate(x, n_styles=n_styles, target_domain=target, generator=generator)
        for i in range(n_inputs):
            rows.append([x[i], *out[i].cpu()])
            row_labels.append(f"{names[source]} -> {names[target]}")
    columns = ["input"] + [f"style {k + 1}" for k in range(n_styles)]
    return images.save_png(images.grid(rows, column_labels=columns, row_labels=row_labels),
                           run_dir / "demo_grid.png")


def main(args: argparse.Namespace) -> int:
    from i2i_fast.train.cli_commands import run_reporting_errors

    return run_reporting_errors("demo", lambda: _main(args))


def _main(args: argparse.Namespace) -> int:
    from i2i_fast.bench import method_bench
    from i2i_fast.train import RunDir, TrainError, TrainOptions, Trainer
    from i2i_fast.train.trainer import Hints

    from i2i_fast.train.cli_commands import install_cpu_allocator

    install_cpu_allocator()
    for flag, value, least in (("--steps", args.steps, 1), ("--n-styles", args.n_styles, 1),
                               ("--n-inputs", args.n_inputs, 1), ("--threads", args.threads, 1),
                               ("--eval-inputs", args.eval_inputs, 0),
                               ("--speed-iterations", args.speed_iterations, 0)):
        if value is not None and value < least:
            raise TrainError(f"{flag}: expected an int >= {least}, got {value}")
    if args.threads:
        torch.set_num_threads(args.threads)
    run_dir = Path(args.run_dir)
    overrides = [f"max_iter={args.steps}"] if args.steps else []
    # --resume continues the run's checkpoint (with its configuration), or starts one
    resuming = args.resume and RunDir(run_dir).checkpoints().latest() is not None
    options = TrainOptions(method="munit", data=DEMO_DATA, config=None if resuming else "demo",
                           overrides=overrides, run_dir=str(run_dir),
                           resume="auto" if args.resume else None, device="cpu",
                           log_every=50, sample_every=250, checkpoint_every=500, workers=1)
    _say(f"i2i-fast demo: MUNIT (config munit.demo) on {DEMO_DATA}, CPU, "
         f"{torch.get_num_threads()} threads; run folder {run_dir}")
    start = time.perf_counter()
    trainer = Trainer(options, hints=Hints(resume="--resume", more_steps="--steps N"))
    try:
        result = trainer.run()
    except KeyboardInterrupt:
        print(f"i2i-fast demo: interrupted at step {trainer.step}; last checkpoint written: "
              f"{trainer.last_checkpoint or 'none'} (continue with --resume)", file=sys.stderr,
              flush=True)
        return 130
    method = trainer.method
    minutes = (time.perf_counter() - start) / 60
    _say(f"trained {result.step} iterations in {minutes:.1f} min; last losses: "
         + ", ".join(f"{k} {v:.3f}" for k, v in sorted(result.losses.items())))

    grid = _grid(method, run_dir, args.n_inputs, args.n_styles)
    _say(f"grid (rows: held-out inputs, day -> night then night -> day; columns: the input, "
         f"then {args.n_styles} random styles): {grid}")

    if args.eval_inputs > 0:
        from i2i_fast.metrics import evaluate

        report = evaluate(method, DEMO_DATA, n_inputs=args.eval_inputs, n_styles=5)
        (run_dir / "demo_eval.json").write_text(report.to_json())
        _say(report.table())

    if args.speed_iterations > 0:
        _say("speed of this training step (same configuration, same batches, one process):")
        runners = [method_bench.Runner("munit", "demo", overrides, provider, "cpu", "fp32",
                                        False, DEMO_DATA)
                   for provider in ("fused", "eager_reference")]
        rates = {}
        for r in method_bench.measure_interleaved(runners, args.speed_iterations, 2):
            rates[r["provider"]] = r["images_per_s"]
            _say(f"  {r['provider']:16s} {r['median_s'] * 1e3:8.1f} ms/iteration  "
                 f"{r['images_per_s']:6.2f} images/s")
        _say(f"  fused / reference: x{rates['fused'] / rates['eager_reference']:.2f}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
