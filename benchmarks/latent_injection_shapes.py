"""The latent-injection calls of a method's generator, and what fusing them can save.

    python benchmarks/latent_injection_shapes.py                     # bicyclegan, default + demo
    python benchmarks/latent_injection_shapes.py --configs demo --repeats 20 --out results.json

For each named configuration: one generator forward at the training batch (BicycleGAN runs its
two generations as one batch of 2 x half) records every ``LatentConv2d`` call (x shape, z shape,
weight shape, stride, padding, padding mode): the shapes the fused ``ops.latent_conv2d`` is
benchmarked at. Per call it then times, forward + backward (x, z, weight, bias), the reference
(``latent_conv2d``: the concatenation materialised, then the convolution) and the convolution of
x alone with the x part of the weight (what remains once the z term is computed without the
concatenation; its cost is O(C_out x C_z x k^2) per sample plus a border map), and reports the
bytes of the concatenated input (saved by the fused operator, forward and for backward).
The fused operator itself is measured by ``i2i-fast bench latent-conv`` (time and peak memory).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from i2i_fast.bench.latent_conv_bench import bicyclegan_calls
from i2i_fast.nn.latent_injection import latent_conv2d


def recorded_calls(config: str | None) -> list[dict]:
    return [{"x": c.x, "z": c.z, "weight": c.weight, "stride": c.stride, "padding": c.padding,
             "padding_mode": c.last} for c in bicyclegan_calls(config)]


def timed(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(call: dict, repeats: int) -> dict:
    torch.manual_seed(0)
    x = torch.randn(call["x"], requires_grad=True)
    z = torch.randn(call["z"], requires_grad=True)
    weight = torch.randn(call["weight"], requires_grad=True)
    bias = torch.randn(call["weight"][0], requires_grad=True)
    cx = call["x"][1]
    s, p, mode = call["stride"], call["padding"], call["padding_mode"]

    def reference():
        latent_conv2d(x, z, weight, bias, s, p, mode).sum().backward()

    def x_only():
        F.conv2d(x, weight[:, :cx], bias, s, p).sum().backward()

    n, _, h, w = call["x"]
    concat_bytes = n * (cx + call["z"][1]) * h * w * 4
    return {**call, "reference_ms": timed(reference, repeats) * 1e3,
            "x_conv_only_ms": timed(x_only, repeats) * 1e3, "concat_bytes": concat_bytes,
            "z_map_bytes": n * call["z"][1] * h * w * 4}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default="default,demo",
                   help="bicyclegan named configurations ('default': the official defaults)")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--no-timing", action="store_true")
    p.add_argument("--out", default=None, help="write the rows as JSON")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for config in args.configs.split(","):
        calls = recorded_calls(None if config == "default" else config)
        print(f"# bicyclegan {config}: {len(calls)} latent_conv2d calls per generator forward "
              f"(torch {torch.__version__}, {torch.get_num_threads()} threads, float32)")
        for call in calls:
            row = call if args.no_timing else measure(call, args.repeats)
            row = {"config": config, **row}
            rows.append(row)
            line = (f"x {row['x']}, z {row['z']}, weight {row['weight']}, stride {row['stride']}, "
                    f"padding {row['padding']}, {row['padding_mode']}")
            if not args.no_timing:
                line += (f": cat+conv {row['reference_ms']:.2f} ms, conv(x) alone "
                         f"{row['x_conv_only_ms']:.2f} ms (fwd+bwd); concatenation "
                         f"{row['concat_bytes'] / 2**20:.2f} MiB, of which the z map "
                         f"{row['z_map_bytes'] / 2**20:.2f} MiB")
            print(line, flush=True)
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
