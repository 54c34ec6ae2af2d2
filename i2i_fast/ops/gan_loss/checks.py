"""The argument checks of the GAN loss operators: one function per operator.

The one definition that every Python entry point runs: the public functions (``__init__``), the
Triton operators (``triton.py``) and the fake implementations (``fake.py``). The public
functions take a target as "real" / "fake" / "generator" or a number; the operators as
(target, label), a number being ("label", number): ``api_target`` converts.
``csrc/gan_loss/checks.h`` is the C++ mirror for the compiled kernels: the same checks in the
same order with the same words, which tests/test_operator_checks.py compares on every entry
point.

Domain indices: their values are read (a host sync on a GPU) only where ``read_domain_values``
says so (the public functions, outside torch.compile); everywhere else their dtype, shape and
device are checked, and a kernel gives a NaN loss for an index outside [0, K).
"""

from __future__ import annotations

import torch

from .. import checks

MODES = ("lsgan", "nsgan", "hinge", "wgan", "sigmoid_bce")
LABEL_MODES = ("lsgan", "nsgan", "sigmoid_bce")  # the modes that take a numeric label
TARGETS = ("real", "fake", "generator")  # and a number (the operators: "label" and its value)
REDUCTIONS = ("mean", "sum", "none")


def _bad_target(op: str, target: object) -> ValueError:
    return ValueError(f"{op}: target: expected 'real', 'fake', 'generator' or a number, got "
                      f"{target!r}")


def api_target(op: str, target: object) -> tuple[str, float]:
    """A public function's target as the operators take it: (target, 0.0) for a name, ("label",
    value) for a number."""
    if isinstance(target, str):
        if target == "label":  # an operator's spelling of a number, not a name a user gives
            raise _bad_target(op, target)
        return target, 0.0
    return "label", checks.finite_number(op, "target", target)


def loss_function(op: str, mode: object, target: object, label: object) -> None:
    """mode, and target ('real', 'fake', 'generator', or 'label' with a finite `label`, which
    lsgan, nsgan and sigmoid_bce only define; sigmoid_bce's is a probability, in [0, 1])."""
    checks.choice(op, "mode", mode, MODES)
    if target == "label":
        label = checks.finite_number(op, "target", label)
        if mode not in LABEL_MODES:
            raise ValueError(f"{op}: target: a numeric label ({label}) is only defined for mode "
                             f"'lsgan', 'nsgan' or 'sigmoid_bce'; mode {mode!r} takes 'real', "
                             "'fake' or 'generator'")
        if mode == "sigmoid_bce" and not 0.0 <= label <= 1.0:
            raise ValueError(f"{op}: target: expected a label in [0, 1] for mode 'sigmoid_bce' "
                             f"(a probability), got {label}")
    elif not (isinstance(target, str) and target in TARGETS):
        raise _bad_target(op, target)


def gan_loss(outputs, mode, target, label, domain, reduction, op: str = "gan_loss",
             read_domain_values: bool = False) -> list[torch.Tensor] | tuple:
    """outputs: a tensor or a non-empty list of tensors, (N, ...) each, or (N, K, ...) with a
    domain. Returns them as a list (or tuple)."""
    scales = checks.loss_outputs(op, outputs, heads=domain is not None)
    loss_function(op, mode, target, label)
    checks.choice(op, "reduction", reduction, REDUCTIONS)
    if domain is not None:
        if read_domain_values:
            checks.domain_indices(op, domain, scales, bare=isinstance(outputs, torch.Tensor))
        else:
            checks.domain_metadata(op, domain, scales)
    return scales


def gan_loss_backward(grad_loss, outputs, mode, target, label, domain, reduction) -> None:
    op = "gan_loss_backward"
    scales = gan_loss(outputs, mode, target, label, domain, reduction, op)
    checks.loss_grad(op, grad_loss, reduction, scales[0], "outputs[0]")


def r1_penalty(grads, weight, reduction, op: str = "r1_penalty") -> float:
    """grads (N, ...); returns the weight as the kernels take it."""
    checks.batched(op, "grads", grads, 1, "(N, ...) with a batch dimension")
    weight = checks.finite_number(op, "weight", weight)
    checks.choice(op, "reduction", reduction, REDUCTIONS)
    return weight


def r1_penalty_backward(grad_loss, grads, weight, reduction) -> None:
    op = "r1_penalty_backward"
    r1_penalty(grads, weight, reduction, op)
    checks.loss_grad(op, grad_loss, reduction, grads, "grads")
