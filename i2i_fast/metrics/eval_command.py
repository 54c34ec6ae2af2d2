"""``i2i-fast eval``: evaluate a checkpoint (or a stand-in baseline) on a synthetic set.

    i2i-fast eval --checkpoint CKPT [--data synthetic:NAME] [--n-inputs N] [--n-styles K]
                  [--seed S] [--mode latent|reference|encoded ...] [--direction a2b|b2a ...]
                  [--resolution R] [--lpips-weights PATH] [--inception-weights PATH]
                  [--device DEV] [--batch-size B] [--out FILE.json] [--cache-dir DIR]
    i2i-fast eval --baseline identity|oracle|oracle-wrong-scene|random --data synthetic:NAME
                  --resolution R [...]

A thin layer over ``i2i_fast.metrics.evaluate``: prints the table, writes the JSON report.

The checkpoint is one written by ``i2i-fast train`` (``i2i_fast.train.checkpoint``); its
method is rebuilt from the stored name and configuration with the stored networks (EMA copies
included), and its training data spec is the default of --data.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

BASELINES = ("identity", "oracle", "oracle-wrong-scene", "random")


class UserError(Exception):
    """A bad argument or file: reported in one line, exit status 2."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--checkpoint", help="checkpoint file of a trained method")
    what.add_argument("--baseline", choices=BASELINES,
                      help="evaluate a stand-in translator instead (needs --data, --resolution)")
    p.add_argument("--data", help="synthetic:NAME (default: the checkpoint's data, if stored)")
    p.add_argument("--n-inputs", type=int, default=50, help="test inputs per source domain (50)")
    p.add_argument("--n-styles", type=int, default=10, help="outputs per input and target (10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the styles and references (0)")
    p.add_argument("--mode", action="append", choices=("latent", "reference", "encoded"),
                   help="latent, reference and/or encoded (repeat; default: latent for "
                        "two-domain methods, plus encoded - the ground-truth target's code, "
                        "with L1/LPIPS to it - for paired reference-guided ones such as "
                        "bicyclegan; latent and reference for multi-domain ones)")
    p.add_argument("--direction", action="append", choices=("a2b", "b2a"),
                   help="two-domain methods: a2b and/or b2a (default: both when supported)")
    p.add_argument("--resolution", type=int, help="image side (default: the method's image_size)")
    p.add_argument("--lpips-weights", help="local file of the LPIPS backbone (torchvision "
                                           "alexnet state dict); without it LPIPS is unavailable")
    p.add_argument("--lpips-net", choices=("alex", "vgg", "squeeze"), default="alex")
    p.add_argument("--inception-weights", help="local file of torchvision Inception3 weights for "
                                               "FID; without it FID is unavailable")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1... (cpu)")
    p.add_argument("--batch-size", type=int, default=8, help="inputs per translate call (8)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic set (0)")
    p.add_argument("--out", help="write the JSON report here")
    p.add_argument("--cache-dir", help="where the metric networks are cached "
                                       "(default ~/.cache/i2i_fast/metrics)")
    from i2i_fast.train.cli_commands import add_code_arguments

    add_code_arguments(p)


def load_checkpoint(path: str | os.PathLike, device: str, code: list[str] | None = None):
    """(method, data spec or None) from a checkpoint written by the trainer; `code`: its code
    references (``--set``; a checkpoint never supplies them)."""
    from i2i_fast.config import ConfigError
    from i2i_fast.train import checkpoint as checkpoint_lib
    from i2i_fast.train.cli_commands import note_printer
    from i2i_fast.train.errors import CheckpointError, TrainError
    from i2i_fast.train.translate import method_from_checkpoint

    try:
        saved = checkpoint_lib.load(Path(path).expanduser(), map_location="cpu")
        method = method_from_checkpoint(saved, path, device, code, note_printer("eval"))
    except CheckpointError as error:
        raise UserError(f"--checkpoint: {error}") from None
    except (TrainError, ConfigError) as error:
        raise UserError(str(error)) from None
    options = saved.get("train_options")
    data = options.get("data") if isinstance(options, dict) else None
    return method, data if isinstance(data, str) else None


def _baseline(name: str, data: str, resolution: int, data_seed: int):
    from i2i_fast.metrics import baselines

    kind = ("paired" if data == "synthetic:shapes-paired"
            else "unpaired" if data == "synthetic:shapes" else "multi_domain")
    if name == "identity":
        return baselines.IdentityBaseline(kind)
    if name == "random":
        return baselines.RandomBaseline(kind)
    return baselines.OracleBaseline(data, resolution, kind, seed=data_seed,
                                    scene_offset=1 if name == "oracle-wrong-scene" else 0)


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except UserError as error:
        print(f"i2i-fast eval: error: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    import torch

    from i2i_fast.metrics import engine, fid, lpips_distance

    try:
        device = torch.device(args.device)
    except RuntimeError as error:
        raise UserError(f"--device: {error}") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device: {args.device} asked for, but CUDA is not available")
    if args.checkpoint:
        method, stored_data = load_checkpoint(args.checkpoint, args.device, args.code)
        method.to(device)
        data = args.data or stored_data
        if data is None:
            raise UserError("--data: not given and the checkpoint stores no data spec; pass "
                            "--data synthetic:NAME")
    else:
        if not args.data or args.resolution is None:
            raise UserError("--baseline needs --data synthetic:NAME and --resolution R")
        data = args.data
        try:
            method = _baseline(args.baseline, data, args.resolution, args.data_seed)
        except ValueError as error:
            raise UserError(str(error)) from error
    try:
        lpips, lpips_status = lpips_distance.lpips_or_reason(args.lpips_weights, args.lpips_net,
                                                             device)
        inception, fid_status = None, None
        if args.inception_weights:
            inception = fid.InceptionFeatures(args.inception_weights, device=device)
        else:
            fid_status = ("unavailable: no Inception weights given (--inception-weights PATH); "
                          "they cannot be downloaded here")
    except (lpips_distance.LPIPSUnavailable, fid.FIDUnavailable) as error:
        raise UserError(str(error)) from error
    try:
        report = engine.evaluate(
            method, data, resolution=args.resolution, n_inputs=args.n_inputs,
            n_styles=args.n_styles, seed=args.seed, modes=args.mode, directions=args.direction,
            lpips=lpips, lpips_status=lpips_status, fid=inception, fid_status=fid_status,
            device=device, batch_size=args.batch_size, data_seed=args.data_seed,
            cache_dir=args.cache_dir,
        )
    except engine.EvaluationError as error:
        raise UserError(str(error)) from error
    print(report.table())
    if args.out:
        out = Path(args.out).expanduser()
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(report.to_json() + "\n")
        os.replace(tmp, out)
        print(f"report written to {out}")
    return 0
