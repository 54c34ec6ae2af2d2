"""The pieces every operator family's argument checks are made of (``<family>/checks.py``).

Every message names the operator, the argument, what was expected and what came;
csrc/common/checks.h writes the same words for the compiled kernels. The public functions run
their operator's checks before a backend is chosen, so every backend (the reference included)
sees only valid calls.

Numbers may be symbolic (torch.SymFloat / SymInt) where torch.compile traces a fake
implementation with number arguments that change between calls (or dynamic=True): they are
compared (which records guards) but returned as they came, never turned into a Python float
(which would fix their value).
"""

from __future__ import annotations

import sys

import torch

FLOATING = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
LOW_PRECISION = (torch.float16, torch.bfloat16)
ACTIVATIONS = {None: "none", "none": "none", "relu": "relu", "leaky_relu": "leaky_relu"}
LARGEST_FLOAT = sys.float_info.max
NUMBER = (int, float, torch.SymInt, torch.SymFloat)
SYMBOLIC = (torch.SymInt, torch.SymFloat)


def tensor(op: str, name: str, t: object) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{op}: {name}: expected a torch.Tensor, got {type(t).__name__}")
    return t


def floating(op: str, name: str, t: torch.Tensor) -> None:
    if t.dtype not in FLOATING:
        raise TypeError(
            f"{op}: {name}: expected a floating tensor (float16, bfloat16, float32 or float64), "
            f"got {t.dtype}"
        )


def on_device_of_x(op: str, x: torch.Tensor, named: tuple) -> None:
    """Each (name, tensor or None) in `named` on x's device."""
    for name, t in named:
        if t is not None and t.device != x.device:
            raise ValueError(f"{op}: {name}: expected device {x.device} (the device of x), got "
                             f"{t.device}")


def dtype_of_x(op: str, x: torch.Tensor, named: tuple) -> None:
    """Each (name, tensor or None) in `named` of x's dtype."""
    for name, t in named:
        if t is not None and t.dtype != x.dtype:
            raise TypeError(f"{op}: {name}: expected dtype {x.dtype} (the dtype of x), got "
                            f"{t.dtype}")


def norm_input(op: str, x: object) -> torch.Tensor:
    """x of a normalization: (N, C, L), (N, C, H, W) or (N, C, D, H, W), floating, non-empty."""
    x = tensor(op, "x", x)
    if not 3 <= x.dim() <= 5:
        raise ValueError(
            f"{op}: x: expected shape (N, C, L), (N, C, H, W) or (N, C, D, H, W), got "
            f"{x.dim()} dims with shape {tuple(x.shape)}"
        )
    floating(op, "x", x)
    non_empty(op, "x", x)
    return x


def norm_param(
    op: str, name: str, p: object, expected_shape: tuple[int, ...], x: torch.Tensor
) -> None:
    """A modulation parameter: given shape, x's device, x's dtype (or float32 for a 16-bit x)."""
    p = tensor(op, name, p)
    if p.shape != expected_shape:
        raise ValueError(
            f"{op}: {name}: expected shape {tuple(expected_shape)}, got {tuple(p.shape)}"
        )
    if p.device != x.device:
        raise ValueError(
            f"{op}: {name}: expected device {x.device} (the device of x), got {p.device}"
        )
    if p.dtype != x.dtype and not (p.dtype == torch.float32 and x.dtype in LOW_PRECISION):
        raise TypeError(
            f"{op}: {name}: expected dtype {x.dtype} (or float32 for a float16/bfloat16 x), "
            f"got {p.dtype}"
        )


def activation(op: str, value: object) -> str:
    """None / 'relu' / 'leaky_relu' → the name the kernels take ('none', 'relu', 'leaky_relu')."""
    try:
        return ACTIVATIONS[value]
    except (KeyError, TypeError):
        raise ValueError(
            f"{op}: activation: expected None, 'relu' or 'leaky_relu', got {value!r}"
        ) from None


def _number(value):
    """A checked number as the kernels take it: a float, or a symbolic number as it came."""
    return value if isinstance(value, SYMBOLIC) else float(value)


def eps(op: str, value: object, positive: bool = False) -> float:
    """A finite eps >= 0 (> 0 when `positive`: FRN's x · rsqrt(mean(x²) + eps) is 0/0 on an
    all-zero plane without it)."""
    if (type(value) is float and value == value and 0 <= value <= LARGEST_FLOAT
            and (value != 0 or not positive)):
        return value  # the common call, in one test
    if isinstance(value, bool) or not isinstance(value, NUMBER):
        raise TypeError(f"{op}: eps: expected a number, got {type(value).__name__}")
    # Comparisons rather than math.isfinite: under torch.compile a number argument may be a
    # symbolic float (once it has changed between calls, or with dynamic=True), whose comparisons
    # become guards, while math.isfinite cannot be traced. NaN is tested first (value == value):
    # comparing a symbolic float that is NaN fails inside torch.compile. (finite_number too.)
    if not (value == value and 0 <= value <= LARGEST_FLOAT) or (positive and value == 0):
        kind = "positive" if positive else "non-negative"
        raise ValueError(f"{op}: eps: expected a finite {kind} number, got {value}")
    return _number(value)


def negative_slope(op: str, value: object) -> float:
    if type(value) is float:
        return value  # the common call, in one test
    if isinstance(value, bool) or not isinstance(value, NUMBER):
        raise TypeError(f"{op}: negative_slope: expected a number, got {type(value).__name__}")
    return _number(value)


def choice(op: str, name: str, value: object, allowed: tuple[str, ...]) -> str:
    """A string option that must be one of `allowed`."""
    if not isinstance(value, str) or value not in allowed:
        expected = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{op}: {name}: expected one of {expected}, got {value!r}")
    return value


def finite_number(op: str, name: str, value: object) -> float:
    if type(value) is float and value == value and -LARGEST_FLOAT <= value <= LARGEST_FLOAT:
        return value  # the common call, in one test
    if isinstance(value, bool) or not isinstance(value, NUMBER):
        raise TypeError(f"{op}: {name}: expected a number, got {type(value).__name__}")
    if not (value == value and -LARGEST_FLOAT <= value <= LARGEST_FLOAT):  # see eps
        raise ValueError(f"{op}: {name}: expected a finite number, got {value}")
    return _number(value)


def batched(op: str, name: str, t: object, min_dim: int, shape_text: str) -> torch.Tensor:
    """A floating, non-empty tensor with at least `min_dim` dims (shape_text: e.g. '(N, ...)')."""
    t = tensor(op, name, t)
    floating(op, name, t)
    if t.dim() < min_dim:
        raise ValueError(f"{op}: {name}: expected shape {shape_text}, got shape {tuple(t.shape)}")
    non_empty(op, name, t)
    return t


def non_empty(op: str, name: str, t: torch.Tensor) -> None:
    if t.numel() == 0:
        raise ValueError(f"{op}: {name}: expected a non-empty tensor, got shape {tuple(t.shape)}")


def loss_grad(op: str, grad_loss: object, reduction: str, like: torch.Tensor,
              like_name: str) -> None:
    """The upstream gradient of a loss over `like` ((N, ...), named `like_name`): a floating
    tensor, (N,) for reduction 'none' (one loss per sample), else a scalar; on like's device."""
    grad_loss = tensor(op, "grad_loss", grad_loss)
    floating(op, "grad_loss", grad_loss)
    if reduction == "none":
        n = like.shape[0]
        if grad_loss.dim() != 1 or grad_loss.shape[0] != n:
            raise ValueError(f"{op}: grad_loss: expected shape ({n},) (reduction 'none'), got "
                             f"{tuple(grad_loss.shape)}")
    elif grad_loss.dim() != 0:
        raise ValueError(f"{op}: grad_loss: expected a scalar (reduction {reduction!r}), got "
                         f"shape {tuple(grad_loss.shape)}")
    if grad_loss.device != like.device:
        raise ValueError(f"{op}: grad_loss: expected device {like.device} (that of {like_name}), "
                         f"got {grad_loss.device}")


def loss_outputs(op: str, outputs: object, heads: bool) -> list[torch.Tensor] | tuple:
    """The discriminator outputs of a loss: one tensor or a non-empty list/tuple of tensors, every
    one floating and non-empty, with the same batch size, dtype and device; (N, ...) each, or
    (N, K, ...) when `heads` (a domain selects one of K heads). Returns the list (or tuple).

    These tensors are tiny and a loss is called several times per step, so the common case is
    one cheap pass; the detailed checks (and their messages) run only when it fails.
    """
    if isinstance(outputs, torch.Tensor):
        scales = [outputs]
    elif isinstance(outputs, (list, tuple)) and outputs:
        scales = outputs
    else:
        _explain_bad_outputs(op, outputs, heads)
    first = scales[0]
    min_dim = 2 if heads else 1
    if (isinstance(first, torch.Tensor) and first.dtype in FLOATING and first.dim() >= min_dim
            and first.numel() > 0):
        n, dtype, device = first.shape[0], first.dtype, first.device
        for x in scales:
            if not (isinstance(x, torch.Tensor) and x.dtype == dtype and x.dim() >= min_dim
                    and x.shape[0] == n and x.numel() > 0 and x.device == device):
                break
        else:
            return scales
    _explain_bad_outputs(op, outputs, heads)


def _explain_bad_outputs(op: str, outputs: object, heads: bool) -> None:
    """Raises the error that describes what is wrong with the outputs of a loss."""
    expected = "expected a tensor or a non-empty list of tensors"
    if isinstance(outputs, torch.Tensor):
        scales, names = [outputs], ["outputs"]
    elif isinstance(outputs, (list, tuple)):
        if not outputs:
            raise ValueError(f"{op}: outputs: {expected}, got an empty {type(outputs).__name__}")
        scales = list(outputs)
        names = [f"outputs[{i}]" for i in range(len(scales))]
    else:
        raise TypeError(f"{op}: outputs: {expected}, got {type(outputs).__name__}")
    min_dim, shape_text = ((2, "(N, K, ...) with one head per domain (domain is given)") if heads
                           else (1, "(N, ...) with a batch dimension"))
    first = batched(op, names[0], scales[0], min_dim, shape_text)
    for name, x in zip(names[1:], scales[1:]):
        batched(op, name, x, min_dim, shape_text)
        if x.shape[0] != first.shape[0]:
            raise ValueError(
                f"{op}: {name}: expected batch size {first.shape[0]} (that of outputs[0]), got "
                f"{x.shape[0]} (shape {tuple(x.shape)})"
            )
        if x.dtype != first.dtype:
            raise TypeError(
                f"{op}: {name}: expected dtype {first.dtype} (that of outputs[0]), got {x.dtype}"
            )
        if x.device != first.device:
            raise ValueError(
                f"{op}: {name}: expected device {first.device} (that of outputs[0]), got "
                f"{x.device}"
            )
    raise AssertionError(f"{op}: outputs: the fast check failed but no detailed check did")


def domain_metadata(op: str, domain: object, scales: list[torch.Tensor]) -> torch.Tensor:
    """(N,) int64/int32 head indices on the device of the outputs: what domain_indices checks
    without reading the values."""
    domain = tensor(op, "domain", domain)
    if domain.dtype not in (torch.int64, torch.int32):
        raise TypeError(
            f"{op}: domain: expected an int64 or int32 tensor of domain indices, got {domain.dtype}"
        )
    n = scales[0].shape[0]
    if domain.dim() != 1 or domain.shape[0] != n:
        raise ValueError(
            f"{op}: domain: expected shape ({n},) (one index per sample), got {tuple(domain.shape)}"
        )
    if domain.device != scales[0].device:
        raise ValueError(
            f"{op}: domain: expected device {scales[0].device} (that of outputs), got "
            f"{domain.device}"
        )
    return domain


def domain_indices(op: str, domain: object, scales: list[torch.Tensor],
                   bare: bool = False) -> torch.Tensor:
    """(N,) int64/int32 head indices, each in [0, K) for every scale (K = shape[1]); `bare`: the
    outputs were given as one tensor (named "outputs", else "outputs[i]").

    The range check reads the values (a host sync on a GPU); it is skipped while torch.compile
    traces, where the kernel checks instead.
    """
    domain = domain_metadata(op, domain, scales)
    if torch.compiler.is_compiling():
        return domain
    which = min(range(len(scales)), key=lambda i: scales[i].shape[1])
    k = scales[which].shape[1]
    low, high = torch.aminmax(domain)
    if low.item() < 0 or high.item() >= k:
        bad = int(((domain < 0) | (domain >= k)).nonzero()[0, 0])
        source = "outputs" if bare else f"outputs[{which}]"
        raise ValueError(
            f"{op}: domain: expected indices in [0, {k}) (K = {source}.shape[1]), got "
            f"{int(domain[bad])} at sample {bad}"
        )
    return domain
