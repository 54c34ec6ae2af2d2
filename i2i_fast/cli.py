"""The `i2i-fast` command line."""

from __future__ import annotations

import argparse
import sys


def _cmd_info(args: argparse.Namespace) -> int:
    from i2i_fast import info

    print(info.report())
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from i2i_fast import extension

    st = extension.load()
    if not st.loaded:
        print(f"build failed:\n{st.error}", file=sys.stderr)
        return 1
    how = f"built in {st.build_seconds:.0f} s" if st.built_now else "already built"
    print(f"kernels {how}: {st.library_path}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from i2i_fast.bench import ops_bench

    return ops_bench.main(args)


def _cmd_eval(args: argparse.Namespace) -> int:
    from i2i_fast.metrics import eval_command

    return eval_command.run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="i2i-fast",
        description="Fused kernels and training for multimodal image-to-image translation.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="versions, build state, operator x backend availability")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("build", help="compile the kernels now (e.g. before torchrun starts)")
    p.set_defaults(func=_cmd_build)

    p = sub.add_parser("bench", help="benchmarks")
    bench_sub = p.add_subparsers(dest="bench_command", required=True)
    from i2i_fast.bench import ops_bench

    ops_bench.add_arguments(bench_sub.add_parser("ops", help="per-operator benchmark table"))
    p.set_defaults(func=_cmd_bench)

    from i2i_fast.metrics import eval_command

    p = sub.add_parser("eval", help="evaluate a checkpoint on a synthetic set (content IoU, "
                                    "target-domain accuracy, diversity, FID hook)")
    eval_command.add_arguments(p)
    p.set_defaults(func=_cmd_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
