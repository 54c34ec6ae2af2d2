"""`i2i-fast compare`: the registered methods side by side, each trained on the CPU at its demo
configuration on its bundled synthetic set.

For each chosen method (default: every built-in), in its own folder ``<run-dir>/<method>``:

1. trains its ``demo_config`` on its ``demo_data`` with the regular trainer (checkpoints, so an
   interrupted run continues where it stopped), ``--iterations`` iterations (default: the demo
   configuration's max_iter);
2. evaluates it as ``i2i-fast eval`` does (content IoU, target-domain accuracy, diversity; LPIPS
   with ``--lpips-weights``) on the held-out split;
3. times its training iteration on the fused kernels and on the reference backend, interleaved;
4. translates the same held-out inputs (day scenes of the synthetic sets, to the night domain)
   with a few random styles.

A method whose ``compare.json`` exists with the same settings is not run again. Then, for all the
chosen methods, ``<run-dir>/compare.csv``, ``compare.json``, ``compare.md`` (a Markdown table)
and ``compare.png`` (rows: each method's translations of the same inputs; columns: the input and
the styles; labelled) are written.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

# The figure: these held-out inputs of synthetic:shapes' day domain, translated to "night" (the
# second style of every synthetic set, so domain 1 of two-domain and multi-domain methods alike).
FIGURE_DATA = "synthetic:shapes"
FIGURE_INPUTS = (0, 1, 2)
FIGURE_TARGET = 1
FIGURE_TARGET_NAME = "night"
FIGURE_SIZE = 64  # side of every cell of the figure

COLUMNS = ("method", "config", "data", "iterations", "train_minutes", "content_iou",
           "target_accuracy", "diversity_l1", "diversity_lpips", "reference_content_iou",
           "reference_target_accuracy", "fused_ms", "reference_ms", "speedup")


class CompareError(Exception):
    """A bad argument or a method that cannot be compared: one line, exit status 2."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--methods", default=None,
                   help="comma-separated registered methods (default: every built-in)")
    p.add_argument("--iterations", type=int, default=None,
                   help="training iterations per method (default: its demo config's max_iter)")
    p.add_argument("--seed", type=int, default=0, help="seed of training and evaluation (0)")
    p.add_argument("--run-dir", default="runs/compare", help="where everything goes")
    p.add_argument("--eval-inputs", type=int, default=64,
                   help="held-out inputs per task for the evaluation (64)")
    p.add_argument("--n-styles", type=int, default=5, help="outputs per input (5)")
    p.add_argument("--speed-iterations", type=int, default=5,
                   help="timed iterations per backend (5; 0: no timing)")
    p.add_argument("--lpips-weights", default=None,
                   help="local AlexNet weights for LPIPS (without them LPIPS is unavailable)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--cache-dir", default=None, help="where the metric networks are cached "
                                                     "(default ~/.cache/i2i_fast/metrics)")


def _say(message: str) -> None:
    print(message, flush=True)


def chosen_methods(text: str | None) -> list[type]:
    """The method classes to compare, each with a demo configuration and data set."""
    from i2i_fast.methods import get_method_class, list_methods
    from i2i_fast.methods.registry import MethodError

    names = ([n.strip() for n in text.split(",") if n.strip()] if text
             else [i.name for i in list_methods() if i.builtin])
    if not names:
        raise CompareError("--methods: expected at least one method name")
    classes = []
    for name in names:
        try:
            cls = get_method_class(name)
        except MethodError as error:
            raise CompareError(f"--methods: {error}") from None
        if not cls.demo_config or not cls.demo_data:
            raise CompareError(f"--methods: {name} declares no demo configuration "
                               f"(class attributes demo_config and demo_data)")
        classes.append(cls)
    return classes


def settings(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """What a method's stored result depends on (a re-run with the same settings skips it)."""
    from i2i_fast.methods import resolve_config

    iterations = args.iterations or resolve_config(cls, cls.demo_config).max_iter
    return {"method": cls.name, "config": cls.demo_config, "data": cls.demo_data,
            "iterations": iterations, "seed": args.seed, "eval_inputs": args.eval_inputs,
            "n_styles": args.n_styles, "speed_iterations": args.speed_iterations,
            "lpips_weights": args.lpips_weights, "cache_dir": args.cache_dir}


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def figure_inputs(size: int) -> torch.Tensor:
    """The held-out day scenes of the figure at `size`², (len(FIGURE_INPUTS), 3, size, size)."""
    from i2i_fast.data import open_dataset

    test = open_dataset(FIGURE_DATA, "unpaired", split="test", resolution=size)
    return torch.stack([test[i]["a"] for i in FIGURE_INPUTS])


def _train(cls: type, run_dir: Path, s: dict[str, Any]):
    from i2i_fast.train import TrainOptions, Trainer

    resume = "auto" if any((run_dir / "checkpoints").glob("step_*.pt")) else None
    options = TrainOptions(method=cls.name, data=cls.demo_data,
                           config=None if resume else cls.demo_config,
                           overrides=[f"max_iter={s['iterations']}"], run_dir=str(run_dir),
                           resume=resume, device="cpu", seed=s["seed"], log_every=50,
                           sample_every=max(s["iterations"], 1), checkpoint_every=250, workers=1)
    trainer = Trainer(options)
    start = time.perf_counter()
    trainer.run()
    return trainer.method, (time.perf_counter() - start) / 60


def _evaluate(method, cls: type, s: dict[str, Any]) -> dict[str, float | None]:
    from i2i_fast.metrics import evaluate, lpips_distance

    lpips, lpips_status = lpips_distance.lpips_or_reason(s["lpips_weights"], "alex", "cpu")
    report = evaluate(method, cls.demo_data, n_inputs=s["eval_inputs"], n_styles=s["n_styles"],
                      seed=s["seed"], lpips=lpips, lpips_status=lpips_status,
                      cache_dir=s["cache_dir"], log=_say)
    _say(report.table())
    summary = report.summary()
    latent = summary.get("latent") or next(iter(summary.values()))
    reference = summary.get("reference", {})
    return {"content_iou": latent["content_iou"], "target_accuracy": latent["target_accuracy"],
            "diversity_l1": latent["diversity_l1"], "diversity_lpips": latent["diversity_lpips"],
            "reference_content_iou": reference.get("content_iou"),
            "reference_target_accuracy": reference.get("target_accuracy"),
            "lpips": report.lpips}


def _speed(cls: type, s: dict[str, Any]) -> dict[str, float | None]:
    from i2i_fast.bench import method_bench

    if s["speed_iterations"] <= 0:
        return {"fused_ms": None, "reference_ms": None, "speedup": None}
    overrides = [f"max_iter={s['iterations']}"]
    runners = [method_bench.Runner(cls.name, cls.demo_config, overrides, provider, "cpu", "fp32",
                                   False, cls.demo_data, s["seed"])
               for provider in ("fused", "eager_reference")]
    results = {r["provider"]: r for r in
               method_bench.measure_interleaved(runners, s["speed_iterations"], 1)}
    fused, reference = results["fused"]["median_s"], results["eager_reference"]["median_s"]
    return {"fused_ms": fused * 1e3, "reference_ms": reference * 1e3,
            "speedup": reference / fused}


def _translations(method, s: dict[str, Any]) -> torch.Tensor:
    """(inputs, 1 + n_styles, 3, FIGURE_SIZE, FIGURE_SIZE): each figure input, then its styles."""
    import torch.nn.functional as F

    size = method.config.image_size
    x = figure_inputs(size)
    target = FIGURE_TARGET if method.domains.count is None or method.domains.count > 1 else 0
    out = method.translate(x, n_styles=s["n_styles"], target_domain=target,
                           generator=torch.Generator().manual_seed(s["seed"]))
    cells = torch.cat([x[:, None], out.cpu()], dim=1)
    if size != FIGURE_SIZE:
        flat = cells.flatten(0, 1)
        flat = F.interpolate(flat, size=FIGURE_SIZE, mode="bilinear", align_corners=False)
        cells = flat.reshape(*cells.shape[:2], 3, FIGURE_SIZE, FIGURE_SIZE)
    return cells


def run_method(cls: type, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """Train, evaluate, time and translate one method (or read its stored result)."""
    s = settings(cls, args)
    folder = root / cls.name
    stored = folder / "compare.json"
    if stored.exists():
        previous = json.loads(stored.read_text())
        if previous.get("settings") == s and (folder / "translations.pt").exists():
            _say(f"[{cls.name}] done already ({stored}): skipped")
            return previous
    folder.mkdir(parents=True, exist_ok=True)
    _say(f"[{cls.name}] training {s['config']} on {s['data']} for {s['iterations']} iterations "
         f"({folder})")
    method, minutes = _train(cls, folder, s)
    _say(f"[{cls.name}] evaluating on the held-out split")
    figures = _evaluate(method, cls, s)
    torch.save(_translations(method, s), folder / "translations.pt")
    _say(f"[{cls.name}] timing the training iteration: fused vs reference")
    speed = _speed(cls, s)
    row = {"method": cls.name, "config": s["config"], "data": s["data"],
           "iterations": s["iterations"], "train_minutes": minutes, **figures, **speed}
    result = {"settings": s, "row": row}
    _write_atomic(stored, json.dumps(result, indent=1) + "\n")
    return result


def _threads() -> str:
    n = torch.get_num_threads()
    return f"{n} thread" if n == 1 else f"{n} threads"


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown(rows: list[dict[str, Any]], header: str) -> str:
    head = ["method", "config, data", "iterations", "content IoU", "target acc.", "diversity L1",
            "diversity LPIPS", "reference-guided IoU / acc.", "fused ms/it", "reference ms/it",
            "speed-up"]
    lines = [header, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        ref = ("n/a" if r["reference_content_iou"] is None else
               f"{_fmt(r['reference_content_iou'])} / {_fmt(r['reference_target_accuracy'])}")
        speed = "n/a" if r["speedup"] is None else f"x{r['speedup']:.2f}"
        lines.append("| " + " | ".join([
            f"`{r['method']}`", f"{r['config']}, {r['data']}", str(r["iterations"]),
            _fmt(r["content_iou"]), _fmt(r["target_accuracy"]), _fmt(r["diversity_l1"]),
            _fmt(r["diversity_lpips"]), ref, _fmt(r["fused_ms"], 1),
            _fmt(r["reference_ms"], 1), speed]) + " |")
    return "\n".join(lines) + "\n"


def figure(strips: dict[str, torch.Tensor], n_styles: int) -> Any:
    """rows: (method, input) pairs; columns: the input (day) and its styles (night); labelled."""
    from i2i_fast.train.images import grid

    rows, labels = [], []
    for name, cells in strips.items():
        for i in range(cells.shape[0]):
            rows.append(list(cells[i]))
            labels.append(f"{name}, input {i + 1} ->{FIGURE_TARGET_NAME}")
    columns = ["input"] + [f"style {k + 1}" for k in range(n_styles)]
    return grid(rows, column_labels=columns, row_labels=labels)


def main(args: argparse.Namespace) -> int:
    try:
        return _main(args)
    except CompareError as error:
        print(f"i2i-fast compare: error: {error}", file=sys.stderr)
        return 2


def _main(args: argparse.Namespace) -> int:
    from i2i_fast.bench.ops_bench import machine_info
    from i2i_fast.train import TrainError
    from i2i_fast.train.cli_commands import install_cpu_allocator
    from i2i_fast.train.images import save_png

    try:
        install_cpu_allocator()
    except TrainError as error:
        raise CompareError(str(error)) from None

    for name in ("iterations", "eval_inputs", "n_styles"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise CompareError(f"--{name.replace('_', '-')}: expected an int >= 1, got {value}")
    if args.speed_iterations < 0:
        raise CompareError(f"--speed-iterations: expected an int >= 0, got "
                           f"{args.speed_iterations}")
    if args.threads:
        torch.set_num_threads(args.threads)
    classes = chosen_methods(args.methods)
    root = Path(args.run_dir)
    root.mkdir(parents=True, exist_ok=True)
    meta = machine_info("cpu")
    _say(f"i2i-fast compare: {', '.join(c.name for c in classes)}; {meta['cpu']}, "
         f"{_threads()}, torch {meta['torch']}; run folder {root}")
    results = [run_method(cls, args, root) for cls in classes]
    rows = [r["row"] for r in results]
    date = datetime.date.today().isoformat()
    header = (f"`i2i-fast compare` on {date}: {meta['cpu']} ({platform.machine()}), "
              f"{_threads()}, torch {meta['torch']}, seed {args.seed}")
    with open(root / ".compare.csv.tmp", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(root / ".compare.csv.tmp", root / "compare.csv")
    _write_atomic(root / "compare.json", json.dumps({"date": date, "machine": meta,
                                                     "results": results}, indent=1) + "\n")
    table = markdown(rows, header)
    _write_atomic(root / "compare.md", table)
    strips = {cls.name: torch.load(root / cls.name / "translations.pt", weights_only=True)
              for cls in classes}
    picture = save_png(figure(strips, args.n_styles), root / "compare.png")
    _say(table)
    _say(f"written: {root / 'compare.csv'}, compare.json, compare.md, {picture}")
    return 0
