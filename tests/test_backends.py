"""Backend choice: use_backend holds for its own thread only, and a backend gives every reason it
refuses a call."""

from __future__ import annotations

import threading

import pytest
import torch

import i2i_fast.ops as ops

X = torch.randn(2, 3, 4, 4)


def test_use_backend_holds_for_its_own_thread_only():
    """A thread that forces the reference backend does not change what another thread runs
    (a data-loading or serving thread keeps the automatic choice)."""
    forced_inside = threading.Event()
    checked = threading.Event()
    seen = {}

    def forcing():
        with ops.use_backend("reference"):
            seen["forcing"] = ops.chosen_backend("adain", X), ops.forced_backend()
            forced_inside.set()
            checked.wait(timeout=60)
            seen["forcing_after"] = ops.chosen_backend("adain", X)
        seen["forcing_out"] = ops.chosen_backend("adain", X)

    def other():
        forced_inside.wait(timeout=60)
        seen["other"] = ops.chosen_backend("adain", X), ops.forced_backend()
        checked.set()

    threads = [threading.Thread(target=forcing), threading.Thread(target=other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    automatic = ops.chosen_backend("adain", X)
    assert seen["forcing"] == ("reference", ("reference", "use_backend()"))
    assert seen["other"] == (automatic, ops.forced_backend())
    assert automatic != "reference" or ops.forced_backend() is not None
    assert seen["forcing_after"] == "reference"
    assert seen["forcing_out"] == automatic


def test_nested_use_backend_restores_the_outer_choice():
    with ops.use_backend("reference"):
        with ops.use_backend("cpu"):
            assert ops.forced_backend() == ("cpu", "use_backend()")
        assert ops.forced_backend() == ("reference", "use_backend()")
        with pytest.raises(ValueError), ops.use_backend("cpu"):
            raise ValueError("leaves the block")
        assert ops.forced_backend() == ("reference", "use_backend()")


def test_a_backend_gives_every_reason_it_refuses_a_call():
    cpu = ops.get_backend("cpu")
    bad = torch.empty(1, 1, 1, 1, dtype=torch.int64, device="meta")
    reasons = cpu.reasons("not_an_operator", bad)
    if cpu.unavailable_reason() is None:
        assert reasons == [
            "the cpu backend has no not_an_operator implementation",
            "x is on meta; the cpu backend takes cpu tensors",
            "x has dtype torch.int64; the cpu backend takes float16/bfloat16/float32/float64",
        ]
    else:
        assert reasons[0] == cpu.unavailable_reason() and len(reasons) == 4
    assert cpu.reason("not_an_operator", bad) == "; ".join(reasons)
    assert cpu.reasons("adain", X) == ([] if cpu.unavailable_reason() is None
                                       else [cpu.unavailable_reason()])


def test_a_forced_backend_names_every_reason():
    bad = torch.zeros(2, 3, 4, 4, dtype=torch.float32, device="meta")
    cpu = ops.get_backend("cpu")
    with ops.use_backend("cpu"), pytest.raises(ops.BackendError) as caught:
        ops.select("not_an_operator", bad)
    assert str(caught.value) == (
        "not_an_operator: backend 'cpu' is forced by use_backend() but cannot run this call: "
        + cpu.reason("not_an_operator", bad))
    assert "no not_an_operator implementation" in str(caught.value)
    assert "x is on meta" in str(caught.value)
