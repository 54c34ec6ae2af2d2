"""The GAN loss operators: gan_loss (every scale and every head in one pass) and r1_penalty.

Each checks its arguments, picks a backend (see ``backends``) and runs it. Every backend computes
the function defined in ``reference``.

gan_loss is differentiable in every output tensor (once: its backward is not differentiable
again). r1_penalty is differentiable twice: its input is a gradient taken with
``create_graph=True``, and its backward carries the gradient on into that graph (to D's
parameters).

dtypes: float16, bfloat16, float32, float64 inputs; the loss is float32 (float64 for float64)
with float32 accumulation of blocks folded in float64; gradients have the dtype of their input.
"""

from __future__ import annotations

import torch

from .. import checks, extension, triton_support
from ..backends import implement, select
from . import reference

OPS = ("gan_loss", "r1_penalty")
MODES = ("lsgan", "nsgan", "hinge", "wgan")
TARGETS = ("real", "fake", "generator")
REDUCTIONS = ("mean", "sum", "none")


def _target(op: str, target: object, mode: str) -> tuple[str, float]:
    """(name, label): ('real' / 'fake' / 'generator', 0.0), or ('label', a finite number) for
    lsgan and nsgan -- the target arguments of the operator."""
    if isinstance(target, str):
        if target not in TARGETS:
            raise ValueError(f"{op}: target: expected 'real', 'fake', 'generator' or a number, "
                             f"got {target!r}")
        return target, 0.0
    label = checks.finite_number(op, "target", target)
    if mode not in ("lsgan", "nsgan"):
        raise ValueError(f"{op}: target: a numeric label ({label}) is only defined for mode "
                         f"'lsgan' or 'nsgan'; mode {mode!r} takes 'real', 'fake' or 'generator'")
    return "label", label


def gan_loss(
    outputs: torch.Tensor | list[torch.Tensor] | tuple[torch.Tensor, ...],
    target: str | float,
    mode: str,
    domain: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """A GAN loss over every scale of a (multi-scale, multi-head) discriminator, fused.

    Args:
        outputs: the discriminator's output at one scale, or a list of them (one per scale, any
            sizes, e.g. MUNIT's 16x16, 8x8 and 4x4 patch maps). Each is (N, ...); with ``domain``,
            (N, K, ...) with one head per domain. Same N, dtype and device for all.
        target: "real", "fake" or "generator" (the generator's loss on fakes) for every mode; or a
            number, the label of lsgan/nsgan (e.g. 0.5 for DRIT's content discriminator).
        mode: the loss of one element x:
            "lsgan"  (x - label)^2; label 1 for "real"/"generator", 0 for "fake"
            "nsgan"  BCE with logits, softplus(x) - label * x (no overflow for any x)
            "hinge"  real: relu(1 - x); fake: relu(1 + x); generator: -x
            "wgan"   real: -x; fake: x; generator: -x
        domain: (N,) int64 or int32, the head of each sample (StarGAN v2, TUNIT); indices in
            [0, K). None: every element of every output counts.
        reduction: "mean": sum over scales of the scale's mean over all its (selected) elements
            (MUNIT: mean over the patches, summed over scales); "sum": sum over scales of the
            sum; "none": (N,), for each sample the sum over scales of the mean over its elements
            (so "mean" equals the mean of "none").
    Returns:
        A float32 scalar (float64 for float64 outputs), or (N,) with reduction "none".
    """
    op = "gan_loss"
    scales = checks.loss_outputs(op, outputs, heads=domain is not None)
    mode = checks.choice(op, "mode", mode, MODES)
    name, label = _target(op, target, mode)
    reduction = checks.choice(op, "reduction", reduction, REDUCTIONS)
    if domain is not None:
        checks.domain_indices(op, domain, scales)
    # Every backend takes the operator's arguments: (outputs, mode, target, label, domain,
    # reduction), target "real" / "fake" / "generator" or "label" with the value `label`.
    return select(op, scales[0])(scales, mode, name, label, domain, reduction)


def r1_penalty(grads: torch.Tensor, weight: float = 1.0, reduction: str = "mean") -> torch.Tensor:
    """The R1 penalty ``weight * reduce_n(sum over c, h, w of grads[n]^2)``.

    Args:
        grads: (N, ...), the gradient of D's output on real images with respect to those images,
            taken with ``create_graph=True`` so that the penalty reaches D's parameters.
        weight: StarGAN v2: 0.5 (times lambda_reg outside); TUNIT: 1 (times w_gp = 10 outside).
        reduction: "mean" over samples (both methods), "sum", or "none" ((N,)).
    Returns:
        A float32 scalar (float64 for float64 grads), or (N,) with reduction "none".

    Differentiable twice. torch.compile does not support double backward: compute ``grads`` with
    D running eagerly (the rest of the step may be compiled).
    """
    op = "r1_penalty"
    grads = checks.batched(op, "grads", grads, 1, "(N, ...) with a batch dimension")
    weight = checks.finite_number(op, "weight", weight)
    reduction = checks.choice(op, "reduction", reduction, REDUCTIONS)
    return select(op, grads)(grads, weight, reduction)


def _gan_loss_reference(outputs, mode, target, label, domain, reduction):
    """The reference definition called with the operator's arguments."""
    return reference.gan_loss(outputs, label if target == "label" else target, mode, domain,
                              reduction)


implement("reference", "gan_loss", _gan_loss_reference)
implement("reference", "r1_penalty", reference.r1_penalty)
if extension.state().loaded:
    from . import fake as _fake

    _fake.register()
    # The same operators on both devices: the dispatcher runs the CPU or the CUDA kernel by the
    # device of the inputs (the cuda backend is available only when the library has CUDA kernels).
    for _backend in ("cpu", "cuda"):
        implement(_backend, "gan_loss", torch.ops.i2i_fast.gan_loss.default)
        implement(_backend, "r1_penalty", torch.ops.i2i_fast.r1_penalty.default)
if triton_support.state().unavailable_reason is None:
    from . import triton as _triton

    implement("triton", "gan_loss", _triton.gan_loss)
    implement("triton", "r1_penalty", _triton.r1_penalty)
