"""Triton operators launch on their inputs' device (issue 23).

Triton launches on the current CUDA device and its current stream, whatever the device of the
tensors. Every operator registered through ``triton_support.register_operator`` therefore runs
inside ``launch_device`` of its arguments (``torch.cuda.device`` of the first tensor). Checked
here without a GPU: the device ``launch_device`` enters for fake CUDA tensors, and that every
operator of every family goes through it (in the Triton interpreter). On two GPUs,
tests/test_gpu_kernel_regressions.py runs the operators on cuda:1 while cuda:0 is current.
"""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

import i2i_fast.ops  # noqa: F401 - registers the families (and their Triton operators)
from i2i_fast.ops import triton_support as ts

STATE = ts.state()
needs_interpreter = pytest.mark.skipif(
    not (STATE.unavailable_reason is None and STATE.interpreter),
    reason=f"runs the operators in the Triton interpreter: {STATE.describe()}")


class _RecordedDevice:
    """Stands in for torch.cuda.device: records the device it is entered with."""

    entered: list[torch.device] = []

    def __init__(self, device) -> None:
        self.device = torch.device(device)

    def __enter__(self):
        self.entered.append(self.device)
        return self

    def __exit__(self, *exc) -> bool:
        return False


@pytest.fixture
def recorded_cuda_device(monkeypatch):
    _RecordedDevice.entered = []
    monkeypatch.setattr(torch.cuda, "device", _RecordedDevice)
    return _RecordedDevice.entered


def _fake_cuda(*shape, index: int) -> torch.Tensor:
    with FakeTensorMode():
        return torch.empty(shape, device=f"cuda:{index}")


def test_launch_device_enters_the_first_cuda_tensors_device(recorded_cuda_device):
    x = _fake_cuda(2, 3, index=1)
    with ts.launch_device(x, None, 1e-5, "none"):
        pass
    # Tensors inside lists (gan_loss takes a list of outputs) and after non-tensors count too.
    with ts.launch_device("lsgan", [_fake_cuda(4, index=3), x], None):
        pass
    assert recorded_cuda_device == [torch.device("cuda:1"), torch.device("cuda:3")]


def test_launch_device_does_nothing_for_cpu_tensors(recorded_cuda_device):
    with ts.launch_device(torch.zeros(2), [torch.zeros(1)]):
        pass
    with ts.launch_device(1.0, "none", None):
        pass
    assert recorded_cuda_device == []


@needs_interpreter
def test_every_triton_operator_launches_inside_launch_device(monkeypatch):
    """Each operator of each family, called directly, enters launch_device once, with its
    arguments."""
    from i2i_fast.ops.gan_loss import triton as tg
    from i2i_fast.ops.normalization import triton as tk

    calls = []

    def recording_launch_device(*args):
        calls.append(ts._first_tensor(args))
        return contextlib.nullcontext()

    monkeypatch.setattr(ts, "launch_device", recording_launch_device)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 5, generator=g)
    dy = torch.randn(2, 3, 4, 5, generator=g)
    w_nc, b_nc = torch.rand(2, 3, generator=g) + 0.5, torch.randn(2, 3, generator=g)
    w_c, b_c = torch.rand(3, generator=g) + 0.5, torch.randn(3, generator=g)
    scalar = torch.tensor(1.0)
    invocations = []

    def invoke(op, *args):
        before = len(calls)
        result = op(*args)
        assert len(calls) == before + 1, f"{op}: launch_device entered {len(calls) - before} times"
        assert calls[-1] is args[0] or calls[-1] is args[0][0], f"{op}: not its first tensor"
        invocations.append(op)
        return result

    _, mean, rstd = invoke(tk.adain_forward_op, x, w_nc, b_nc, 1e-5, "none", 0.2)
    invoke(tk.adain_backward_op, dy, x, w_nc, b_nc, mean, rstd, 1e-5, "none", 0.2)
    _, mean, rstd = invoke(tk.instance_norm_forward_op, x, w_c, b_c, 1e-5, "relu", 0.2)
    invoke(tk.instance_norm_backward_op, dy, x, w_c, b_c, mean, rstd, 1e-5, "relu", 0.2)
    _, mean, rstd = invoke(tk.layer_norm_forward_op, x, w_c, b_c, 1e-5, "munit", "none", 0.2)
    invoke(tk.layer_norm_backward_op, dy, x, w_c, b_c, mean, rstd, 1e-5, "munit", "none", 0.2)
    _, mean, var = invoke(tk.batch_norm_forward_op, x, w_c, b_c, 1e-5, "relu", 0.2)
    invoke(tk.batch_norm_backward_op, dy, x, w_c, b_c, mean, var, 1e-5, "relu", 0.2)
    invoke(tg.gan_loss_op, [x], "lsgan", "real", 1.0, None, "mean")
    invoke(tg.gan_loss_backward_op, scalar, [x], "lsgan", "real", 1.0, None, "mean")
    invoke(tg.r1_penalty_op, x, 1.0, "mean")
    invoke(tg.r1_penalty_backward_op, scalar, x, 1.0, "mean")
    assert set(invocations) == set(tk.OPERATORS) | set(tg.OPERATORS)
