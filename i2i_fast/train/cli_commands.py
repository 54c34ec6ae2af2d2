"""The ``i2i-fast train`` and ``i2i-fast translate`` commands (arguments and running them).

User errors (an unknown method, a bad ``--set``, missing data, an unreadable checkpoint, an
unavailable backend) are printed as one line, ``i2i-fast <command>: error: ...``, with exit
status 2 (1 for a run whose losses became NaN or infinite) and no traceback. Anything else is a
bug and keeps its traceback. Ctrl-C in train says the step reached and the last checkpoint
(exit status 130).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from ..config import ConfigError
from ..methods.base import PRECISIONS
from ..methods.errors import MethodUsageError
from ..methods.registry import MethodError
from .errors import TrainError


def _user_errors() -> tuple[type[Exception], ...]:
    errors: tuple[type[Exception], ...] = (TrainError, MethodError, ConfigError, MethodUsageError)
    # A BackendError (a forced backend that cannot run a call) can only come from an imported
    # i2i_fast.ops; importing it here just to name the class would build the kernels.
    backends = sys.modules.get("i2i_fast.ops.backends")
    return errors + ((backends.BackendError,) if backends is not None else ())


def run_reporting_errors(command: str, body: Callable[[], int]) -> int:
    """body(), with the user errors it raises printed as ``i2i-fast <command>: error: ...``."""
    try:
        return body()
    except _user_errors() as error:
        prefix = f"i2i-fast {command}: error: "
        rank = _rank_label()
        print(f"{prefix}{rank}{error}", file=sys.stderr, flush=True)
        return getattr(error, "exit_status", 2)


def install_cpu_allocator() -> None:
    """The caching CPU allocator (i2i_fast.cpu_allocator) for a training command: train, demo
    and compare install it unless I2I_FAST_CPU_CACHE=0 (measured, 2026-12-07, 2 threads: MUNIT's
    demo iteration 9 % faster fresh and 20 % after allocation churn, StarGAN v2 and BicycleGAN
    within noise; README "CPU allocation"). A bad I2I_FAST_CPU_CACHE is a one-line error."""
    from i2i_fast import cpu_allocator

    try:
        cpu_allocator.install_for_command()
    except ValueError as error:
        raise TrainError(str(error)) from None


def _rank_label() -> str:
    world = os.environ.get("WORLD_SIZE")
    return f"[rank {os.environ.get('RANK', '?')}] " if world and world != "1" else ""


# ----- train -----

def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("method", help="registered method name (see i2i-fast methods)")
    parser.add_argument("--data", help="dataset folder or synthetic:NAME (e.g. synthetic:shapes); "
                        "a resumed run reuses its own")
    parser.add_argument("--config", help="named configuration of the method or a YAML file "
                        "(new runs)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config value, e.g. --set max_iter=1000 "
                        "--set gen.dim=32 (repeatable; also on resume)")
    parser.add_argument("--run-dir", help="run folder (default runs/<method>)")
    parser.add_argument("--resume", metavar="auto|PATH",
                        help="auto: continue the run folder's latest checkpoint (or start a new "
                        "run if it has none); PATH: a checkpoint file or a folder of them")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N "
                        "(under torchrun each process uses cuda:LOCAL_RANK)")
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="fp32 (default), bf16 autocast, fp16 autocast + loss scaling (CUDA)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                        help="networks and inputs in channels_last memory format")
    parser.add_argument("--backend", help="force an i2i_fast.ops backend (reference, cpu, cuda, "
                        "triton) for the whole run; auto (default): the fastest that can run")
    parser.add_argument("--fused-adam", action=argparse.BooleanOptionalAction, default=None,
                        help="Adam with fused=True where the device has it (default on)")
    parser.add_argument("--seed", type=int, help="seed of the networks, data order and random "
                        "draws (default 0)")
    parser.add_argument("--log-every", type=int, help="steps between logged losses (default 100)")
    parser.add_argument("--sample-every", type=int,
                        help="steps between sample grids (default 1000)")
    parser.add_argument("--checkpoint-every", type=int,
                        help="steps between checkpoints (default 5000; one is always written at "
                        "the end)")
    parser.add_argument("--keep-checkpoints", type=int,
                        help="how many recent checkpoints stay on disk (default 3)")
    parser.add_argument("--workers", type=int, help="DataLoader worker processes (default 2)")
    parser.add_argument("--n-samples", type=int, help="images in the sample grid (default 8)")
    parser.add_argument("--skip-bad-images", action="store_true", default=None,
                        help="folder datasets: leave unreadable image files out (each named "
                        "once, all listed in <run>/skipped_images.txt) instead of stopping with "
                        "an error naming them")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no progress bar: the losses as plain lines every --log-every "
                        "steps instead (for log files)")


def run_train(args: argparse.Namespace) -> int:
    from .options import TrainOptions
    from .trainer import Trainer

    options = TrainOptions(
        method=args.method, data=args.data, config=args.config, overrides=list(args.overrides),
        run_dir=args.run_dir, resume=args.resume, device=args.device, precision=args.precision,
        channels_last=args.channels_last, backend=args.backend, fused_adam=args.fused_adam,
        seed=args.seed, log_every=args.log_every, sample_every=args.sample_every,
        checkpoint_every=args.checkpoint_every, keep_checkpoints=args.keep_checkpoints,
        workers=args.workers, n_samples=args.n_samples,
        skip_bad_images=args.skip_bad_images, progress=args.progress,
    )
    trainer = None

    def body() -> int:
        nonlocal trainer
        install_cpu_allocator()
        trainer = Trainer(options)
        try:
            trainer.run()
        except KeyboardInterrupt:
            print(f"i2i-fast train: interrupted at step {trainer.step}; last checkpoint written: "
                  f"{trainer.last_checkpoint or 'none by this process'} (continue with "
                  f"--resume auto)", file=sys.stderr, flush=True)
            return 130
        return 0

    return run_reporting_errors("train", body)


# ----- translate -----

def add_translate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a checkpoint file written by "
                        "i2i-fast train (runs/<method>/checkpoints/step_N.pt)")
    parser.add_argument("--input", required=True, help="an image file or a folder of images")
    parser.add_argument("--n-styles", type=int, help="random styles per input (default 3; 1 with "
                        "--reference)")
    parser.add_argument("--reference", help="an image whose style every output takes")
    parser.add_argument("--target-domain", help="multi-domain methods: index or name of the "
                        "target domain")
    parser.add_argument("--out", default="translations", help="output folder (default "
                        "./translations)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random styles (default 0)")
    parser.add_argument("--batch-size", type=int, default=8, help="inputs per forward pass")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    add_code_arguments(parser)


def add_code_arguments(parser: argparse.ArgumentParser) -> None:
    """--set for the code references of a method rebuilt from a checkpoint (translate, eval)."""
    parser.add_argument("--set", dest="code", action="append", default=[],
                        metavar="KEY=package.module:function",
                        help="a code reference of the method's configuration (e.g. StarGAN v2's "
                        "hpf_masks); a checkpoint never supplies one (repeatable)")


def note_printer(command: str) -> Callable[[str], None]:
    """report(line) for library calls: ``i2i-fast <command>: note: line`` on stderr."""
    return lambda line: print(f"i2i-fast {command}: note: {line}", file=sys.stderr, flush=True)


def run_translate(args: argparse.Namespace) -> int:
    def body() -> int:
        from pathlib import Path

        from .distributed import parse_device
        from .images import input_paths
        from .translate import load_method, parse_domain, translate_files

        device = parse_device(args.device, 0, 1)
        inputs = input_paths(args.input, "--input")
        reference = None
        if args.reference is not None:
            reference = Path(args.reference)
            if not reference.is_file():
                raise TrainError(f"--reference {reference}: no such file")
        method = load_method(args.checkpoint, device, args.code, note_printer("translate"))
        result = translate_files(method, inputs, args.out, n_styles=args.n_styles,
                                 reference=reference, target_domain=parse_domain(args.target_domain),
                                 seed=args.seed, batch_size=args.batch_size)
        for note in result.notes:
            note_printer("translate")(note)
        print(f"{len(result.outputs)} images from {len(inputs)} input(s) in {args.out}; "
              f"grid {result.grid}")
        return 0

    return run_reporting_errors("translate", body)
