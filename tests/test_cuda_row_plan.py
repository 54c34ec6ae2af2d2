"""The CUDA row kernels' indexing, checked on the CPU (no GPU needed).

The launch plan of the normalization row kernels (teams, blocks, tiles) and each thread's tile,
elements and team_sum scratch slots come from plain C++ functions (csrc/normalization/row_tiling.h,
csrc/common/team_layout.h) that the kernels call. tests/cpp/row_plan_check.cpp replays every
thread of every block with those same functions for a sweep of shapes and every element type and
pack width, and checks that each element is held once and that each thread's team sum is its own
tile's sum. Here it is compiled with the host C++ compiler and run; then the plans of the GPU
tests' shapes are checked to really put several teams, some idle, in one block (the case where
team_sum once read the first team's partial sums for every team, issue 23).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from torch.utils import cpp_extension

ROOT = Path(__file__).resolve().parents[1]
CHECK_SOURCE = ROOT / "tests" / "cpp" / "row_plan_check.cpp"

# (element bytes, pack width) -> what the CUDA kernels use for float32 / float16 / float64 rows
# whose length is (VEC = 16 bytes) or is not (VEC = 1) a multiple of 16 bytes.
FLOAT32_PACKED, FLOAT32_SCALAR = (4, 4), (4, 1)
FLOAT16_PACKED = (2, 8)


def _compiler() -> str | None:
    return shutil.which(os.environ.get("CXX", "c++"))


@pytest.fixture(scope="module")
def row_plan_check(tmp_path_factory) -> Path:
    cxx = _compiler()
    if cxx is None:
        pytest.skip("no C++ compiler (c++ or $CXX) to build tests/cpp/row_plan_check.cpp")
    exe = tmp_path_factory.mktemp("row_plan") / "row_plan_check"
    includes = [f"-I{ROOT / 'csrc'}"] + [f"-I{p}" for p in cpp_extension.include_paths()]
    build = subprocess.run([cxx, "-std=c++20", "-O2", "-Wall", "-Wextra", "-Werror", *includes,
                            str(CHECK_SOURCE), "-o", str(exe)],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout + build.stderr
    return exe


def plans(exe: Path, element: tuple[int, int], rows: int, s: int) -> dict[str, tuple | None]:
    """{kernel kind: (team, threads, teams_per_block, blocks, chunk, chunks) or None}."""
    out = subprocess.run([str(exe), "plan", str(element[0]), str(element[1]), str(rows), str(s)],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    result = {}
    for line in out.splitlines():
        kind, *fields = line.split()
        result[kind] = None if fields == ["none"] else tuple(int(f) for f in fields)
    return result


def test_every_thread_reduces_its_own_tile(row_plan_check):
    run = subprocess.run([str(row_plan_check)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("checked ") and int(run.stdout.split()[1]) > 10000, run.stdout


@pytest.mark.parametrize("element, rows, s", [
    (FLOAT32_PACKED, 32, 32 * 32),  # 2 x 16 x 32 x 32: 4 teams of 64 per block
    (FLOAT32_PACKED, 33, 32 * 32),  # 3 x 11 x 32 x 32: 3 idle teams in the last block
    (FLOAT16_PACKED, 33, 32 * 32),
    (FLOAT32_PACKED, 6, 40 * 38),  # 1025..2048 elements: 2 teams of 128 per block
    (FLOAT32_SCALAR, 33, 599),  # 3 x 11 x 599, scalar loads: 2 teams of 128, 1 idle
    (FLOAT32_SCALAR, 11, 13 * 23),  # 4 teams of 64, 1 idle
    (FLOAT32_PACKED, 8, 24 * 24),
])
def test_gpu_test_shapes_put_several_teams_in_a_block(row_plan_check, element, rows, s):
    """The shapes of tests/test_gpu_kernel_regressions.py reach multi-team blocks with idle
    teams in both fused kernels, so the GPU tests exercise team_sum's per-team indexing."""
    p = plans(row_plan_check, element, rows, s)
    for kind in ("fused_forward", "fused_backward"):
        team, threads, teams_per_block, blocks, chunk, chunks = p[kind]
        assert teams_per_block > 1 and threads == team * teams_per_block, (kind, p[kind])
        assert chunk == s and chunks == 1
        assert blocks == -(-rows // teams_per_block)
        if rows % teams_per_block:
            assert blocks * teams_per_block > rows  # idle teams in the last block


def test_long_rows_take_the_split_kernels(row_plan_check):
    """Rows longer than a fused team can hold: no fused plan; the split plan covers the row."""
    for element in (FLOAT32_PACKED, FLOAT32_SCALAR, (8, 1)):
        s = 1024 * 16 + element[1]  # past the largest fused team of any element type
        p = plans(row_plan_check, element, 2, s)
        assert p["fused_forward"] is None and p["fused_backward"] is None
        _, _, _, _, chunk, chunks = p["split"]
        assert chunk * chunks >= s and chunk * (chunks - 1) < s
