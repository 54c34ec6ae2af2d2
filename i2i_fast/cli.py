"""The `i2i-fast` command line."""

from __future__ import annotations

import argparse
import sys
import warnings


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
    if st.cuda_built:
        print(f"CUDA kernels included: architectures {st.cuda_arch_list}, nvcc "
              f"{st.cuda.nvcc_version} ({st.cuda.home})")
    else:
        print(f"CUDA kernels not included: {st.cuda_reason}")
    return 0


def _cmd_methods(args: argparse.Namespace) -> int:
    from i2i_fast.methods import list_methods

    infos = list_methods(args.pattern, check=not args.no_check)
    if not infos:
        print("no methods registered" + (f" matching {args.pattern!r}" if args.pattern else ""))
        return 0
    width = max(len(i.reachable_as) for i in infos)
    for info in infos:
        kind = "built-in" if info.builtin else "plugin"
        print(f"{info.reachable_as:{width}s}  {info.status:9s}  {kind:8s}  {info.distribution} "
              f"{info.version}  ({info.value})")
        for text in (info.clash, info.error):
            for line in (text or "").rstrip().splitlines():
                print(f"{'':{width}s}    | {line}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from i2i_fast import demo

    return demo.main(args)


def _cmd_compare(args: argparse.Namespace) -> int:
    from i2i_fast import compare

    return compare.main(args)


def _cmd_bench(args: argparse.Namespace) -> int:
    from i2i_fast.bench.arguments import BenchArgumentError

    try:
        return _run_bench(args)
    except BenchArgumentError as error:
        print(f"i2i-fast bench {args.bench_command}: error: {error}", file=sys.stderr)
        return 2


def _run_bench(args: argparse.Namespace) -> int:
    if args.bench_command == "method":
        from i2i_fast.bench import method_bench

        return method_bench.main(args)
    if args.bench_command == "resampling":
        from i2i_fast.bench import resampling_bench

        return resampling_bench.main(args)
    if args.bench_command == "latent-conv":
        from i2i_fast.bench import latent_conv_bench

        return latent_conv_bench.main(args)
    if args.bench_command == "output-conv":
        from i2i_fast.bench import output_conv_bench

        return output_conv_bench.main(args)
    if args.bench_command == "losses":
        from i2i_fast.bench import loss_bench

        return loss_bench.main(args)
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

    p = sub.add_parser("methods", help="list the registered methods and their packages; "
                                       "imports each one to check that it loads")
    p.add_argument("pattern", nargs="?", default=None, help="fnmatch pattern, e.g. 'mu*'")
    p.add_argument("--no-check", action="store_true",
                   help="read entry-point metadata only, as list_methods() does (import "
                        "nothing)")
    p.set_defaults(func=_cmd_methods)

    p = sub.add_parser("demo", help="train MUNIT on the bundled synthetic set on the CPU, write "
                                    "a grid, evaluate it, and time fused vs reference")
    from i2i_fast import demo

    demo.add_arguments(p)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("compare", help="train every chosen method at its CPU demo configuration, "
                                       "evaluate and time it; one table and one picture")
    from i2i_fast import compare

    compare.add_arguments(p)
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("build", help="compile the kernels now (e.g. before torchrun starts)")
    p.set_defaults(func=_cmd_build)

    from i2i_fast.train import cli_commands as train_commands

    p = sub.add_parser("train", help="train a method (torchrun for several processes)")
    train_commands.add_train_arguments(p)
    p.set_defaults(func=train_commands.run_train)

    p = sub.add_parser("translate", help="translate images with a trained checkpoint")
    train_commands.add_translate_arguments(p)
    p.set_defaults(func=train_commands.run_translate)

    from i2i_fast.official import command as official_command

    p = sub.add_parser("import-official", help="convert official MUNIT / StarGAN v2 checkpoints "
                                               "into an i2i_fast checkpoint")
    official_command.add_arguments(p)
    p.set_defaults(func=official_command.run)

    p = sub.add_parser("bench", help="benchmarks")
    bench_sub = p.add_subparsers(dest="bench_command", required=True)
    from i2i_fast.bench import (
        latent_conv_bench,
        loss_bench,
        method_bench,
        ops_bench,
        output_conv_bench,
        resampling_bench,
    )

    ops_bench.add_arguments(bench_sub.add_parser("ops", help="per-operator benchmark table"))
    resampling_bench.add_arguments(bench_sub.add_parser(
        "resampling", help="upsample_nearest, avg_pool, reflection_pad: eager, compile, fused"))
    latent_conv_bench.add_arguments(bench_sub.add_parser(
        "latent-conv", help="latent_conv2d at BicycleGAN's U-Net shapes, latent_conv_transpose2d at "
                            "DRIT's G_concat shapes: eager, compile, fused; "
                            "time and peak memory"))
    output_conv_bench.add_arguments(bench_sub.add_parser(
        "output-conv", help="output_conv2d at MUNIT's, MISO's and TUNIT's output layers: eager, "
                            "compile, fused"))
    loss_bench.add_arguments(
        bench_sub.add_parser("losses", help="GAN losses and R1 per method: eager, compile, fused"))
    method_bench.add_arguments(bench_sub.add_parser(
        "method", help="whole training iterations in images/s: reference vs fused"))
    p.set_defaults(func=_cmd_bench)

    from i2i_fast.metrics import eval_command

    p = sub.add_parser("eval", help="evaluate a checkpoint on a synthetic set (content IoU, "
                                    "target-domain accuracy, diversity, FID hook)")
    eval_command.add_arguments(p)
    p.set_defaults(func=_cmd_eval)
    return parser


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings as one line (no source location, no code line) on the command line."""
    kind = "" if category is UserWarning else f"{category.__name__}: "
    return f"i2i-fast: warning: {kind}{message}\n"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = warnings.formatwarning
    warnings.formatwarning = _one_line_warning
    try:
        return args.func(args)
    finally:
        warnings.formatwarning = previous


if __name__ == "__main__":
    sys.exit(main())
