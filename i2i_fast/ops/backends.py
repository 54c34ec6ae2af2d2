"""Backends and how one is chosen for each call.

A backend is a named set of implementations of the public operators ("reference", "cpu",
"triton", later "cuda"). Backends are registered first (``register_backend``); each operator family
(``i2i_fast.ops.normalization``, ...) then adds its implementations to them (``implement``).
Each backend says every reason it cannot run a given call (not built, wrong device,
unsupported dtype, operator missing); the dispatcher takes the first backend in priority order that
can. Forcing a backend (``I2I_FAST_BACKEND=name`` or ``with use_backend(name):``) never falls back
silently: a forced backend that cannot run a call raises an error saying why. ``use_backend``
holds for the current thread (or asyncio task) only: it is a ``contextvars.ContextVar``, so a
data-loading or serving thread keeps the automatic choice while another thread forces a backend.

Forward-mode automatic differentiation (``torch.func.jvp``, ``torch.autograd.forward_ad``): an
implementation computes the derivative along its inputs' tangents only if it says so
(``implement(..., forward_ad=True)``; every reference implementation does, PyTorch derives it).
While forward mode is in use, a call whose inputs carry tangents on any other implementation is
refused with an error naming the operator and the backend, so no operator, present or future,
returns a tangent of zero silently.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Callable, Iterator

import torch

# Its _current_level is the innermost open dual level (-1: none), as forward_ad itself reads it.
from torch.autograd import forward_ad as _forward_ad

BACKEND_ENV = "I2I_FAST_BACKEND"


class BackendError(RuntimeError):
    """A forced backend cannot run a call, or a backend name is unknown."""


class Backend:
    """A named set of operator implementations.

    Subclasses override ``unavailable_reason`` (why it cannot run at all in this process, or None)
    and ``unsupported_reasons`` (every reason it cannot take a particular input; empty when fine).
    """

    name: str = ""
    description: str = ""
    # True when every reason depends only on the operator, x's dtype, whether x is on the CPU or
    # on a CUDA device, and the state of the process: automatic choices are then cached.
    reasons_depend_on_device_and_dtype_only: bool = True

    def __init__(self) -> None:
        self.ops: dict[str, Callable] = {}
        # The operators whose implementation here computes forward-mode derivatives itself.
        self.forward_ad_ops: set[str] = set()

    def unavailable_reason(self) -> str | None:
        return None

    def unsupported_reasons(self, x: torch.Tensor) -> list[str]:
        return []

    def reasons(self, op: str, x: torch.Tensor) -> list[str]:
        """Every reason this backend cannot run `op` on `x` (empty if it can): the whole backend
        unavailable, no implementation of `op`, and each property of `x` it does not take."""
        found = []
        why = self.unavailable_reason()
        if why is not None:
            found.append(why)
        if op not in self.ops:
            found.append(f"the {self.name} backend has no {op} implementation")
        found.extend(self.unsupported_reasons(x))
        return found

    def reason(self, op: str, x: torch.Tensor) -> str | None:
        """Why this backend cannot run `op` on `x` (every reason, joined by "; "), or None."""
        found = self.reasons(op, x)
        return "; ".join(found) if found else None

    def forward_ad_reason(self, op: str) -> str | None:
        """Why this backend's implementation of `op` cannot take inputs that carry forward-mode
        tangents, or None if it computes their derivative."""
        if op in self.forward_ad_ops:
            return None
        return f"the {self.name} backend does not implement it"

    def automatic_reason(self, op: str, x: torch.Tensor) -> str | None:
        """Why automatic selection passes over this backend for this call (None: it may take
        it). The same as ``reason`` unless a backend runs some inputs only when forced."""
        return self.reason(op, x)


_BACKENDS: dict[str, Backend] = {}
_PRIORITY: list[Backend] = []
# The backend forced by the innermost use_backend() of this thread or task (None: not forced).
_forced: contextvars.ContextVar[str | None] = contextvars.ContextVar("i2i_fast_forced_backend",
                                                                       default=None)
_env_forced: str | None = os.environ.get(BACKEND_ENV) or None
# Automatic choices by (op, dtype, device), for CPU and CUDA tensors: the backend, and its
# implementation of the op (what ``select`` returns). Both emptied whenever backends change.
_automatic_choice: dict[tuple, Backend] = {}
_automatic_impl: dict[tuple, Callable] = {}


def register_backend(backend: Backend, priority: int) -> None:
    """Add a backend; lower priority numbers are tried first."""
    if backend.name in _BACKENDS:
        raise BackendError(f"backend {backend.name!r} is already registered")
    backend.priority = priority
    _forget_automatic_choices()
    _BACKENDS[backend.name] = backend
    _PRIORITY.append(backend)
    _PRIORITY.sort(key=lambda b: b.priority)


def implement(backend: str, op: str, fn: Callable, *, forward_ad: bool = False) -> None:
    """Make `fn` the implementation of operator `op` on `backend`.

    forward_ad: `fn` computes the forward-mode derivative along its inputs' tangents
    (torch.func.jvp, torch.autograd.forward_ad). Without it, a call whose inputs carry tangents
    is refused (see ``select``); a backend may also declare it for all its implementations
    (``Backend.forward_ad_reason``).
    """
    b = get_backend(backend)
    b.ops[op] = fn
    if forward_ad:
        b.forward_ad_ops.add(op)
    else:
        b.forward_ad_ops.discard(op)
    _forget_automatic_choices()


def _forget_automatic_choices() -> None:
    """Empties the caches of automatic choices (the backends or their implementations changed)."""
    _automatic_choice.clear()
    _automatic_impl.clear()


def backend_names() -> list[str]:
    return [b.name for b in _PRIORITY]


def get_backend(name: str) -> Backend:
    try:
        return _BACKENDS[name]
    except KeyError:
        raise BackendError(
            f"unknown backend {name!r}; expected one of {', '.join(backend_names())}"
        ) from None


def forced_backend() -> tuple[str, str] | None:
    """(name, what forced it) of the backend every call must use, or None."""
    forced = _forced.get()
    if forced is not None:
        return forced, "use_backend()"
    if _env_forced is not None:
        return _env_forced, f"{BACKEND_ENV}={_env_forced}"
    return None


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Run every i2i_fast operator inside the block on backend `name` (no fallback), in this
    thread or asyncio task only (other threads keep their own choice).

    >>> with use_backend("reference"):
    ...     y = i2i_fast.ops.adain(x, w, b)
    """
    get_backend(name)
    token = _forced.set(name)
    try:
        yield
    finally:
        _forced.reset(token)


def _select_backend(op: str, x: torch.Tensor) -> Backend:
    """The backend that runs `op` on `x`: the forced one, else the first able to."""
    by_context = _forced.get()
    forced = by_context if by_context is not None else _env_forced
    if forced is not None:
        backend = _BACKENDS.get(forced)
        if backend is None:
            get_backend(forced)  # raises with the list of valid names
        why = backend.reason(op, x)
        if why is not None:
            source = "use_backend()" if by_context is not None else f"{BACKEND_ENV}={forced}"
            raise BackendError(f"{op}: backend {forced!r} is forced by {source} but cannot run "
                               f"this call: {why}")
        return backend
    key = (op, x.dtype, x.device)
    chosen = _automatic_choice.get(key)
    if chosen is not None:
        return chosen
    for backend in _PRIORITY:
        if backend.automatic_reason(op, x) is None:
            if (x.is_cpu or x.is_cuda) and all(b.reasons_depend_on_device_and_dtype_only
                                               for b in _PRIORITY):
                _automatic_choice[key] = backend
                _automatic_impl[key] = backend.ops[op]
            return backend
    reasons = "; ".join(f"{b.name}: {b.automatic_reason(op, x)}" for b in _PRIORITY)
    raise BackendError(f"{op}: no backend can run this call ({reasons})")


def select(op: str, x: torch.Tensor) -> Callable:
    """The implementation of `op` that runs this call.

    Called on every operator call: with no backend forced, a CPU or CUDA tensor whose (op, dtype,
    device) was seen before costs one dict lookup. While forward-mode AD is in use (a dual level
    is open: torch.autograd.forward_ad.dual_level, torch.func.jvp), an implementation that does
    not compute forward-mode derivatives comes wrapped in a check that refuses tangents.
    """
    if _forward_ad._current_level >= 0:
        return _with_forward_ad_check(op, _select_backend(op, x))
    if _env_forced is None and _forced.get() is None:
        impl = _automatic_impl.get((op, x.dtype, x.device))
        if impl is not None:
            return impl
    return _select_backend(op, x).ops[op]


def _with_forward_ad_check(op: str, backend: Backend) -> Callable:
    """`backend`'s implementation of `op`, refusing inputs with forward-mode tangents unless it
    computes their derivative."""
    impl = backend.ops[op]
    why = backend.forward_ad_reason(op)
    if why is None:
        return impl

    def refusing_tangents(*args, **kwargs):
        if _has_tangent(args) or _has_tangent(tuple(kwargs.values())):
            raise NotImplementedError(
                f"{op}: forward-mode automatic differentiation (torch.func.jvp, "
                f"torch.autograd.forward_ad) is not supported here: {why}; the reference backend "
                f"computes it (with i2i_fast.ops.use_backend('reference'): ...)")
        return impl(*args, **kwargs)

    return refusing_tangents


def _has_tangent(arg: object) -> bool:
    """Whether `arg` (a tensor, a list or tuple of tensors, or anything else) carries a
    forward-mode tangent."""
    if isinstance(arg, torch.Tensor):
        return _forward_ad.unpack_dual(arg).tangent is not None
    if isinstance(arg, (list, tuple)):
        return any(_has_tangent(a) for a in arg)
    return False


def chosen_backend(op: str, x: torch.Tensor) -> str:
    """Name of the backend `select` would use for this call (for reports and tests).

    Several backends may share one implementation (the cpu and cuda backends call the same torch
    operator, which dispatches on the device), so the answer comes from the selection itself.
    """
    return _select_backend(op, x).name
