"""The CPU kernels compile for every x86-64 vector width, not only for the machine that builds them.

The extension is compiled with -march=native, so a build on one machine says nothing about
another: inline asm with a vector-register constraint, intrinsics or a vector type wider than the
registers can compile under AVX-512 and fail under AVX2 (this happened: output_conv's register
barrier on a 64-byte vector broke the build on AVX2 machines). This test compiles, with the
extension's own flags and -march=<level> in place of -march=native, each CPU source whose code
depends on the instruction set (it, or a project header it includes, tests ISA macros, uses
intrinsics, GCC vector types or inline asm), for the three x86-64 levels: SSE2 only (x86-64),
AVX2 (x86-64-v3) and AVX-512 (x86-64-v4). Objects only; nothing is run. Skipped, with the reason,
off x86-64 or without a C++ compiler.
"""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from torch.utils import cpp_extension

from i2i_fast import extension

LEVELS = ("x86-64", "x86-64-v3", "x86-64-v4")
ISA_DEPENDENT = re.compile(
    r"vector_size|\basm\b|immintrin|_mm\d*_|__AVX|__SSE|__aarch64__|__ARM_NEON")
LOCAL_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)


def depends_on_isa(source: Path, root: Path, seen: set[Path] | None = None) -> bool:
    """Whether `source`, or a project header it includes (transitively), has ISA-dependent code."""
    seen = set() if seen is None else seen
    if source in seen:
        return False
    seen.add(source)
    text = source.read_text()
    if ISA_DEPENDENT.search(text):
        return True
    for name in LOCAL_INCLUDE.findall(text):
        for candidate in (source.parent / name, root / name):
            if candidate.is_file() and depends_on_isa(candidate.resolve(), root, seen):
                return True
    return False


def isa_dependent_sources() -> list[Path]:
    root = extension.source_dir()
    return [s for s in extension.kernel_sources(root) if depends_on_isa(s.resolve(), root)]


def test_the_pattern_finds_the_vectorised_kernels():
    # The scan must see the kernels known to hold ISA-dependent code, or the build test below
    # would pass by compiling nothing.
    names = {s.name for s in isa_dependent_sources()}
    assert {"output_conv_cpu.cpp", "normalization_cpu.cpp"} <= names, names


def compile_command(source: Path, level: str, out: Path) -> list[str]:
    assert "-march=native" in extension.CXX_FLAGS  # the flag this test replaces
    flags = [f"-march={level}" if f == "-march=native" else f for f in extension.CXX_FLAGS]
    includes = [str(extension.source_dir()), *cpp_extension.include_paths(),
                sysconfig.get_paths()["include"]]
    return ["c++", "-std=c++20", "-fPIC", *flags,
            f"-DTORCH_EXTENSION_NAME={extension.LIBRARY_NAME}", "-DTORCH_API_INCLUDE_EXTENSION_H",
            *(f"-I{p}" for p in includes), "-c", str(source), "-o", str(out)]


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"),
                    reason=f"x86-64 levels only; this machine is {platform.machine()}")
@pytest.mark.skipif(shutil.which("c++") is None, reason="no C++ compiler (c++) on PATH")
def test_isa_dependent_sources_compile_for_every_x86_64_level(tmp_path):
    jobs = [(s, level) for s in isa_dependent_sources() for level in LEVELS]

    def build(job):
        source, level = job
        out = tmp_path / f"{source.stem}-{level}.o"
        done = subprocess.run(compile_command(source, level, out), capture_output=True, text=True)
        return source, level, done

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(build, jobs))
    failures = [f"{source.name} with -march={level}:\n{done.stderr[-3000:]}"
                for source, level, done in results if done.returncode != 0]
    assert not failures, "\n\n".join(failures)
