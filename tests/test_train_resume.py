"""Checkpoints and resume: N steps straight = k steps + resume + N - k steps, bitwise on the CPU;
what a checkpoint holds; atomic writing; the run folder rules."""

from __future__ import annotations

import shutil

import pytest
import torch

from i2i_fast.train import CheckpointError, CheckpointFolder, DivergedError, TrainError
from i2i_fast.train import checkpoint as checkpoint_lib
from train_helpers import assert_same_tensors, load, toy_plugin, train  # noqa: F401


def test_resume_from_a_periodic_checkpoint_is_the_same_run(tmp_path, toy_plugin):
    straight = train(tmp_path / "straight")  # 6 steps, checkpoints at 3 and 6
    assert sorted(straight.losses) == [1, 2, 3, 4, 5, 6]
    # as if the straight run had died after step 3: continue its step-3 checkpoint elsewhere,
    # with every global generator moved first (only the restored state may count)
    torch.rand(1000)
    torch.manual_seed(1234)
    resumed = train(tmp_path / "resumed",
                    resume=str(straight.run_dir / "checkpoints" / "step_000000003.pt"))
    assert resumed.result.resumed_from.name == "step_000000003.pt"
    assert sorted(resumed.losses) == [4, 5, 6]
    for step in (4, 5, 6):
        assert resumed.losses[step] == straight.losses[step]  # exact float equality
    a = load(straight.run_dir / "checkpoints" / "step_000000006.pt")
    b = load(resumed.run_dir / "checkpoints" / "step_000000006.pt")
    for key in ("training_state", "rng", "data", "step", "method_config", "scaler"):
        assert_same_tensors(a[key], b[key], key)
    # the resumed run kept the stored options (no flag repeated) and says where it came from
    assert "resumed from" in resumed.log and "at step 3" in resumed.log


def test_stopping_at_k_and_extending_max_iter_is_the_same_run(tmp_path, toy_plugin):
    straight = train(tmp_path / "straight")
    first = train(tmp_path / "run", overrides=["max_iter=3"])
    assert sorted(first.losses) == [1, 2, 3]
    second = train(tmp_path / "run", resume="auto", overrides=["max_iter=6"])
    assert {**first.losses, **second.losses} == straight.losses
    assert "--set max_iter: 3 -> 6" in second.log
    assert_same_tensors(load(second.result.last_checkpoint)["training_state"],
                        load(straight.result.last_checkpoint)["training_state"])


def test_without_restoring_the_random_generators_the_run_differs(tmp_path, toy_plugin):
    # The test above can fail: the toy method draws its target styles from the global RNG.
    straight = train(tmp_path / "straight")
    path = straight.run_dir / "checkpoints" / "step_000000003.pt"
    saved = load(path)
    saved["rng"] = [None]  # a checkpoint of another world size: the trainer reseeds
    saved["world_size"] = 7
    checkpoint_lib.save_atomic(saved, tmp_path / "other" / "checkpoints" / path.name)
    resumed = train(tmp_path / "other", resume="auto")
    assert "reseeded" in resumed.log
    assert resumed.losses[4] != straight.losses[4]


def test_what_a_checkpoint_holds(tmp_path, toy_plugin):
    run = train(tmp_path / "run", keep_checkpoints=2, checkpoint_every=2, sample_every=100)
    folder = CheckpointFolder(run.run_dir / "checkpoints")
    assert folder.steps() == [4, 6]  # 2 and 4 and 6 written, the newest 2 kept
    saved = torch.load(folder.latest(), weights_only=True)  # plain data and tensors only
    assert saved["format"] == "i2i_fast.checkpoint" and saved["format_version"] == 1
    assert saved["method"] == "toygan" and saved["step"] == 6
    assert saved["method_config"]["max_iter"] == 6 and saved["method_config"]["dim"] == 8
    state = saved["training_state"]
    networks = state["networks"]
    assert any(k.startswith("dec_ema.") for k in networks)  # EMA copies are in the networks
    assert not any(".module." in k for k in networks)
    assert set(state["optimizers"]) == {"gen", "dis"} and set(state["schedulers"]) == {"gen", "dis"}
    assert state["schedulers"]["gen"]["last_epoch"] == 6
    assert state["optimizers"]["gen"]["param_groups"][0]["fused"] is True
    assert saved["scaler"] is None  # fp32
    assert saved["world_size"] == 1 and len(saved["rng"]) == 1
    generators = saved["rng"][0]
    assert generators["torch"].dtype == torch.uint8 and generators["numpy"]["keys"].numel() == 624
    assert saved["data"]["offset"] == 12 and saved["data"]["batch_size"] == 2
    assert saved["train_options"]["data"] == "synthetic:shapes"
    assert saved["train_options"]["seed"] == 0
    assert saved["versions"]["torch"] == str(torch.__version__)
    for name, value in networks.items():
        assert torch.equal(value, run.method.state_dict()[name])


def test_a_crash_while_writing_leaves_the_previous_checkpoint_intact(tmp_path, toy_plugin,
                                                                     monkeypatch):
    run = train(tmp_path / "run")
    folder = run.run_dir / "checkpoints"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    real_save = torch.save

    def dies_half_way(obj, file, *args, **kwargs):
        real_save(obj, file, *args, **kwargs)
        file.seek(0)
        file.truncate(100)  # half-written file ...
        raise OSError("disk full")  # ... and the process fails

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(OSError, match="disk full"):
        train(tmp_path / "run", resume="auto", overrides=["max_iter=9"])
    monkeypatch.undo()
    after = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert after == before  # no new step_9, no temporary file left, the others untouched
    # and the run continues from its last good checkpoint
    resumed = train(tmp_path / "run", resume="auto", overrides=["max_iter=9"])
    assert resumed.result.resumed_from.name == "step_000000006.pt"
    assert sorted(resumed.losses) == [7, 8, 9]


def test_a_leftover_temporary_file_is_not_a_checkpoint(tmp_path):
    folder = CheckpointFolder(tmp_path, keep=2)
    folder.save({"x": torch.ones(2)}, 5)
    (tmp_path / ".step_000000009.pt.abc.tmp").write_bytes(b"partial")
    (tmp_path / "step_000000011.pt.bak").write_bytes(b"")
    assert folder.steps() == [5]
    assert folder.latest().name == "step_000000005.pt"


def test_resume_rules(tmp_path, toy_plugin):
    run = train(tmp_path / "run")
    with pytest.raises(TrainError, match="already holds checkpoints.*--resume auto"):
        train(tmp_path / "run")
    with pytest.raises(TrainError, match="after step 3 .*would mix two runs"):
        train(tmp_path / "run", resume=str(run.run_dir / "checkpoints" / "step_000000003.pt"))
    with pytest.raises(TrainError, match="--config: a resumed run keeps"):
        train(tmp_path / "run", resume="auto", config="wide")
    with pytest.raises(CheckpointError, match="does not fit method toygan"):
        train(tmp_path / "run", resume="auto", overrides=["dim=4", "max_iter=8"])
    with pytest.raises(CheckpointError, match="no checkpoint"):
        train(tmp_path / "elsewhere", resume=str(tmp_path / "run" / "samples"))
    # a resume that finds nothing to do says so
    again = train(tmp_path / "run", resume="auto")
    assert again.losses == {} and "nothing to do" in again.log
    # the options of the checkpoint are kept unless given again
    shutil.copytree(run.run_dir, tmp_path / "copy")
    changed = train(tmp_path / "copy", resume="auto", overrides=["max_iter=7"], log_every=1)
    assert "--log-every 1 (the checkpoint's run used 2)" in changed.log


def test_a_nan_loss_stops_the_run_without_saving(tmp_path, toy_plugin, monkeypatch):
    import train_toy

    real_step = train_toy.ToyGAN.train_step

    def diverges_at_step_5(self, batch, step):
        losses = real_step(self, batch, step)
        return {**losses, "g": float("nan")} if step == 4 else losses

    monkeypatch.setattr(train_toy.ToyGAN, "train_step", diverges_at_step_5)
    with pytest.raises(DivergedError, match=r"steps 5\.\.6: mean loss g=nan"):
        train(tmp_path / "run")  # losses are read every 2 steps (log_every)
    assert CheckpointFolder(tmp_path / "run" / "checkpoints").steps() == [3]
    with pytest.raises(DivergedError, match="step 5: mean loss g=nan"):
        train(tmp_path / "run1", log_every=1)


def test_a_resumed_run_shows_every_step_once_in_tensorboard(tmp_path, toy_plugin):
    """A run killed after step 5 whose last checkpoint is step 3 resumes there: TensorBoard drops
    what the killed process logged after step 3 (steps 4, 5: logged again), and keeps step 3's
    scalars and sample grid, which the checkpoint's run logged and the resumed run does not."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # checkpoints at 3 and 5; removing 5 leaves what a run killed after logging step 5 leaves
    first = train(tmp_path / "run", log_every=1, overrides=["max_iter=5"])
    (first.run_dir / "checkpoints" / "step_000000005.pt").unlink()
    resumed = train(tmp_path / "run", resume="auto", log_every=1, overrides=["max_iter=6"])
    assert resumed.result.resumed_from.name == "step_000000003.pt"
    events = EventAccumulator(str(first.run_dir / "tensorboard"),
                              size_guidance={"scalars": 0, "images": 0}).Reload()
    assert [e.step for e in events.Scalars("loss/g")] == [1, 2, 3, 4, 5, 6]
    values = {e.step: e.value for e in events.Scalars("loss/g")}
    assert values[3] == pytest.approx(first.losses[3]["g"])
    assert values[4] == pytest.approx(resumed.losses[4]["g"])
    tag = next(t for t in events.Tags()["images"] if t.startswith("samples/"))
    assert [e.step for e in events.Images(tag)] == [3, 6]  # the killed run's 5 dropped


def test_leftovers_of_a_killed_checkpoint_write_are_removed_at_the_next_start(tmp_path,
                                                                             toy_plugin):
    first = train(tmp_path / "run", overrides=["max_iter=3"])
    folder = first.run_dir / "checkpoints"
    # what a process killed inside save_atomic leaves: its temporary file, never renamed
    leftover = folder / ".step_000000006.pt.k1ll3d.tmp"
    leftover.write_bytes(b"half a checkpoint")
    other = folder / "notes.txt"  # not the trainer's: left alone
    other.write_text("mine")
    assert CheckpointFolder(folder).steps() == [3]
    resumed = train(tmp_path / "run", resume="auto", overrides=["max_iter=6"])
    assert not leftover.exists() and other.exists()
    assert f"removed 1 temporary file(s) of an interrupted checkpoint write: {leftover.name}" \
        in resumed.log
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt", "step_000000003.pt",
                                                        "step_000000006.pt"]


def test_resume_auto_falls_back_to_the_newest_readable_checkpoint(tmp_path, toy_plugin):
    straight = train(tmp_path / "straight")  # checkpoints at 3 and 6
    run = train(tmp_path / "run", overrides=["max_iter=5"], checkpoint_every=2)  # 2, 4, 5
    folder = run.run_dir / "checkpoints"
    latest = folder / "step_000000005.pt"
    latest.write_bytes(latest.read_bytes()[:4000])  # truncated (a disk that filled up)
    resumed = train(tmp_path / "run", resume="auto", overrides=["max_iter=6"])
    assert resumed.result.resumed_from.name == "step_000000004.pt"
    assert (f"checkpoint {latest}: cannot be read with torch.load(weights_only=True)"
            in resumed.log)
    assert f"resuming from the newest readable one, {folder / 'step_000000004.pt'}" \
        in resumed.log
    assert sorted(resumed.losses) == [5, 6]
    assert resumed.losses[6] == straight.losses[6]
    # the unreadable file is left as it was (the resumed run wrote 6, not 5)
    with pytest.raises(CheckpointError, match="cannot be read"):
        checkpoint_lib.load(latest)
    # a checkpoint given by its path is never replaced by another
    with pytest.raises(CheckpointError, match="cannot be read"):
        train(tmp_path / "run", resume=str(latest), overrides=["max_iter=8"])
    # nothing readable at all: an error naming every file
    for path in folder.glob("step_*.pt"):
        path.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=r"no readable checkpoint in .*checkpoints: "
                                              r"step_000000006.pt .*step_000000002.pt"):
        train(tmp_path / "run", resume="auto", overrides=["max_iter=8"])


def test_an_error_after_a_whole_step_saves_it_before_stopping(tmp_path, toy_plugin, monkeypatch):
    from i2i_fast.train.samples import SampleSheet

    straight = train(tmp_path / "straight")
    real_render = SampleSheet.render

    def fails_at_step_4(self, method):
        if len(self.columns) and any(p.name == "step_000000002.png"
                                     for p in (tmp_path / "run" / "samples").iterdir()):
            raise RuntimeError("disk quota exceeded")
        return real_render(self, method)

    monkeypatch.setattr(SampleSheet, "render", fails_at_step_4)
    with pytest.raises(RuntimeError, match="disk quota exceeded"):
        train(tmp_path / "run", sample_every=2)  # samples at 2, then 4: fails
    monkeypatch.undo()
    assert CheckpointFolder(tmp_path / "run" / "checkpoints").steps() == [3, 4]
    resumed = train(tmp_path / "run", resume="auto")
    assert sorted(resumed.losses) == [5, 6]
    assert all(resumed.losses[s] == straight.losses[s] for s in (5, 6))  # the exact state


def test_an_error_inside_a_step_saves_nothing_more(tmp_path, toy_plugin, monkeypatch):
    import train_toy

    real_step = train_toy.ToyGAN.train_step

    def fails_in_step_5(self, batch, step):
        if step == 4:
            self.optimizers["dis"].step()  # half an iteration done: not a state to keep
            raise RuntimeError("CUDA error: an illegal memory access")
        return real_step(self, batch, step)

    monkeypatch.setattr(train_toy.ToyGAN, "train_step", fails_in_step_5)
    with pytest.raises(RuntimeError, match="illegal memory access"):
        train(tmp_path / "run")
    assert CheckpointFolder(tmp_path / "run" / "checkpoints").steps() == [3]


def test_ctrl_c_inside_a_step_finishes_it_and_saves(tmp_path, toy_plugin, monkeypatch):
    import os
    import signal

    import train_toy

    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    straight = train(tmp_path / "straight")
    real_step = train_toy.ToyGAN.train_step

    def interrupted_in_step_5(self, batch, step):
        if step == 4:
            os.kill(os.getpid(), signal.SIGINT)  # as a terminal's Ctrl-C
        return real_step(self, batch, step)

    monkeypatch.setattr(train_toy.ToyGAN, "train_step", interrupted_in_step_5)
    stream_log = []
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "run", on_step=lambda step, losses: stream_log.append(step))
    monkeypatch.undo()
    assert stream_log == [1, 2, 3, 4, 5]  # step 5 was finished
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    assert CheckpointFolder(tmp_path / "run" / "checkpoints").steps() == [3, 5]
    resumed = train(tmp_path / "run", resume="auto")
    assert resumed.losses[6] == straight.losses[6]
