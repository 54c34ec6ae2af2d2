"""Short, seeded training runs of a method, and the comparison of their losses.

What the conformance check (``check_method``) and the project's method tests share:

- ``random_batch(method, n, seed)``: a batch of the method's data kind from a seeded generator
  (images uniform in [-1, 1], domain labels uniform over the method's domains);
- ``train_losses(...)``: build a method from a seed and run a few ``train_step``s on a backend, in
  float32 or float64, returning the losses of every step as floats;
- ``compare_losses(...)``: the comparison of two such histories at a stated tolerance, with a
  message naming every step and loss that differs.

Why float64, and how float32 is compared (measured; see ``FLOAT32_REL_PER_STEP``): two paths that
compute the same math (the reference backend and a fused one, eager and compiled, one process and
two) round differently. In float64 the losses of several iterations agree to ~1e-15; in float32
one forward/backward agrees to ~1e-6, but every optimizer step amplifies the rounding: Adam
divides each gradient by its running magnitude, so a gradient that is zero up to rounding (the
bias of a convolution feeding an instance norm) becomes an update of +-lr whose sign depends on
the rounding, and on another CPU (another SIMD width, another summation order) a different sign.
So a real difference in the math is looked for in float64, with a tight tolerance, over several
iterations; float32 runs are compared at 10x the drift measured at each iteration (see
FLOAT32_REL_PER_STEP), over their first two iterations.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch

# Relative tolerances (|a - b| <= rel * max(|a|, |b|) + abs) of loss comparisons.
FLOAT64_REL, FLOAT64_ABS = 1e-9, 1e-12
# float32: 10x the largest relative gap between the reference and the fused backend measured by
# benchmarks/equivalence_drift.py (MUNIT and StarGAN v2 `tiny`, 20 seeds, 1 and 2 threads; AMD
# EPYC, torch 2.14.1; results/equivalence-drift-20261206-224720.json), per iteration:
#   measured  7.9e-5, 1.9e-4, 2.8e-3, 1.8e-2  (StarGAN v2; MUNIT: 5.4e-7, 4.0e-6, 1.6e-6, 3.3e-5)
# The gap is there from the first iteration because StarGAN v2 steps D before its second D loss
# and G before its second G loss, and its first Adam steps (beta1 = 0) move every parameter by
# +-lr whatever the size of its gradient. Iterations 3 and 4 are listed for completeness: a bound
# of 3e-2 or 2e-1 tells little, so float32 runs are compared over two iterations, and float64
# ones (gaps ~1e-14) over as many as wanted.
FLOAT32_REL_PER_STEP = (1e-3, 2e-3, 3e-2, 2e-1)
FLOAT32_ABS = 1e-6


class Tolerance:
    """A relative and an absolute tolerance, with the reason it is what it is."""

    def __init__(self, rel: float, abs: float, why: str) -> None:  # noqa: A002 - as pytest.approx
        self.rel, self.abs, self.why = rel, abs, why

    def close(self, a: float, b: float) -> bool:
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return abs(a - b) <= self.rel * max(abs(a), abs(b)) + self.abs

    def __repr__(self) -> str:
        return f"rel {self.rel:g}, abs {self.abs:g} ({self.why})"


FLOAT64 = Tolerance(FLOAT64_REL, FLOAT64_ABS, "float64: only rounding differs")
FLOAT32_FIRST = Tolerance(FLOAT32_REL_PER_STEP[0], FLOAT32_ABS,
                          "float32, first iteration: 10x the measured drift")


def float32_tolerances(steps: int) -> list[Tolerance]:
    """The tolerance of each of the first `steps` iterations of two float32 runs (10x the measured
    drift of that iteration)."""
    if not 1 <= steps <= len(FLOAT32_REL_PER_STEP):
        raise ValueError(f"float32_tolerances: steps: expected 1 to {len(FLOAT32_REL_PER_STEP)} "
                         f"(measured iterations), got {steps}")
    return [Tolerance(rel, FLOAT32_ABS, f"float32, iteration {i + 1}: 10x the measured drift")
            for i, rel in enumerate(FLOAT32_REL_PER_STEP[:steps])]


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """torch's default floating point dtype inside the block (what a method's parameters and its
    random draws are made in)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def num_domains(config: Any) -> int:
    """The number of domains a method's batches hold (config.num_domains, else
    config.num_clusters, else 2)."""
    value = getattr(config, "num_domains", getattr(config, "num_clusters", 2))
    return value if isinstance(value, int) and value >= 1 else 2


def random_batch(data_kind: str, config: Any, n: int, seed: int,
                 dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """A batch of `data_kind` items (see i2i_fast.data) with n items of config.image_size², drawn
    from a generator seeded with `seed`: images uniform in [-1, 1] (drawn in float64, then cast, so
    float32 and float64 batches hold the same values up to rounding), labels uniform."""
    g = torch.Generator().manual_seed(seed)
    size = config.image_size
    k = num_domains(config)

    def image() -> torch.Tensor:
        return (torch.rand(n, 3, size, size, generator=g, dtype=torch.float64) * 2 - 1).to(dtype)

    def labels() -> torch.Tensor:
        return torch.randint(0, k, (n,), generator=g)

    if data_kind in ("unpaired", "paired"):
        return {"a": image(), "b": image()}
    if data_kind == "multi_domain":
        return {"image": image(), "domain": labels()}
    if data_kind == "reference":
        return {"image": image(), "image2": image(), "domain": labels()}
    if data_kind == "multi_domain_reference":
        batch = {"image": image(), "domain": labels()}
        batch["ref"], batch["ref2"] = image(), image()
        batch["ref_domain"] = labels()
        return batch
    if data_kind == "unlabelled":  # + the labelled images of a semi-supervised configuration
        batch = {"image": image(), "image_tf": image()}
        if getattr(config, "p_semi", 0) > 0:
            batch.update(sup_image=image(), sup_image_tf=image(), sup_domain=labels())
        return batch
    raise ValueError(f"random_batch: data_kind: expected one of unpaired, paired, multi_domain, "
                     f"reference, multi_domain_reference, unlabelled, got {data_kind!r}")


def build_method(cls: type, config: Any, seed: int = 0, context: Any = None) -> Any:
    """cls(config) built after torch.manual_seed(seed), from a copy of config."""
    torch.manual_seed(seed)
    return cls(copy.deepcopy(config), context)


def run_steps(method: Any, steps: int, batch_size: int | None = None, first_step: int = 0,
              backend: str | None = None, dtype: torch.dtype = torch.float32,
              batch_seed: int = 0) -> list[dict[str, float]]:
    """The losses (as floats) of `steps` train_steps of `method`, from iteration `first_step`, on
    random batches seeded batch_seed + step, with `backend` forced (None: automatic)."""
    from .. import ops

    n = batch_size or method.config.batch_size
    history = []
    scope = ops.use_backend(backend) if backend else contextlib.nullcontext()
    with scope, default_dtype(dtype):
        for step in range(first_step, first_step + steps):
            batch = random_batch(method.data_kind, method.config, n, batch_seed + step, dtype)
            losses = method.train_step(batch, step)
            history.append({name: float(value.detach()) if isinstance(value, torch.Tensor)
                            else float(value) for name, value in losses.items()})
    return history


def train_losses(cls: type, config: Any, steps: int, backend: str | None = None,
                 dtype: torch.dtype = torch.float32, seed: int = 0,
                 batch_size: int | None = None) -> tuple[list[dict[str, float]], Any]:
    """(losses of every step, the method) of a run of `steps` iterations from seed `seed`: the
    method is built with `dtype` as the default dtype, so its parameters and random draws are in
    that dtype."""
    with default_dtype(dtype):
        method = build_method(cls, config, seed)
    return run_steps(method, steps, batch_size, backend=backend, dtype=dtype), method


def loss_differences(a: Sequence[dict[str, float]], b: Sequence[dict[str, float]],
                     tolerances: Sequence[Tolerance] | Tolerance) -> list[str]:
    """Every (step, loss) where the histories a and b differ beyond the step's tolerance, as
    lines; also different step counts or loss names."""
    if isinstance(tolerances, Tolerance):
        tolerances = [tolerances] * len(a)
    problems = []
    if len(a) != len(b):
        problems.append(f"{len(a)} steps vs {len(b)}")
    for step, (losses_a, losses_b, tol) in enumerate(zip(a, b, tolerances)):
        if losses_a.keys() != losses_b.keys():
            problems.append(f"step {step}: losses {sorted(losses_a)} vs {sorted(losses_b)}")
            continue
        for name in losses_a:
            x, y = losses_a[name], losses_b[name]
            if not tol.close(x, y):
                gap = abs(x - y) / max(abs(x), abs(y), 1e-30)
                problems.append(f"step {step}: {name}: {x!r} vs {y!r} (relative gap {gap:.2e}; "
                                f"tolerance {tol})")
    return problems


def relative_gaps(a: Sequence[dict[str, float]], b: Sequence[dict[str, float]]
                  ) -> list[float]:
    """The largest relative gap |x - y| / max(|x|, |y|) over the losses of each step."""
    gaps = []
    for losses_a, losses_b in zip(a, b):
        worst = 0.0
        for name in losses_a.keys() & losses_b.keys():
            x, y = losses_a[name], losses_b[name]
            scale = max(abs(x), abs(y))
            if scale > 0:
                worst = max(worst, abs(x - y) / scale)
        gaps.append(worst)
    return gaps
