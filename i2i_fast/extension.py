"""Build (once) and load the compiled kernels.

The C++ sources in ``csrc/`` are compiled by ninja through ``torch.utils.cpp_extension`` into one
shared library that registers the ``torch.ops.i2i_fast`` operators. The build happens on first
use and is cached under a key that hashes everything the binary depends on: the sources, the
torch version (and its CUDA version), the Python version, the compiler flags and the CPU. A new
torch, an edited kernel or a different machine therefore gets its own build; nothing stale is
ever loaded.

Several processes may start at once (torchrun): one builds, under a file lock, into a temporary
directory that is renamed into place when complete; the others wait on the lock and load the
result. The sources are compiled where they are: each has a name of its own (kernel_sources).

If the build fails, one loud warning names the cause and every operator falls back to the
reference backend. With ``I2I_FAST_REQUIRE_EXT=1`` the failure is an error instead.

When it loads: at ``import i2i_fast.ops``, not on the first kernel call. The operators' schemas
are defined by the library itself (``TORCH_LIBRARY`` in csrc/), and the fake kernels, autograd
formulas and backend tables that each family registers at import need those schemas to exist.
Loading a cached build costs about 5 ms, against about 1.5 s for importing torch (measured
2026-12-07 on the 2-core AMD EPYC VM); only the first import after a source change, a new torch
or a new machine pays for the build, once, with its cause in the warning or error. Loading on the
first call would mean defining every schema twice (in Python for the registrations, in C++ for
the kernels) for a 5 ms saving, so the load stays at import.

CUDA. The ``.cu`` files are compiled in too when CUDA kernels are wanted and can be built:
torch is a CUDA build (``torch.version.cuda``), a CUDA toolkit with nvcc and headers is found
(``CUDA_HOME``/``CUDA_PATH``, else the ``nvcc`` on PATH, else /usr/local/cuda), and either a GPU is
visible or ``I2I_FAST_BUILD_CUDA=1`` asks for them (CI proves the kernels compile on machines
without a GPU this way). The target architectures are ``TORCH_CUDA_ARCH_LIST`` if set, else those
of the visible GPUs, else ``DEFAULT_CUDA_ARCH_LIST`` ("8.0;9.0": A100 and H100). The choice, the
architectures and the nvcc version are part of the cache key. When CUDA kernels are wanted but
cannot be built (no toolkit, or a compile error), that is a build failure: a loud warning and a
CPU-only build (the CPU kernels stay available; CUDA tensors go to the other backends), or an error
with ``I2I_FAST_REQUIRE_EXT=1``. ``ExtensionState.cuda_reason`` says why CUDA kernels are absent.

Environment:
  I2I_FAST_CACHE_DIR     where builds are kept (default: $XDG_CACHE_HOME/i2i_fast or
                         ~/.cache/i2i_fast)
  I2I_FAST_REQUIRE_EXT   1: a build failure raises instead of falling back
  I2I_FAST_BUILD_CUDA    1: build the CUDA kernels even without a GPU; 0: never build them;
                         unset: build them when a GPU is visible
  TORCH_CUDA_ARCH_LIST   CUDA architectures to compile for (e.g. "9.0")
  I2I_FAST_VERBOSE_BUILD 1: show the compiler's output
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import warnings
from pathlib import Path

import torch

REQUIRE_ENV = "I2I_FAST_REQUIRE_EXT"
CACHE_ENV = "I2I_FAST_CACHE_DIR"
VERBOSE_ENV = "I2I_FAST_VERBOSE_BUILD"
BUILD_CUDA_ENV = "I2I_FAST_BUILD_CUDA"
ARCH_LIST_ENV = "TORCH_CUDA_ARCH_LIST"
LIBRARY_NAME = "i2i_fast_kernels"

# -fopenmp: at::parallel_for (ATen/Parallel-inl.h) is a header template that runs its loop on one
# thread unless the extension itself is compiled with OpenMP (_OPENMP defined); the library then
# links libgomp.so.1, and the dynamic loader resolves it to the copy torch has already loaded, so
# the kernels share torch's thread pool (torch.set_num_threads applies to them).
CXX_FLAGS = ["-O3", "-march=native", "-fopenmp", "-fno-math-errno", "-fno-trapping-math",
             "-DNDEBUG"]
LD_FLAGS = ["-fopenmp"]
# nvcc: -O3 also optimises the host code of .cu files; -lineinfo maps profiler results (ncu) to
# source lines at no run-time cost. No fast-math: NaN propagation and accuracy are specified.
NVCC_FLAGS = ["-O3", "-DNDEBUG", "-lineinfo"]
# Without a GPU to read them from: A100 (8.0) and H100 (9.0).
DEFAULT_CUDA_ARCH_LIST = "8.0;9.0"


class ExtensionBuildError(RuntimeError):
    """The kernels could not be built or loaded (raised only with I2I_FAST_REQUIRE_EXT=1)."""


@dataclasses.dataclass(frozen=True)
class CudaToolkit:
    """A CUDA toolkit that can compile the kernels: its root and its nvcc's version."""

    home: str
    nvcc_version: str  # "13.2"


@dataclasses.dataclass(frozen=True)
class CudaPlan:
    """Whether this process's build includes the CUDA kernels, and why (not)."""

    wanted: bool  # a GPU is visible or I2I_FAST_BUILD_CUDA=1
    toolkit: CudaToolkit | None  # set when the kernels will be built
    arch_list: str | None
    reason: str  # why they are not built (empty when they are)

    @property
    def build(self) -> bool:
        return self.toolkit is not None


@dataclasses.dataclass
class ExtensionState:
    """What happened when the kernels were loaded; `i2i-fast info` prints it."""

    loaded: bool = False
    library_path: Path | None = None
    build_key: str | None = None
    built_now: bool = False
    build_seconds: float | None = None
    error: str | None = None
    sources: list[Path] = dataclasses.field(default_factory=list)
    # CUDA kernels: whether the loaded library has them, and if not, why.
    cuda_built: bool = False
    cuda_reason: str | None = None
    cuda: CudaToolkit | None = None
    cuda_arch_list: str | None = None


_state: ExtensionState | None = None


def source_dir() -> Path:
    """csrc/ of a source checkout (editable install) or the copy installed inside the package."""
    package = Path(__file__).resolve().parent
    for candidate in (package.parent / "csrc", package / "csrc"):
        if (candidate / "library.cpp").is_file():
            return candidate
    raise FileNotFoundError(
        f"i2i_fast kernel sources not found next to {package} (looked for csrc/library.cpp "
        "in the source checkout and in the installed package)"
    )


def _files(root: Path, suffixes: set[str]) -> list[Path]:
    """The files under `root` with these suffixes, sorted; tools/ (standalone programs) excluded."""
    return sorted(p for p in root.rglob("*")
                  if p.suffix in suffixes and "tools" not in p.relative_to(root).parts)


def kernel_sources(root: Path, with_cuda: bool = False) -> list[Path]:
    """The files compiled into the extension: every .cpp, and every .cu with CUDA.

    Each must have a name of its own (csrc/normalization/normalization_cpu.cpp, not cpu.cpp):
    cpp_extension names every object file after its source's base name, so two sources of the
    same name would overwrite each other's object and the link would fail or, worse, miss code.
    """
    sources = _files(root, {".cpp", ".cu"} if with_cuda else {".cpp"})
    seen: dict[str, Path] = {}
    for path in _files(root, {".cpp", ".cu"}):
        other = seen.setdefault(path.stem, path)
        if other is not path:
            raise ExtensionBuildError(
                f"i2i_fast: two kernel sources share the name {path.stem!r}: "
                f"{other.relative_to(root)} and {path.relative_to(root)}; the build names object "
                "files after their sources, so every .cpp and .cu file under csrc/ needs a name of "
                "its own (e.g. <family>_cpu.cpp)")
    return sources


# ----- CUDA: toolkit, architectures, and the decision to build ----------------------------------


def _nvcc_release(nvcc: Path) -> str | None:
    """"13.2" from `nvcc --version`, or None if it does not run."""
    try:
        out = subprocess.run([str(nvcc), "--version"], capture_output=True, text=True, timeout=60,
                             check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"release (\d+\.\d+)", out)
    return match.group(1) if match else None


def find_cuda_toolkit() -> tuple[CudaToolkit | None, str]:
    """The CUDA toolkit to build with, or None and why not.

    $CUDA_HOME or $CUDA_PATH when set (an explicit choice: nothing else is tried); otherwise the
    parent of the directory of the `nvcc` on PATH, then /usr/local/cuda, first usable wins.
    Usable: bin/nvcc runs, include/cuda_runtime.h exists, and nvcc's major version is torch's.
    """
    candidates: list[tuple[str, str]] = [
        (os.environ[env], f"${env}") for env in ("CUDA_HOME", "CUDA_PATH") if os.environ.get(env)
    ]
    if not candidates:
        nvcc_on_path = shutil.which("nvcc")
        if nvcc_on_path:
            candidates.append((str(Path(nvcc_on_path).resolve().parent.parent), "nvcc on PATH"))
        candidates.append(("/usr/local/cuda", "default location"))
    rejected = []
    for home, source in candidates:
        nvcc = Path(home) / "bin" / "nvcc"
        if not nvcc.is_file():
            rejected.append(f"{home} ({source}): no bin/nvcc")
            continue
        if not (Path(home) / "include" / "cuda_runtime.h").is_file():
            rejected.append(f"{home} ({source}): no include/cuda_runtime.h")
            continue
        version = _nvcc_release(nvcc)
        if version is None:
            rejected.append(f"{home} ({source}): `nvcc --version` failed")
            continue
        if torch.version.cuda and version.split(".")[0] != torch.version.cuda.split(".")[0]:
            rejected.append(f"{home} ({source}): nvcc {version}, but torch was built with CUDA "
                            f"{torch.version.cuda} (major versions must match)")
            continue
        return CudaToolkit(home=home, nvcc_version=version), ""
    return None, "no usable CUDA toolkit: " + "; ".join(rejected)


def _visible_gpu_archs() -> list[str]:
    """Compute capabilities of the GPUs, e.g. ["9.0"].

    Read with nvidia-smi first: asking torch (get_device_capability) initialises CUDA in this
    process at import time, after which forked workers cannot use CUDA.
    """
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=60, check=True).stdout
        archs = [line.strip() for line in out.splitlines() if re.fullmatch(r"\d+\.\d+",
                                                                             line.strip())]
        if archs:
            return archs
    except (OSError, subprocess.SubprocessError):
        pass
    return ["{}.{}".format(*torch.cuda.get_device_capability(i))
            for i in range(torch.cuda.device_count())]


def cuda_arch_list() -> str:
    """TORCH_CUDA_ARCH_LIST if set, else the visible GPUs' architectures, else the default."""
    if os.environ.get(ARCH_LIST_ENV):
        return os.environ[ARCH_LIST_ENV]
    if torch.cuda.is_available():
        return ";".join(sorted(set(_visible_gpu_archs())))
    return DEFAULT_CUDA_ARCH_LIST


def cuda_plan() -> CudaPlan:
    """Decide whether this process builds (or loads) the extension with the CUDA kernels."""
    flag = os.environ.get(BUILD_CUDA_ENV, "")
    if flag == "0":
        return CudaPlan(False, None, None, f"{BUILD_CUDA_ENV}=0")
    if torch.version.cuda is None:
        return CudaPlan(flag == "1", None, None,
                        f"torch {torch.__version__} is a CPU-only build (torch.version.cuda is None)")
    if flag != "1" and not torch.cuda.is_available():
        return CudaPlan(False, None, None,
                        f"no CUDA device visible and {BUILD_CUDA_ENV} is not 1")
    toolkit, why = find_cuda_toolkit()
    if toolkit is None:
        return CudaPlan(True, None, None, why)
    return CudaPlan(True, toolkit, cuda_arch_list(), "")


def _cpu_fingerprint() -> str:
    """Model name and ISA flags: the build uses -march=native."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "flags") and key not in fields:
            fields[key] = value.strip()
    return f"{platform.machine()}|{fields.get('model name', '')}|{fields.get('flags', '')}"


def build_key(root: Path, plan: CudaPlan | None = None) -> str:
    """Hash of everything the library depends on; `plan` with a toolkit means a CUDA build."""
    with_cuda = plan is not None and plan.build
    h = hashlib.sha256()
    for path in _files(root, {".cpp", ".h"} | ({".cu", ".cuh"} if with_cuda else set())):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    parts = [
        torch.__version__,
        str(torch.version.cuda),
        getattr(torch.version, "git_version", ""),
        sys.version,
        sysconfig.get_platform(),
        os.environ.get("CXX", "c++"),
        " ".join(CXX_FLAGS),
        " ".join(LD_FLAGS),
        _cpu_fingerprint(),
    ]
    if with_cuda:
        parts += ["cuda", plan.toolkit.home, plan.toolkit.nvcc_version, plan.arch_list,
                  " ".join(NVCC_FLAGS)]
    else:
        parts += ["cpu-only"]
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


def cache_root() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "i2i_fast"


def _library_file(directory: Path) -> Path:
    return directory / f"{LIBRARY_NAME}.so"


def _compile(root: Path, sources: list[Path], build_dir: Path, plan: CudaPlan) -> None:
    from torch.utils import cpp_extension

    verbose = os.environ.get(VERBOSE_ENV) == "1"
    kwargs = dict(
        name=LIBRARY_NAME,
        sources=[str(s) for s in sources],
        extra_cflags=CXX_FLAGS,
        extra_ldflags=LD_FLAGS,
        extra_include_paths=[str(root)],
        build_directory=str(build_dir),
        is_python_module=False,
        with_cuda=plan.build,
        verbose=verbose,
    )
    if not plan.build:
        cpp_extension.load(**kwargs)
        return
    # cpp_extension fixed its CUDA_HOME when first imported; build with the toolkit chosen here,
    # for exactly the architectures in the cache key.
    saved_home, saved_archs = cpp_extension.CUDA_HOME, os.environ.get(ARCH_LIST_ENV)
    cpp_extension.CUDA_HOME = plan.toolkit.home
    os.environ[ARCH_LIST_ENV] = plan.arch_list
    try:
        cpp_extension.load(extra_cuda_cflags=NVCC_FLAGS, **kwargs)
    finally:
        cpp_extension.CUDA_HOME = saved_home
        if saved_archs is None:
            os.environ.pop(ARCH_LIST_ENV, None)
        else:
            os.environ[ARCH_LIST_ENV] = saved_archs


def _describe(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    lines = [line for line in text.splitlines() if line.strip()]
    # Compiler failures are long: keep the lines that say what broke.
    interesting = [line for line in lines if "error" in line.lower()] or lines
    return "\n".join(interesting[-12:])


def _build_and_load(state: ExtensionState, plan: CudaPlan) -> None:
    """Build the library for this key unless it is in the cache, then load it.

    One process builds, under a file lock (released by the system if the process dies), into a
    private temporary directory that is renamed into place when complete; the others wait on the
    lock and load the result. A build also loads the library into this process (that is how
    cpp_extension.load works); state.built_now says so.
    """
    root = source_dir()
    state.sources = kernel_sources(root, with_cuda=plan.build)
    state.build_key = key = build_key(root, plan)
    cache = cache_root()
    cache.mkdir(parents=True, exist_ok=True)
    final_dir = cache / f"build-{key}"
    with open(cache / f"build-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _library_file(final_dir).is_file():
            tmp_dir = Path(tempfile.mkdtemp(prefix=f".tmp-build-{key}-", dir=cache))
            try:
                what = (f"CPU and CUDA kernels for sm {plan.arch_list} with nvcc "
                        f"{plan.toolkit.nvcc_version}" if plan.build else "CPU kernels")
                sys.stderr.write(f"i2i_fast: compiling {what} (first use with this torch/source "
                                 f"version; cached in {final_dir}) ...\n")
                start = time.perf_counter()
                _compile(root, state.sources, tmp_dir, plan)
                state.build_seconds = time.perf_counter() - start
                state.built_now = True
                shutil.rmtree(final_dir, ignore_errors=True)
                os.replace(tmp_dir, final_dir)
            finally:
                shutil.rmtree(tmp_dir, ignore_errors=True)
    state.library_path = _library_file(final_dir)
    if not state.built_now:
        torch.ops.load_library(str(state.library_path))
    state.loaded = True
    state.cuda_built = plan.build
    state.cuda = plan.toolkit
    state.cuda_arch_list = plan.arch_list


def _refuse_or_warn(required: bool, error: str, headline: str, cause: str,
                    raised: BaseException | None = None) -> None:
    """With I2I_FAST_REQUIRE_EXT=1 raise `error`; otherwise one loud warning: `headline` and
    `cause`."""
    if required:
        raise ExtensionBuildError(error) from raised
    warnings.warn(
        "\n" + "=" * 78 + "\n" + headline + " Cause:\n" + cause + "\n"
        f"Run `i2i-fast info` for details; set {REQUIRE_ENV}=1 to make this an error.\n"
        + "=" * 78,
        RuntimeWarning,
        stacklevel=3,
    )


def load() -> ExtensionState:
    """Build if needed and load the kernels once per process; never raises unless required.

    With CUDA kernels wanted and buildable, the CPU + CUDA library is tried first; if it fails,
    a CPU-only library; if that fails too, none (every operator falls back to the reference).
    """
    global _state
    if _state is not None:
        return _state
    state = _state = ExtensionState()
    required = os.environ.get(REQUIRE_ENV) == "1"
    plan = cuda_plan()
    if plan.build:
        try:
            _build_and_load(state, plan)
            return state
        except Exception as error:  # noqa: BLE001 - reported, then a CPU-only build is tried
            state.cuda_reason = "the CUDA build failed: " + _describe(error)
            state.error = state.cuda_reason if required else None
            state.built_now = False
            _refuse_or_warn(
                required, f"i2i_fast: the CUDA kernels failed to build or load and {REQUIRE_ENV}=1 "
                f"forbids the fallback:\n{state.cuda_reason}",
                "i2i_fast: the CUDA kernels failed to build; falling back to a CPU-only\n"
                "build (CUDA tensors go to the Triton or reference backends).",
                state.cuda_reason, error)
            plan = CudaPlan(plan.wanted, None, None, state.cuda_reason)
    else:
        state.cuda_reason = plan.reason
        if plan.wanted:  # CUDA kernels were asked for (or a GPU is there), but nothing builds them
            _refuse_or_warn(
                required, f"i2i_fast: the CUDA kernels cannot be built and {REQUIRE_ENV}=1 forbids "
                f"going on without them:\n{plan.reason}",
                "i2i_fast: the CUDA kernels are NOT built; CUDA tensors go to the other\n"
                "backends (Triton or the plain-PyTorch reference).", plan.reason)
    try:
        _build_and_load(state, plan)
    except Exception as error:  # noqa: BLE001 - any failure means "no kernels", reported below
        state.error = _describe(error)
        _refuse_or_warn(
            required, f"i2i_fast: the kernels failed to build or load and {REQUIRE_ENV}=1 forbids "
            f"the fallback to the reference implementation:\n{state.error}",
            "i2i_fast: the compiled kernels are NOT available; every operator falls back to the\n"
            "plain-PyTorch reference backend (correct, but slow).", state.error, error)
    return state


def state() -> ExtensionState:
    """The load result, loading first if that has not happened yet."""
    return load()
