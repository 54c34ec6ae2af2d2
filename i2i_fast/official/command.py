"""``i2i-fast import-official METHOD FILE [FILE ...] --config NAME --out OUT.pt``."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("method", help="munit (NVlabs/MUNIT gen_*.pt, dis_*.pt, optimizer.pt) or "
                        "stargan_v2 (clovaai/stargan-v2 *_nets_ema.ckpt, *_nets.ckpt, "
                        "*_optims.ckpt)")
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="official checkpoint files of one training run and iteration")
    parser.add_argument("--config", required=True,
                        help="the method's named configuration the files were trained with "
                        "(e.g. edges2shoes, summer2winter, afhq, celeba_hq) or a YAML file")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override one config value (repeatable)")
    parser.add_argument("--out", required=True, help="the i2i_fast checkpoint to write")
    parser.add_argument("--step", type=int, help="iterations done (default: from the file "
                        "names, e.g. 100000_nets_ema.ckpt)")


def run(args: argparse.Namespace) -> int:
    from ..train.cli_commands import run_reporting_errors

    def body() -> int:
        from .importer import import_official

        result = import_official(args.method, args.files, config=args.config,
                                 out=args.out, overrides=args.overrides, step=args.step)
        for note in result.notes:
            print(f"note: {note}")
        print(f"wrote {result.path}: {result.method} (config {result.config}) at step "
              f"{result.step} from {', '.join(result.files)}; use it with i2i-fast translate "
              f"--checkpoint {result.path}, i2i-fast eval, or i2i-fast train {result.method} "
              f"--resume {result.path} --data ...")
        return 0

    return run_reporting_errors("import-official", body)
