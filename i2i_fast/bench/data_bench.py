"""Data throughput: synthetic rendering time per image, and the training loader's batches/s.

Run ``python -m i2i_fast.bench.data_bench [--resolutions 32 64 128 256] [--workers 0 2]``.
Medians over repeats, each repeat a fresh range of indices (rendering is not cached). Prints a
table; the figures depend on the machine's load, so compare runs made side by side.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

from i2i_fast.data import STYLE_ORDER, ResumableLoader, SyntheticDomain, open_dataset


def render_ms(style: str, resolution: int, images: int, repeats: int) -> tuple[float, float, float]:
    """(median, p20, p80) milliseconds per rendered image (image + mask)."""
    domain = SyntheticDomain(style, resolution, size=10**6, seed=0, split="bench", slot=0)
    domain.load(0)  # warm-up
    times = []
    for r in range(repeats):
        start = time.perf_counter()
        for i in range(images):
            domain.load(1 + r * images + i)
        times.append((time.perf_counter() - start) / images * 1e3)
    q = statistics.quantiles(times, n=5) if len(times) > 1 else [times[0]] * 4
    return statistics.median(times), q[0], q[3]


def loader_items_per_s(spec: str, kind: str, resolution: int, batch: int, workers: int,
                       batches: int) -> float:
    """Items per second of a ResumableLoader after its first batch (worker start excluded)."""
    ds = open_dataset(spec, kind, resolution=resolution)
    loader = ResumableLoader(ds, batch, num_workers=workers)
    next(loader)
    start = time.perf_counter()
    for _ in range(batches):
        next(loader)
    elapsed = time.perf_counter() - start
    loader.close()
    return batches * batch / elapsed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--resolutions", type=int, nargs="+", default=[32, 64, 128, 256])
    p.add_argument("--images", type=int, default=20, help="images per repeat")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--batches", type=int, default=20)
    args = p.parse_args(argv)

    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print("\nsynthetic rendering, ms per image (median [p20, p80])")
    print(f"{'style':>10} " + " ".join(f"{r:>20}" for r in args.resolutions))
    for style in STYLE_ORDER:
        cells = []
        for r in args.resolutions:
            med, lo, hi = render_ms(style, r, args.images, args.repeats)
            cells.append(f"{med:7.2f} [{lo:5.2f},{hi:6.2f}]")
        print(f"{style:>10} " + " ".join(f"{c:>20}" for c in cells))

    print(f"\nResumableLoader, synthetic:shapes unpaired (2 images per item), batch {args.batch}, "
          f"items/s")
    print(f"{'resolution':>10} " + " ".join(f"{f'workers={w}':>12}" for w in args.workers))
    for r in args.resolutions:
        rates = [loader_items_per_s("synthetic:shapes", "unpaired", r, args.batch, w, args.batches)
                 for w in args.workers]
        print(f"{r:>10} " + " ".join(f"{x:12.1f}" for x in rates))
    return 0


if __name__ == "__main__":
    sys.exit(main())
