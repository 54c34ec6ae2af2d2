"""Build (once) and load the compiled kernels.

The C++ sources in ``csrc/`` are compiled by ninja through ``torch.utils.cpp_extension`` into one
shared library that registers the ``torch.ops.i2i_fast`` operators. The build happens on first
use and is cached under a key that hashes everything the binary depends on: the sources, the
torch version (and its CUDA version), the Python version, the compiler flags and the CPU. A new
torch, an edited kernel or a different machine therefore gets its own build; nothing stale is
ever loaded.

Several processes may start at once (torchrun): one builds, under a file lock, into a temporary
directory that is renamed into place when complete; the others wait on the lock and load the
result.

If the build fails, one loud warning names the cause and every operator falls back to the
reference backend. With ``I2I_FAST_REQUIRE_EXT=1`` the failure is an error instead.

Environment:
  I2I_FAST_CACHE_DIR     where builds are kept (default: $XDG_CACHE_HOME/i2i_fast or
                         ~/.cache/i2i_fast)
  I2I_FAST_REQUIRE_EXT   1: a build failure raises instead of falling back
  I2I_FAST_VERBOSE_BUILD 1: show the compiler's output
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import os
import platform
import shutil
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
LIBRARY_NAME = "i2i_fast_kernels"

CXX_FLAGS = ["-O3", "-march=native", "-fopenmp-simd", "-fno-math-errno", "-fno-trapping-math", "-DNDEBUG"]


class ExtensionBuildError(RuntimeError):
    """The kernels could not be built or loaded (raised only with I2I_FAST_REQUIRE_EXT=1)."""


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


def kernel_sources(root: Path) -> list[Path]:
    """The C++ files compiled into the extension (tools/ holds standalone programs)."""
    return sorted(p for p in root.rglob("*.cpp") if "tools" not in p.relative_to(root).parts)


def _hashed_files(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*")
        if p.suffix in {".cpp", ".h", ".cu", ".cuh"} and "tools" not in p.relative_to(root).parts
    )


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


def build_key(root: Path) -> str:
    h = hashlib.sha256()
    for path in _hashed_files(root):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    for part in (
        torch.__version__,
        str(torch.version.cuda),
        getattr(torch.version, "git_version", ""),
        sys.version,
        sysconfig.get_platform(),
        os.environ.get("CXX", "c++"),
        " ".join(CXX_FLAGS),
        _cpu_fingerprint(),
    ):
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


def _uniquely_named_sources(root: Path, sources: list[Path], build_dir: Path) -> list[Path]:
    """One file per source, named after its path under csrc/, that #includes it.

    cpp_extension names each object file after its source's base name, so csrc/<family>/cpu.cpp
    of two families would both become cpu.o. The wrappers (normalization__cpu.cpp, ...) keep the
    names apart; the real file is compiled in place, so its relative #includes still resolve.
    """
    wrapper_dir = build_dir / "sources"
    wrapper_dir.mkdir(parents=True, exist_ok=True)
    wrappers = []
    for source in sources:
        relative = source.resolve().relative_to(root.resolve())
        wrapper = wrapper_dir / "__".join(relative.parts)
        wrapper.write_text(f'#include "{source.resolve()}"\n')
        wrappers.append(wrapper)
    return wrappers


def _compile(root: Path, sources: list[Path], build_dir: Path) -> None:
    from torch.utils import cpp_extension

    verbose = os.environ.get(VERBOSE_ENV) == "1"
    cpp_extension.load(
        name=LIBRARY_NAME,
        sources=[str(s) for s in _uniquely_named_sources(root, sources, build_dir)],
        extra_cflags=CXX_FLAGS,
        extra_include_paths=[str(root)],
        build_directory=str(build_dir),
        is_python_module=False,
        with_cuda=False,
        verbose=verbose,
    )


def _build_locked(root: Path, key: str, state: ExtensionState) -> Path:
    """Build into a private temporary directory and publish it atomically; return the library.

    A build also loads the library into this process (that is how cpp_extension.load works);
    state.built_now says so.
    """
    cache = cache_root()
    cache.mkdir(parents=True, exist_ok=True)
    final_dir = cache / f"build-{key}"
    lock_path = cache / f"build-{key}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _library_file(final_dir).is_file():
            return _library_file(final_dir)
        tmp_dir = Path(tempfile.mkdtemp(prefix=f".tmp-build-{key}-", dir=cache))
        try:
            sys.stderr.write(
                f"i2i_fast: compiling kernels (first use with this torch/source version; "
                f"cached in {final_dir}) ...\n"
            )
            start = time.perf_counter()
            _compile(root, state.sources, tmp_dir)
            state.build_seconds = time.perf_counter() - start
            state.built_now = True
            if final_dir.exists():
                shutil.rmtree(final_dir)
            os.replace(tmp_dir, final_dir)
        finally:
            if tmp_dir.exists():
                shutil.rmtree(tmp_dir, ignore_errors=True)
    return _library_file(final_dir)


def _describe(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    lines = [line for line in text.splitlines() if line.strip()]
    # Compiler failures are long: keep the lines that say what broke.
    interesting = [line for line in lines if "error" in line.lower()] or lines
    return "\n".join(interesting[-12:])


def load() -> ExtensionState:
    """Build if needed and load the kernels once per process; never raises unless required."""
    global _state
    if _state is not None:
        return _state
    state = ExtensionState()
    try:
        root = source_dir()
        state.sources = kernel_sources(root)
        state.build_key = build_key(root)
        library = _build_locked(root, state.build_key, state)
        if not state.built_now:
            torch.ops.load_library(str(library))
        state.library_path = library
        state.loaded = True
    except Exception as error:  # noqa: BLE001 - any failure means "no kernels", reported below
        state.error = _describe(error)
        if os.environ.get(REQUIRE_ENV) == "1":
            _state = state
            raise ExtensionBuildError(
                f"i2i_fast: the kernels failed to build or load and {REQUIRE_ENV}=1 forbids the "
                f"fallback to the reference implementation:\n{state.error}"
            ) from error
        warnings.warn(
            "\n" + "=" * 78 + "\n"
            "i2i_fast: the compiled kernels are NOT available; every operator falls back to the\n"
            "plain-PyTorch reference backend (correct, but slow). Cause:\n"
            f"{state.error}\n"
            f"Run `i2i-fast info` for details; set {REQUIRE_ENV}=1 to make this an error.\n"
            + "=" * 78,
            RuntimeWarning,
            stacklevel=2,
        )
    _state = state
    return state


def state() -> ExtensionState:
    """The load result, loading first if that has not happened yet."""
    return load()
