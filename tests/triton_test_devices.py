"""Where the Triton tests run (tests/test_triton_*.py): the interpreter on CPU tensors without a
GPU (tests/conftest.py sets TRITON_INTERPRET=1), CUDA tensors with one (marked `cuda`); and how
they run a family's sm_90 compile check (tests/triton_*compile_check.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from i2i_fast.ops import triton_support as ts

STATE = ts.state()
INTERPRETER = STATE.unavailable_reason is None and STATE.interpreter
ON_GPU = STATE.unavailable_reason is None and not STATE.interpreter and torch.cuda.is_available()

DEVICES = [
    pytest.param("cpu", id="interpreter", marks=pytest.mark.skipif(
        not INTERPRETER, reason=f"the Triton interpreter is off: {STATE.describe()}")),
    pytest.param("cuda", id="cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(
        not ON_GPU, reason=f"needs a CUDA GPU with compiled Triton: {STATE.describe()}")]),
]
needs_triton = pytest.mark.skipif(STATE.unavailable_reason is not None and not ON_GPU,
                                  reason=STATE.describe())


def run_compile_check(script: str, *args: str) -> list[dict]:
    """Runs tests/<script> (compiled-mode Triton) and returns its JSON lines, the summary last;
    fails the test if the script failed."""
    tests = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(tests, script)
    # This checkout's i2i_fast first (not whichever copy the environment has installed).
    root = os.path.dirname(tests)
    env = dict(os.environ, TRITON_INTERPRET="0",
               PYTHONPATH=os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH")))))
    proc = subprocess.run([sys.executable, path, *args], env=env, capture_output=True, text=True,
                          timeout=900)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return lines


def triton_kernels_of(module: str, operators: tuple[str, ...]) -> dict[str, list[str]]:
    """{operator: sorted names of the Triton kernels torch.library.triton_op finds behind
    i2i_fast_triton::<operator>} once `module` has registered them: their source is part of the
    AOTAutograd cache key (a kernel it missed could leave stale compiled graphs). Compiled-mode
    kernels (torch does not look for interpreted ones), in a fresh process."""
    code = (
        "import json, sys\n"
        f"import {module}\n"
        "from torch._library.triton import get_triton_kernels_for_op\n"
        "print(json.dumps({op: sorted(k.fn.__name__ for k in get_triton_kernels_for_op("
        "f'i2i_fast_triton::{op}')) for op in sys.argv[1:]}))\n"
    )
    env = dict(os.environ, TRITON_INTERPRET="0")
    out = subprocess.run([sys.executable, "-c", code, *operators], env=env, capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])
