"""The built-in methods compute the losses they computed before the method toolkit: the losses of
their first iterations, recorded at the commit named in tests/golden/method_losses.json (before
MUNIT and StarGAN v2 moved onto the shared pieces), for the reference and the fused backends.

Bit for bit where the fixture was recorded (same CPU model and SIMD extensions, same torch, one
thread): a refactor that claims "unchanged math" must leave every bit. Elsewhere the rounding of
oneDNN and of the kernels may differ from the recording machine, so the comparison is the one of
i2i_fast.testing.runs: tight in float64 at every iteration, tight in float32 at the first.
Re-record with tests/golden/record_method_losses.py only for a change meant to change rounding.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from i2i_fast.methods import get_method_class, resolve_config
from i2i_fast.testing.runs import FLOAT32_FIRST, FLOAT64, loss_differences, train_losses

GOLDEN = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(GOLDEN))
import record_method_losses as recorder  # noqa: E402

FIXTURE = json.loads((GOLDEN / "method_losses.json").read_text())
SAME_MACHINE = (FIXTURE["cpu"] == recorder.cpu_fingerprint()
                and FIXTURE["torch"] == torch.__version__)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(FIXTURE["threads"])
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("key", sorted(FIXTURE["runs"]))
def test_losses_equal_the_recorded_ones(key):
    name, backend, dtype_name = key.split("/")
    cls = get_method_class(name)
    history, _ = train_losses(cls, resolve_config(cls, "tiny"), FIXTURE["steps"], backend,
                              recorder.DTYPES[dtype_name], seed=0)
    recorded = [{k: float.fromhex(v) for k, v in step.items()} for step in FIXTURE["runs"][key]]
    if SAME_MACHINE:
        assert history == recorded, loss_differences(history, recorded, FLOAT64)
        return
    if dtype_name == "float64":
        problems = loss_differences(history, recorded, FLOAT64)
    else:
        problems = loss_differences(history[:1], recorded[:1], FLOAT32_FIRST)
    assert not problems, "\n".join(problems)
