"""``i2i-fast eval``: evaluate a checkpoint (or a stand-in baseline) on a synthetic set.

    i2i-fast eval --checkpoint CKPT [--data synthetic:NAME] [--n-inputs N] [--n-styles K]
                  [--seed S] [--mode latent|reference ...] [--direction a2b|b2a ...]
                  [--resolution R] [--lpips-weights PATH] [--inception-weights PATH]
                  [--device DEV] [--batch-size B] [--out FILE.json] [--cache-dir DIR]
    i2i-fast eval --baseline identity|oracle|oracle-wrong-scene|random --data synthetic:NAME
                  --resolution R [...]

A thin layer over ``i2i_fast.metrics.evaluate``: prints the table, writes the JSON report.

Checkpoint format read here (until the trainer's loader is wired in): ``torch.load(path,
weights_only=True)`` must give a dict with "method" (registered name), "method_config" (the
resolved config as a dict) and "training_state" (with "networks": the method's state_dict);
an optional "data" string is the default of --data. The method is rebuilt with
``create_method(name, config=method_config)`` and its networks loaded.
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
    p.add_argument("--mode", action="append", choices=("latent", "reference"),
                   help="latent and/or reference (repeat; default: latent for two-domain "
                        "methods, both for multi-domain ones)")
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


def load_checkpoint(path: str | os.PathLike, device: str):
    """(method, data spec or None) from a checkpoint file (format in the module doc)."""
    import torch

    from i2i_fast.methods import MethodError, RunContext, create_method

    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(f"--checkpoint: {file} does not exist or is not a file")
    try:
        ckpt = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - a corrupt or foreign file is a user error
        raise UserError(f"--checkpoint: {file} could not be read with torch.load("
                        f"weights_only=True): {type(error).__name__}: {error}") from error
    if not isinstance(ckpt, dict):
        raise UserError(f"--checkpoint: {file}: expected a dict, got {type(ckpt).__name__}")
    missing = [k for k in ("method", "method_config", "training_state") if k not in ckpt]
    if missing:
        raise UserError(f"--checkpoint: {file}: expected keys method, method_config, "
                        f"training_state; missing {missing} (keys: {sorted(ckpt)})")
    state = ckpt["training_state"]
    if not isinstance(state, dict) or "networks" not in state:
        raise UserError(f"--checkpoint: {file}: training_state has no 'networks'")
    if not isinstance(ckpt["method_config"], dict):
        raise UserError(f"--checkpoint: {file}: method_config: expected a dict, got "
                        f"{type(ckpt['method_config']).__name__}")
    try:
        method = create_method(str(ckpt["method"]), config=ckpt["method_config"],
                               context=RunContext(device=torch.device(device)))
        method.load_state_dict(state["networks"])
    except (MethodError, ValueError, TypeError, KeyError, RuntimeError) as error:
        raise UserError(f"--checkpoint: {file}: could not rebuild method {ckpt['method']!r}: "
                        f"{type(error).__name__}: {error}") from error
    data = ckpt.get("data")
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
        method, stored_data = load_checkpoint(args.checkpoint, args.device)
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
