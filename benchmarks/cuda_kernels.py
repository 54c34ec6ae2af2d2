"""The CUDA kernels outside pytest: for compute-sanitizer, ncu and torch.profiler.

    python benchmarks/cuda_kernels.py exercise
        Every normalization operator x layout x dtype x path (fused / split) on small odd shapes,
        and every GAN-loss / R1 kernel variant, forward and backward, once: for
        `compute-sanitizer --tool memcheck|racecheck` (which check every access of every kernel
        that runs). Exits 1 if an output or gradient is not finite.
    python benchmarks/cuda_kernels.py ncu-target
        A few AdaIN forward+backward calls (bf16, contiguous and channels-last, 8x256x64x64 and
        32x256x64x64) for `ncu` to record.
    python benchmarks/cuda_kernels.py profile [--copy-gbps X]
        torch.profiler of AdaIN forward and forward+backward at the benchmark shapes (bf16 and
        fp32, contiguous and channels-last): per-kernel device time, their sum per call, the bytes
        that must move (inputs read once, outputs written once) and the resulting GB/s, next to
        the floor bytes / copy bandwidth (measured here unless --copy-gbps is given).

Needs a GPU and the extension built with CUDA (see i2i_fast.extension).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import torch

import i2i_fast.ops as ops

PATH_ENV = "I2I_FAST_CUDA_NORM_PATH"
OPS = ("adain", "instance_norm", "layer_norm/munit", "layer_norm/standard")
PROFILE_SHAPES = ((8, 256, 64, 64), (8, 512, 16, 16), (32, 256, 64, 64), (8, 64, 256, 256))


def _call(op: str, x, w, b, activation):
    if op.startswith("layer_norm"):
        return ops.layer_norm(x, w, b, style=op.split("/")[1], activation=activation)
    return getattr(ops, op)(x, w, b, activation=activation)


def _inputs(op: str, shape, dtype, layout: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    n, c = shape[:2]
    x = torch.randn(shape, generator=g).to(dtype).cuda()
    if layout == "channels_last":
        perm = [0, *range(2, x.dim()), 1]
        x = x.permute(perm).contiguous().permute([perm.index(i) for i in range(x.dim())])
    pshape = (n, c) if op == "adain" else (c,)
    pdtype = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    w = (torch.rand(pshape, generator=g) + 0.5).to(pdtype).cuda()
    b = torch.randn(pshape, generator=g).to(pdtype).cuda()
    return x, w, b


def _exercise_losses(dtypes) -> int:
    """Every GAN-loss kernel variant once: each element function and reduction, one to nine
    scales (two launch groups), heads, long segments; R1 aligned (16-byte packs) and not."""
    failures = 0
    modes = (("lsgan", "real"), ("nsgan", 0.3), ("hinge", "real"), ("hinge", "fake"),
             ("wgan", "generator"))
    scale_sets = ([(8, 1, 16, 16), (8, 1, 8, 8), (8, 1, 4, 4)],
                  [(3, 1, 2 + i, 3) for i in range(9)], [(4, 1, 130, 131)])
    for dtype in dtypes:
        for mode, target in modes:
            for reduction in ("mean", "sum", "none"):
                cases = [(shapes, None) for shapes in scale_sets]
                cases.append(([(8, 3), (8, 3, 4, 4)], torch.randint(0, 3, (8,), device="cuda")))
                for shapes, domain in cases:
                    xs = [torch.randn(s, device="cuda").to(dtype).requires_grad_() for s in shapes]
                    with ops.use_backend("cuda"):
                        loss = ops.gan_loss(xs, target, mode, domain=domain, reduction=reduction)
                        grads = torch.autograd.grad(loss.sum(), xs)
                    if not all(bool(torch.isfinite(t).all()) for t in (loss, *grads)):
                        failures += 1
                        print(f"NON-FINITE gan_loss {mode} {target} {reduction} {dtype} {shapes}")
        for shape in ((8, 3, 64, 64), (3, 3, 5, 7)):
            g = (torch.randn(shape, device="cuda") * 1e-2).to(dtype).requires_grad_()
            with ops.use_backend("cuda"):
                loss = ops.r1_penalty(g, 0.5, "none")
                (dg,) = torch.autograd.grad(loss.sum(), g)
            if not (bool(torch.isfinite(loss).all()) and bool(torch.isfinite(dg).all())):
                failures += 1
                print(f"NON-FINITE r1_penalty {shape} {dtype}")
    return failures


def exercise() -> int:
    """Run every kernel variant once (both paths, every pack width and layout); the inputs are
    finite, so every output and gradient must be too (values are the tests' business)."""
    failures = 0
    # (3, 11, 32, 32) and (3, 11, 599): several teams per block with idle teams in the last one
    # (16-byte and scalar loads), for racecheck and synccheck.
    shapes = [(2, 3, 5, 7), (1, 2, 67, 45), (2, 16, 32, 32), (2, 24, 8, 8), (2, 5, 17),
              (3, 11, 32, 32), (3, 11, 599)]
    dtypes = (torch.float32, torch.bfloat16, torch.float16, torch.float64)
    for path in ("fused", "split"):
        os.environ[PATH_ENV] = path
        for op in OPS:
            for shape in shapes:
                for layout in ("contiguous", "channels_last"):
                    for dtype in dtypes:
                        x, w, b = _inputs(op, shape, dtype, layout)
                        xr, wr, br = (t.clone().requires_grad_() for t in (x, w, b))
                        with ops.use_backend("cuda"):
                            y = _call(op, xr, wr, br, "leaky_relu")
                            grads = torch.autograd.grad(y, (xr, wr, br), torch.randn_like(y))
                        if not all(bool(torch.isfinite(t).all()) for t in (y, *grads)):
                            failures += 1
                            print(f"NON-FINITE {path} {op} {shape} {layout} {dtype}")
    os.environ.pop(PATH_ENV, None)
    failures += _exercise_losses(dtypes)
    torch.cuda.synchronize()
    print(f"exercise: {failures} failures")
    return 1 if failures else 0


def ncu_target() -> int:
    for shape in ((8, 256, 64, 64), (32, 256, 64, 64)):
        for layout in ("contiguous", "channels_last"):
            x, w, b = _inputs("adain", shape, torch.bfloat16, layout)
            xr, wr, br = (t.clone().requires_grad_() for t in (x, w, b))
            gy = torch.randn_like(x)
            for _ in range(3):
                with ops.use_backend("cuda"):
                    y = ops.adain(xr, wr, br, activation="relu")
                    torch.autograd.grad(y, (xr, wr, br), gy)
    torch.cuda.synchronize()
    return 0


def _copy_gbps(numel: int, dtype) -> float:
    src = torch.randn(numel, device="cuda").to(dtype)
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    times = []
    for _ in range(20):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        dst.copy_(src)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return 2 * numel * src.element_size() / (statistics.median(times) * 1e-3) / 1e9


def _device_time_us(event) -> float:
    for name in ("self_device_time_total", "self_cuda_time_total"):
        value = getattr(event, name, None)
        if value is not None:
            return float(value)
    return 0.0


def profile(copy_gbps: float | None, iterations: int = 20) -> int:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    print(f"# AdaIN kernels under torch.profiler: {torch.cuda.get_device_name()}, "
          f"torch {torch.__version__}, {iterations} calls per case")
    print("| shape | dtype | layout | mode | kernels (avg µs per call) | sum µs | bytes MB "
          "| GB/s | floor µs | sum / floor |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for shape in PROFILE_SHAPES:
        for dtype in (torch.bfloat16, torch.float32):
            numel = 1
            for s in shape:
                numel *= s
            esize = torch.empty((), dtype=dtype).element_size()
            bandwidth = copy_gbps or _copy_gbps(numel, dtype)
            for layout in ("contiguous", "channels_last"):
                x, w, b = _inputs("adain", shape, dtype, layout)
                for mode in ("forward", "forward_backward"):
                    if mode == "forward":
                        def step():
                            with ops.use_backend("cuda"):
                                ops.adain(x, w, b, activation="relu")
                        nbytes = 2 * numel * esize
                    else:
                        xr, wr, br = (t.clone().requires_grad_() for t in (x, w, b))
                        gy = torch.randn_like(x)

                        def step():
                            with ops.use_backend("cuda"):
                                y = ops.adain(xr, wr, br, activation="relu")
                                torch.autograd.grad(y, (xr, wr, br), gy)
                        nbytes = 5 * numel * esize
                    for _ in range(3):
                        step()
                    torch.cuda.synchronize()
                    with torch_profile(activities=[ProfilerActivity.CPU,
                                                   ProfilerActivity.CUDA]) as prof:
                        for _ in range(iterations):
                            step()
                        torch.cuda.synchronize()
                    kernels = {}
                    for event in prof.key_averages():
                        t = _device_time_us(event)
                        if t > 0 and event.key and not event.key.startswith(("aten::",
                                                                             "i2i_fast::",
                                                                             "autograd::")):
                            kernels[event.key] = kernels.get(event.key, 0.0) + t / iterations
                    total = sum(kernels.values())
                    listing = "; ".join(f"{_short(name)}: {t:.1f}" for name, t in
                                        sorted(kernels.items(), key=lambda kv: -kv[1]))
                    floor_us = nbytes / (bandwidth * 1e9) * 1e6
                    gbps = nbytes / (total * 1e-6) / 1e9 if total else float("nan")
                    print(f"| {'x'.join(map(str, shape))} | {str(dtype)[6:]} | {layout} | {mode} "
                          f"| {listing} | {total:.1f} | {nbytes / 1e6:.1f} | {gbps:.0f} "
                          f"| {floor_us:.1f} | {total / floor_us:.2f} |")
    return 0


def _short(kernel_name: str) -> str:
    """'void i2i_fast::normalization::cuda::(anonymous namespace)::rows_fused_forward<float,
    float, 4>(...)' -> 'rows_fused_forward<float, float, 4>' (the template arguments say the dtype
    and the pack width)."""
    name = kernel_name
    for noise in ("void ", "i2i_fast::normalization::cuda::", "(anonymous namespace)::"):
        name = name.replace(noise, "")
    cut = name.find(">(")
    name = name[:cut + 1] if cut >= 0 else name.split("(")[0]
    name = name.replace("c10::BFloat16", "bf16").replace("c10::Half", "fp16")
    return name if len(name) <= 70 else name[:67] + "..."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("exercise", "ncu-target", "profile"))
    parser.add_argument("--copy-gbps", type=float, default=None)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device (torch.cuda.is_available() is False)", file=sys.stderr)
        return 2
    why = ops.get_backend("cuda").unavailable_reason()
    if why is not None:
        print(f"the cuda backend cannot run: {why}", file=sys.stderr)
        return 2
    if args.mode == "exercise":
        return exercise()
    if args.mode == "ncu-target":
        return ncu_target()
    return profile(args.copy_gbps)


if __name__ == "__main__":
    sys.exit(main())
