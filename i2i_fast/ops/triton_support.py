"""What every family of Triton kernels shares: can Triton run here, operator registration, geometry.

- ``state()``: whether Triton kernels can run in this process and, if not, why. They run on CUDA
  tensors when a CUDA device is present, and on CPU tensors in the Triton interpreter
  (``TRITON_INTERPRET=1`` in the environment when ``i2i_fast.ops`` is first imported; numpy speed,
  for tests). Triton reads that variable when a kernel is defined (``@triton.jit``), so it cannot
  be switched on later in the same process.
- ``register_operator``: a ``torch.library.triton_op`` (torch.compile traces into its kernels)
  with an explicit fake implementation and autograd. In the interpreter the kernels cannot run on
  FakeTensors and torch does not trace interpreted kernels, so there the operator stays opaque to
  torch.compile (a custom operator that the compiled graph calls) instead of being decomposed
  into its kernels. Its function runs inside ``launch_device`` of its arguments: Triton launches
  on the current CUDA device and stream, so without it inputs on cuda:1 while cuda:0 is current
  would be read from the wrong device.
- Launch geometry helpers (``next_power_of_2``, ``cdiv``, ``min_programs``).
- ``compile_only(arch)``: compile kernels for a GPU architecture on a machine without a GPU, to
  check that every kernel variant builds (tests/triton_compile_check.py uses it).

A family's kernels live in ``i2i_fast/ops/<family>/triton.py``; the family imports that module
only when ``state().unavailable_reason`` is None.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib.util
import os
from collections.abc import Callable, Iterator

import torch

INTERPRET_ENV = "TRITON_INTERPRET"
NAMESPACE = "i2i_fast_triton"


def _env_flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "on", "yes")


@dataclasses.dataclass(frozen=True)
class TritonState:
    """Whether Triton kernels can run in this process."""

    version: str | None  # None when triton is not importable (or was not imported)
    interpreter: bool  # kernels are defined for the Triton interpreter (CPU tensors)
    cuda: bool  # torch sees a CUDA device
    unavailable_reason: str | None  # None when kernels can run

    def describe(self) -> str:
        if self.version is None and self.unavailable_reason is not None:
            return f"triton: not usable: {self.unavailable_reason}"
        mode = "interpreter (CPU tensors)" if self.interpreter else "compiled (CUDA tensors)"
        if self.unavailable_reason is not None:
            return f"triton {self.version or '?'}: not usable: {self.unavailable_reason}"
        return f"triton {self.version}: {mode}"


_state: TritonState | None = None


def state() -> TritonState:
    """Computed once per process, when the first operator family asks (``import i2i_fast.ops``).

    Kept in a plain module global (not functools.cache) so that torch.compile, which traces
    backend selection, reads it as a constant instead of re-running the detection."""
    global _state
    if _state is None:
        _state = _detect()
    return _state


def _detect() -> TritonState:
    cuda = torch.cuda.is_available()
    if importlib.util.find_spec("triton") is None:
        return TritonState(None, False, cuda, "triton is not installed (pip install triton)")
    interpreter = _env_flag(os.environ.get(INTERPRET_ENV))
    if not (cuda or interpreter):
        # Not importing triton keeps `import i2i_fast.ops` light where no kernel could run.
        return TritonState(
            None, False, cuda,
            f"no CUDA device (torch.cuda.is_available() is False) and the Triton interpreter is "
            f"off ({INTERPRET_ENV}=1 before importing i2i_fast runs the kernels on CPU tensors)")
    try:
        import triton
    except Exception as e:  # noqa: BLE001 - report any import failure as the reason
        return TritonState(None, interpreter, cuda, f"import triton failed: {type(e).__name__}: {e}")
    knobs = getattr(triton, "knobs", None)
    if knobs is not None:
        interpreter = bool(knobs.runtime.interpret)
    return TritonState(triton.__version__, interpreter, cuda, None)


def kernel_device_reason(x: torch.Tensor) -> str | None:
    """Why Triton kernels cannot take a tensor on x's device (None if they can)."""
    st = state()
    if x.device.type == "cuda":
        return None
    if st.interpreter and x.device.type == "cpu":
        return None
    where = "cuda tensors, and cpu tensors in the Triton interpreter" if st.interpreter else (
        f"cuda tensors (cpu tensors only in the Triton interpreter, {INTERPRET_ENV}=1)")
    return f"x is on {x.device}; the triton backend takes {where}"


# ----- the device kernels launch on ------------------------------------------------------------


def _first_tensor(values) -> torch.Tensor | None:
    for v in values:
        if isinstance(v, torch.Tensor):
            return v
        if isinstance(v, (list, tuple)):
            t = _first_tensor(v)
            if t is not None:
                return t
    return None


def launch_device(*args) -> contextlib.AbstractContextManager:
    """Where a Triton host function must launch: ``torch.cuda.device`` of the first tensor among
    `args` (looking into lists and tuples) when it is a CUDA tensor, so that Triton's launch (on
    the current device, with that device's current stream) uses the inputs' device; nothing for
    CPU tensors (the interpreter). ``register_operator`` enters it around every operator."""
    t = _first_tensor(args)
    if t is not None and t.device.type == "cuda":
        return torch.cuda.device(t.device)
    return contextlib.nullcontext()


def _on_input_device(fn: Callable) -> Callable:
    """fn, run inside launch_device of its arguments."""

    @functools.wraps(fn)  # keeps the signature (the operator's schema) and the source (kernels)
    def on_input_device(*args, **kwargs):
        with launch_device(*args, *kwargs.values()):
            return fn(*args, **kwargs)

    return on_input_device


# ----- operator registration -------------------------------------------------------------------


def _opaque_under_functionalization(mode, op, types, args, kwargs):
    """Keep the operator whole in AOTAutograd graphs (used in the interpreter only)."""
    return mode.__torch_dispatch__(op, types, args, kwargs)


def register_operator(
    name: str,
    fn: Callable,
    fake: Callable,
    *,
    setup_context: Callable | None = None,
    backward: Callable | None = None,
):
    """``torch.library.triton_op`` named ``i2i_fast_triton::<name>`` from an annotated function.

    `fn` launches its kernels through ``torch.library.wrap_triton`` (written literally as
    ``wrap_triton(kernel)[grid](...)`` in `fn` or in module functions it calls by name, so that
    torch finds the kernels and puts their source into the AOTAutograd cache key). `fake` gives
    the outputs' shapes, dtypes and strides. With `backward`, the operator is differentiable.
    `fn` runs on the device of its first tensor argument (``launch_device``).
    """
    from torch._subclasses.functional_tensor import FunctionalTensorMode

    op = torch.library.triton_op(f"{NAMESPACE}::{name}", _on_input_device(fn), mutates_args=())
    op.register_fake(fake)
    if state().interpreter:
        op.register_torch_dispatch(FunctionalTensorMode, _opaque_under_functionalization)
    if backward is not None:
        op.register_autograd(backward, setup_context=setup_context)
    return op


# ----- launch geometry -------------------------------------------------------------------------

# Programs wanted per streaming multiprocessor for a memory-bound kernel (several resident
# programs per SM keep enough loads in flight). A first choice, to tune on the GPU.
PROGRAMS_PER_SM = 4
# Stand-in SM count for the interpreter: small, so that small test shapes take the split paths.
INTERPRETER_SM_COUNT = 2


def next_power_of_2(n: int) -> int:
    return 1 if n <= 1 else 1 << (int(n) - 1).bit_length()


def cdiv(a: int, b: int) -> int:
    return -(-int(a) // int(b))


@functools.cache
def _cuda_sm_count(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count


def min_programs(device: torch.device) -> int:
    """How many programs a launch should have to fill the device."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return PROGRAMS_PER_SM * _cuda_sm_count(index)
    return PROGRAMS_PER_SM * INTERPRETER_SM_COUNT


def num_warps_for(tile_elements: int) -> int:
    """Warps for a program holding `tile_elements` values: about 16 per thread, 1 to 8 warps."""
    return max(1, min(8, tile_elements // 512))


# ----- compiling without a GPU -----------------------------------------------------------------


class _CompileOnlyDriver:
    """Just enough of a Triton driver for ``JITFunction.warmup`` to compile for `target`."""

    def __init__(self, target) -> None:
        self.target = target

    def get_current_target(self):
        return self.target

    def get_current_device(self) -> int:
        return 0

    def get_current_stream(self, device: int | None = None) -> int:
        return 0


@contextlib.contextmanager
def compile_only(arch: int = 90, warp_size: int = 32) -> Iterator[None]:
    """Inside the block, ``kernel.warmup(*args, grid=..., **meta)`` compiles (to PTX and cubin)
    for CUDA compute capability `arch` without a GPU, with the argument specialisation a real
    launch would use. Needs triton's compiled mode (not the interpreter)."""
    from triton.backends.compiler import GPUTarget
    from triton.runtime.driver import driver

    previous = driver._active  # restored as it was (the default driver may not exist here)
    driver.set_active(_CompileOnlyDriver(GPUTarget("cuda", arch, warp_size)))
    try:
        yield
    finally:
        driver._active = previous
