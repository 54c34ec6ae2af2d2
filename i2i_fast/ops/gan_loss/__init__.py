"""The GAN loss operators: gan_loss (every scale and every head in one pass) and r1_penalty.

Each checks its arguments (``checks``: the one definition every backend and the fake
implementations run), picks a backend (see ``backends``) and runs it. Every backend computes
the function defined in ``reference``. gan_loss's common call (string arguments, no domain, the
compiled kernels chosen) takes a fast path that leaves the checks of the outputs to the kernels
and runs the Python checks only to explain a call the kernels refused (``_fast_path_scales``).

gan_loss is differentiable in every output tensor (once: its backward is not differentiable
again). r1_penalty is differentiable twice: its input is a gradient taken with
``create_graph=True``, and its backward carries the gradient on into that graph (to D's
parameters). Forward mode (torch.func.jvp, torch.autograd.forward_ad): both are differentiable
on every backend but Triton, which refuses inputs with tangents (see ``backends``).

dtypes: float16, bfloat16, float32, float64 inputs; the loss is float32 (float64 for float64)
with float32 accumulation of blocks folded in float64; gradients have the dtype of their input.
"""

from __future__ import annotations

import torch

from .. import extension, triton_support
from ..backends import BackendError, implement, select
from . import checks, reference
from .checks import MODES, REDUCTIONS, TARGETS

OPS = ("gan_loss", "r1_penalty")
# Every valid (target, mode, reduction) of string arguments: gan_loss's fast path takes these.
_STRING_ARGUMENTS = frozenset((t, m, r) for t in TARGETS for m in MODES for r in REDUCTIONS)
# torch.ops.i2i_fast.gan_loss.default once the compiled extension has loaded, else None.
_fused_gan_loss = None
_is_compiling = torch.compiler.is_compiling


def _fast_path_scales(outputs: object, target: object, mode: object,
                      reduction: object) -> list | tuple | None:
    """The scales of a gan_loss call (without a domain) that the compiled kernels run directly,
    or None: the call takes the checked path.

    The fast path is the common call: one tensor or a list / tuple of tensors, and valid string
    target, mode and reduction, with the compiled kernels chosen for the first tensor. Only these
    few cheap tests run in Python; the kernels check the outputs themselves (every one a
    floating, non-empty tensor of the same batch size, dtype and device) and raise when they
    are not, and gan_loss then runs the full checks to raise the error that explains it. A loss
    is called several times per training step on tiny tensors, where the per-call host time
    matters.
    """
    try:
        if (target, mode, reduction) not in _STRING_ARGUMENTS:
            return None
    except TypeError:  # an unhashable argument: the checked path explains it
        return None
    # Exact types: isinstance(x, torch.Tensor) goes through a metaclass hook that costs more.
    if type(outputs) is torch.Tensor:
        scales = [outputs]
    elif type(outputs) in (list, tuple) and outputs and type(outputs[0]) is torch.Tensor:
        scales = outputs
    else:
        return None
    try:
        if select("gan_loss", scales[0]) is not _fused_gan_loss:
            return None
    except BackendError:  # a forced backend that cannot run it: the checked path says so
        return None
    return scales


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
    if domain is None and _fused_gan_loss is not None and not _is_compiling():
        scales = _fast_path_scales(outputs, target, mode, reduction)
        if scales is not None:
            try:
                return _fused_gan_loss(scales, mode, target, 0.0, None, reduction)
            except Exception as error:  # noqa: BLE001 - explained below, or raised as it came
                failure = error
            # The kernel refused the call: the checks raise the error that says which argument
            # is wrong, what was expected and what came; if they find nothing wrong, the
            # kernel's own error stands.
            checks.gan_loss(outputs, mode, target, 0.0, None, reduction)
            raise failure
    # Every backend takes the operator's arguments: (outputs, mode, target, label, domain,
    # reduction), target "real" / "fake" / "generator" or "label" with the value `label`.
    target, label = checks.api_target(op, target)
    scales = checks.gan_loss(outputs, mode, target, label, domain, reduction,
                             read_domain_values=True)
    return select(op, scales[0])(scales, mode, target, label, domain, reduction)


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
    weight = checks.r1_penalty(grads, weight, reduction)
    return select("r1_penalty", grads)(grads, weight, reduction)


def _gan_loss_reference(outputs, mode, target, label, domain, reduction):
    """The reference definition called with the operator's arguments."""
    return reference.gan_loss(outputs, label if target == "label" else target, mode, domain,
                              reduction)


implement("reference", "gan_loss", _gan_loss_reference)
implement("reference", "r1_penalty", reference.r1_penalty)
if extension.state().loaded:
    from . import fake as _fake

    _fake.register()
    _fused_gan_loss = torch.ops.i2i_fast.gan_loss.default
    # The same operators on both devices: the dispatcher runs the CPU or the CUDA kernel by the
    # device of the inputs (the cuda backend is available only when the library has CUDA kernels).
    # Their autograd computes forward-mode derivatives too (csrc/gan_loss/ops.cpp).
    for _backend in ("cpu", "cuda"):
        implement(_backend, "gan_loss", _fused_gan_loss, forward_ad=True)
        implement(_backend, "r1_penalty", torch.ops.i2i_fast.r1_penalty.default, forward_ad=True)
if triton_support.state().unavailable_reason is None:
    from . import triton as _triton

    implement("triton", "gan_loss", _triton.gan_loss)
    implement("triton", "r1_penalty", _triton.r1_penalty)
