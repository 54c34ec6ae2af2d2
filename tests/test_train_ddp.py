"""Training with several processes (torchrun + DDP), on the CPU with 2 gloo processes.

- a 2-process run with batch b per process matches a 1-process run with batch 2b on the same data
  (through the CLI, as a user launches it), and only rank 0 writes;
- the parameters are identical on both ranks, and a 2-process run resumed from a checkpoint is the
  same run, bitwise (every rank's random generators are restored);
- a checkpoint written by 2 processes loads without DDP (translate) and resumes in 1 process;
- the DDP rules of the RunContext docstring: several calls of a wrapped network before one
  backward are correct, calling the inner module bypasses the gradient averaging.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from i2i_fast.train import load_method
from train_helpers import TESTS, assert_same_tensors, load, subprocess_env, toy_plugin, train  # noqa: F401

pytestmark = pytest.mark.slow

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


def torchrun(args, plugin, cwd):
    done = subprocess.run(TORCHRUN + args, capture_output=True, text=True, cwd=cwd,
                          env=subprocess_env(plugin), timeout=300)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory, toy_plugin):
    out = tmp_path_factory.mktemp("ddp")
    torchrun([str(TESTS / "train_ddp_worker.py"), str(out)], toy_plugin, out)
    return out


def test_parameters_identical_on_both_ranks(two_process_runs):
    out = two_process_runs
    for name in ("straight", "resumed"):
        rank0, rank1 = load(out / f"{name}_rank0.pt"), load(out / f"{name}_rank1.pt")
        assert_same_tensors(rank0["state"], rank1["state"])
        assert rank0["losses"] != rank1["losses"]  # each rank saw its own half of the data


def test_two_process_resume_is_the_same_run(two_process_runs):
    out = two_process_runs
    for rank in (0, 1):
        straight = load(out / f"straight_rank{rank}.pt")
        resumed = load(out / f"resumed_rank{rank}.pt")
        assert sorted(resumed["losses"]) == [3, 4]
        for step in (3, 4):
            assert resumed["losses"][step] == straight["losses"][step]
        assert_same_tensors(straight["state"], resumed["state"])
    saved = load(out / "straight" / "checkpoints" / "step_000000004.pt")
    assert saved["world_size"] == 2 and len(saved["rng"]) == 2
    assert not torch.equal(saved["rng"][0]["torch"], saved["rng"][1]["torch"])  # per-rank seeds
    assert saved["data"]["world_size"] == 2 and saved["data"]["offset"] == 16  # 4 steps x 2 x 2


def test_a_two_process_checkpoint_loads_without_ddp(two_process_runs, tmp_path):
    path = two_process_runs / "straight" / "checkpoints" / "step_000000004.pt"
    networks = load(path)["training_state"]["networks"]
    assert not any(".module." in key for key in networks)
    method = load_method(path)
    assert_same_tensors(dict(method.state_dict()), load(two_process_runs / "straight_rank0.pt")["state"])
    # and a 1-process run continues it: the data stream exactly, the random draws reseeded
    resumed = train(tmp_path / "run", resume=str(path), overrides=["max_iter=5"])
    assert sorted(resumed.losses) == [5] and "reseeded" in resumed.log


def test_two_processes_match_one_process_with_twice_the_batch(tmp_path, toy_plugin):
    """In float64: averaging gradients over processes rounds differently from one larger batch,
    and in float32 Adam amplifies that into CPU-dependent drift (i2i_fast.testing.runs)."""
    settings = ["--set", "random_styles=false", "--set", "max_iter=4", "--log-every", "1",
                "--set", "float64=true"]
    done = torchrun(["-m", "i2i_fast.cli", "train", "toygan", "--data", "synthetic:shapes",
                     "--device", "cpu", "--workers", "0", "--checkpoint-every", "4",
                     "--sample-every", "2", "--n-samples", "2", "--run-dir",
                     str(tmp_path / "two"), "--set", "batch_size=1", *settings],
                    toy_plugin, tmp_path)
    one = train(tmp_path / "one", overrides=["batch_size=2", "random_styles=false", "max_iter=4",
                                             "float64=true"],
                log_every=1, checkpoint_every=4)
    two = load(tmp_path / "two" / "checkpoints" / "step_000000004.pt")
    for name, value in one.method.state_dict().items():
        assert value.dtype == torch.float64, name
        assert torch.allclose(two["training_state"]["networks"][name], value,
                              rtol=1e-9, atol=1e-12), name
    # the same items in the same order: rank r took the r-th half of each 2-item step
    assert two["data"]["offset"] == load(one.result.last_checkpoint)["data"]["offset"] == 8
    # only rank 0 wrote: one header, one event file, one sample grid per period
    assert done.stderr.count("toygan on synthetic:shapes") == 1
    assert len(list((tmp_path / "two" / "tensorboard").iterdir())) == 1
    assert sorted(p.name for p in (tmp_path / "two" / "samples").iterdir()) == [
        "step_000000002.png", "step_000000004.png"]
    # the logged losses are means over the processes: those of the 1-process run
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "two" / "tensorboard")).Reload()
    logged = [e.value for e in events.Scalars("loss/g")]
    # (TensorBoard stores float32)
    assert logged == pytest.approx([one.losses[s]["g"] for s in (1, 2, 3, 4)], rel=1e-6)


def test_ddp_rules_for_method_authors(tmp_path, toy_plugin):
    torchrun([str(TESTS / "ddp_rules_worker.py"), str(tmp_path)], toy_plugin, tmp_path)
    for rank in (0, 1):
        results = json.loads((tmp_path / f"rules_rank{rank}.json").read_text())
        assert results["several_calls"] is True
        assert results["bypass_same_on_every_rank"] is False
        assert "Expected to mark a variable ready only once" in results["find_unused"]


def test_method_state_dicts_leave_out_the_ddp_level(tmp_path, toy_plugin):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from i2i_fast.methods import RunContext
    from train_toy import ToyConfig, ToyGAN

    # a one-process group is enough to build DistributedDataParallel wrappers
    dist.init_process_group("gloo", store=dist.FileStore(str(tmp_path / "store"), 1), rank=0,
                            world_size=1)
    try:
        torch.manual_seed(0)
        plain = ToyGAN(ToyConfig())
        torch.manual_seed(1)
        wrapped = ToyGAN(ToyConfig(), RunContext(world_size=2, rank=0))  # wrap() wraps
        assert isinstance(wrapped.enc, DistributedDataParallel)
        assert list(wrapped.state_dict()) == list(plain.state_dict())
        wrapped.load_state_dict(plain.state_dict())  # strict: every key found
        assert_same_tensors(dict(wrapped.state_dict()), dict(plain.state_dict()))
        torch.manual_seed(2)
        other = ToyGAN(ToyConfig())
        other.load_state_dict(wrapped.state_dict())
        assert_same_tensors(dict(other.state_dict()), dict(plain.state_dict()))
        # keys that carry DDP's "module." level (as nn.Module names them) load as well
        assert "enc.module.conv1.weight" in dict(wrapped.named_parameters())
        raw = {("enc.module." + k[4:] if k.startswith("enc.") else k): torch.zeros_like(v)
               for k, v in plain.state_dict().items()}
        wrapped.load_state_dict(raw)
        assert all(v.abs().sum() == 0 for v in wrapped.state_dict().values())
    finally:
        dist.destroy_process_group()
