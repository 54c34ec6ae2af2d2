"""CMakeLists.txt builds the kernels outside Python, and the op timer runs and checks them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed")


@pytest.fixture(scope="module")
def op_timer(tmp_path_factory) -> Path:
    build = tmp_path_factory.mktemp("cmake-build")
    configure = subprocess.run(
        ["cmake", "-S", str(ROOT), "-B", str(build), f"-DPython3_EXECUTABLE={sys.executable}"],
        capture_output=True, text=True, timeout=600)
    assert configure.returncode == 0, configure.stdout + configure.stderr
    compile_ = subprocess.run(["cmake", "--build", str(build), "-j", "2"], capture_output=True,
                              text=True, timeout=1800)
    assert compile_.returncode == 0, compile_.stdout[-4000:] + compile_.stderr[-4000:]
    return build / "i2i_fast_op_timer"


def _run(tool: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(tool), *args], capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("args", [
    ("--quick",),
    ("--quick", "--dtype", "bfloat16"),
    ("--quick", "--dtype", "float64", "--threads", "1"),
    ("--op", "adain", "--shape", "3,8,30,31", "--channels-last", "--repeats", "2"),
    ("--op", "layer_norm", "--shape", "2,4,5,6,7", "--repeats", "2"),
], ids=lambda a: " ".join(a))
def test_op_timer_checks_and_times_every_operator(op_timer, args):
    result = _run(op_timer, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if "forward median" in line]
    expected_ops = 1 if "--op" in args else 3
    assert len(lines) == expected_ops
    assert all(line.endswith("OK") for line in lines), result.stdout


@pytest.mark.slow
def test_op_timer_rejects_bad_arguments(op_timer):
    result = _run(op_timer, "--shape", "2,x,4,4")
    assert result.returncode == 2
    assert "--shape: expected positive integers separated by commas, got '2,x,4,4'" in result.stderr
    result = _run(op_timer, "--op", "conv")
    assert result.returncode == 2 and "--op: expected all, adain" in result.stderr
