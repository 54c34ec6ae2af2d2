"""A training run: its folder and resolved config, TensorBoard events, sample grids, the progress
bar, precision, channels_last and the choice of backend."""

from __future__ import annotations

import io
import math

import pytest
import torch
import yaml
from PIL import Image

import i2i_fast.ops as ops
from i2i_fast.ops import backends
from i2i_fast.train import TrainError
from i2i_fast.train.meter import LossMeter, as_floats
from i2i_fast.train.progress import Progress
from train_helpers import load, toy_plugin, train  # noqa: F401


def close(a: dict, b: dict, rtol: float) -> bool:
    return all(math.isclose(a[k], b[k], rel_tol=rtol) for k in a) and a.keys() == b.keys()


def test_run_folder_and_resolved_config(tmp_path, toy_plugin):
    run = train(tmp_path / "run", config="wide", overrides=["lr=0.001", "max_iter=4"], seed=5)
    root = run.run_dir
    assert sorted(p.name for p in root.iterdir()) == ["checkpoints", "config.yaml", "samples",
                                                     "tensorboard"]
    record = yaml.safe_load((root / "config.yaml").read_text())
    assert record["method"] == "toygan" and record["data"] == "synthetic:shapes"
    # named configuration, then --set, on top of the defaults
    assert record["method_config"]["dim"] == 12 and record["method_config"]["lr"] == 0.001
    assert record["method_config"]["max_iter"] == 4 and record["method_config"]["batch_size"] == 2
    assert record["train"]["seed"] == 5 and record["train"]["precision"] == "fp32"
    assert record["world_size"] == 1 and record["started_at_step"] == 0
    assert record["versions"]["torch"] == str(torch.__version__)
    assert sorted(p.name for p in (root / "checkpoints").iterdir()) == [
        "step_000000003.pt", "step_000000004.pt"]  # every 3 steps and at the end
    assert load(root / "checkpoints" / "step_000000004.pt")["method_config"] == {
        **record["method_config"], "lr": 0.001}


def test_tensorboard_scalars_and_sample_grids(tmp_path, toy_plugin):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = train(tmp_path / "run", n_samples=3)
    samples = sorted(p.name for p in (run.run_dir / "samples").iterdir())
    assert samples == ["step_000000003.png", "step_000000006.png"]
    grid = Image.open(run.run_dir / "samples" / samples[-1])
    # 3 rows (the fixed batch), 4 columns (a, a2b_random, b, a2b_reference), 16 px, 2 px gaps
    assert grid.size == (4 * 16 + 3 * 2, 3 * 16 + 2 * 2) and grid.mode == "RGB"
    events = EventAccumulator(str(run.run_dir / "tensorboard"),
                              size_guidance={"scalars": 0, "images": 0}).Reload()
    tags = events.Tags()
    assert {"loss/d", "loss/g", "lr/gen", "lr/dis", "progress/it_per_s",
            "progress/epoch"} <= set(tags["scalars"])
    logged = events.Scalars("loss/g")
    assert [e.step for e in logged] == [2, 4, 6]
    # each logged value is the mean of the interval's losses
    expected = (run.losses[3]["g"] + run.losses[4]["g"]) / 2
    assert math.isclose(logged[1].value, expected, rel_tol=1e-6)
    assert [e.step for e in events.Scalars("lr/gen")] == [2, 4, 6]
    assert events.Scalars("lr/gen")[-1].value == pytest.approx(0.002 * 0.5 ** 2)  # StepLR(3)
    image_tags = [t for t in tags["images"] if t.startswith("samples/")]
    assert image_tags == ["samples/a,a2b_random,b,a2b_reference"]
    assert [e.step for e in events.Images(image_tags[0])] == [3, 6]


def test_the_sample_grid_does_not_change_training(tmp_path, toy_plugin):
    often = train(tmp_path / "often", sample_every=1)
    never = train(tmp_path / "never", sample_every=1000)  # the final grid only
    assert often.losses == never.losses
    first = Image.open(often.run_dir / "samples" / "step_000000001.png")
    last = Image.open(often.run_dir / "samples" / "step_000000006.png")
    assert first.size == last.size and first.tobytes() != last.tobytes()  # the networks moved


def test_progress_bar_shows_rate_and_eta():
    stream = io.StringIO()
    progress = Progress(total=10, initial=4, show_bar=True, stream=stream)
    for _ in range(6):
        progress.step({"g": 1.5})
    progress.close()
    text = stream.getvalue()
    assert "10/10" in text and "it/s" in text and "g=1.5" in text
    assert "<" in text  # elapsed<remaining (the ETA)


def test_without_the_bar_losses_are_plain_lines_every_log_interval(tmp_path, toy_plugin):
    run = train(tmp_path / "run", progress=False, log_every=2)  # 6 steps
    lines = [line for line in run.log.splitlines() if line.startswith("step ")]
    assert [line.split()[1] for line in lines] == ["2/6", "4/6", "6/6"]
    for line, step in zip(lines, (2, 4, 6)):
        assert "it/s" in line and "ETA" in line
        means = {k: (run.losses[step - 1][k] + run.losses[step][k]) / 2 for k in ("d", "g")}
        assert f"d={means['d']:.4g} g={means['g']:.4g}" in line
    # with the bar, the losses go next to it, not in lines of their own
    direct = Progress(total=4, initial=0, show_bar=True, stream=io.StringIO())
    direct.step({"g": 1.0})
    assert not direct.stream.getvalue().startswith("step ")


def test_bf16_autocast(tmp_path, toy_plugin):
    fp32 = train(tmp_path / "fp32", overrides=["max_iter=3"])
    bf16 = train(tmp_path / "bf16", overrides=["max_iter=3"], precision="bf16")
    assert all(math.isfinite(v) for losses in bf16.losses.values() for v in losses.values())
    assert bf16.losses != fp32.losses  # computed in bfloat16 ...
    assert close(bf16.losses[1], fp32.losses[1], rtol=0.05)  # ... of the same model and data
    assert load(bf16.result.last_checkpoint)["train_options"]["precision"] == "bf16"
    assert next(bf16.method.parameters()).dtype == torch.float32  # autocast, not bf16 weights


def test_fp16_needs_cuda(tmp_path, toy_plugin):
    with pytest.raises(TrainError, match="--precision fp16: .*CUDA"):
        train(tmp_path / "run", precision="fp16")


def test_channels_last(tmp_path, toy_plugin):
    default = train(tmp_path / "default", overrides=["max_iter=3"])
    last = train(tmp_path / "last", overrides=["max_iter=3"], channels_last=True)
    weight = last.method.enc.conv1.weight
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    for step in (1, 2, 3):
        assert close(last.losses[step], default.losses[step], rtol=1e-4)


def test_backend_choice(tmp_path, toy_plugin):
    seen = []
    default = train(tmp_path / "default", overrides=["max_iter=3"])
    reference = train(tmp_path / "reference", overrides=["max_iter=3"], backend="reference",
                      on_step=lambda step, losses: seen.append(ops.forced_backend()))
    assert seen == [("reference", "use_backend()")] * 3 and ops.forced_backend() is None
    for step in (1, 2, 3):
        assert close(reference.losses[step], default.losses[step], rtol=1e-4)


def test_unknown_or_unavailable_backend(tmp_path, toy_plugin, monkeypatch):
    with pytest.raises(TrainError, match="--backend: unknown backend 'nope'; expected one of"):
        train(tmp_path / "run", backend="nope")

    class Missing(backends.Backend):
        name = "missing"

        def unavailable_reason(self):
            return "not built for this machine"

    monkeypatch.setitem(backends._BACKENDS, "missing", Missing())
    with pytest.raises(TrainError, match="--backend missing: not available here: not built"):
        train(tmp_path / "run", backend="missing")


def test_bad_option_values(tmp_path, toy_plugin):
    with pytest.raises(TrainError, match="--log-every: expected an int >= 1, got 0"):
        train(tmp_path / "run", log_every=0)
    with pytest.raises(TrainError, match="--data: expected a dataset folder"):
        train(tmp_path / "run", data=None)
    with pytest.raises(TrainError, match="--device: expected auto, cpu, cuda or cuda:N"):
        train(tmp_path / "run", device="tpu")
    with pytest.raises(TrainError, match="--data synthetic:nope: .*synthetic:<name>"):
        train(tmp_path / "run", data="synthetic:nope")
    with pytest.raises(TrainError, match=f"--data {tmp_path / 'absent'}: .*does not exist"):
        train(tmp_path / "run", data=str(tmp_path / "absent"))
    with pytest.raises(TrainError, match="batch_size: expected an int >= 1, got 0"):
        train(tmp_path / "run", overrides=["batch_size=0"])


def test_loss_meter():
    meter = LossMeter("m", first_step=3)
    meter.add({"g": torch.tensor(1.0), "d": 2.0})
    meter.add({"g": torch.tensor([3.0]), "d": 4})
    assert meter.count == 2 and meter.first_step == 3
    assert meter.means() == {"g": 2.0, "d": 3.0}
    meter.add({"d": 9.0})  # a step without "g" (DRIT's content-discriminator-only iterations)
    assert meter.count == 3 and meter.means() == {"g": 2.0, "d": 5.0}
    assert as_floats({"a": torch.tensor(0.5), "b": 1}) == {"a": 0.5, "b": 1.0}
    meter.reset(5)
    assert meter.means() == {} and meter.first_step == 5
    with pytest.raises(TypeError, match="m.train_step: expected a dict of losses, got list"):
        meter.add([1.0])
    with pytest.raises(TypeError, match="loss 'g': expected a float or a one-element tensor, "
                                        "got shape \\(2,\\)"):
        meter.add({"g": torch.ones(2)})
    with pytest.raises(TypeError, match="loss 'g': expected a float or a one-element tensor, "
                                        "got str"):
        meter.add({"g": "1.0"})


def test_grid_labels_and_cells_of_different_sizes():
    from i2i_fast.train.images import grid

    small, large = torch.zeros(3, 4, 6), torch.ones(3, 8, 10)
    plain = grid([[small, large], [large, None]], gap=2)
    assert plain.shape == (2 * 8 + 2, 2 * 10 + 2, 3)
    assert (plain[2:6, 2:8] == 128).all()  # the small image centred in its 8 x 10 cell
    labelled = grid([[small, large], [large, None]], gap=2, column_labels=["a", "b"],
                    row_labels=["first row", "second"])
    top, left = labelled.shape[0] - plain.shape[0], labelled.shape[1] - plain.shape[1]
    assert top > 0 and left > 0
    assert (labelled[top:, left:] == plain).all()  # the images as without labels
    assert (labelled[:top] < 128).any() and (labelled[:, :left] < 128).any()  # the text
    with pytest.raises(ValueError, match="column_labels: expected 2, got 1"):
        grid([[small, large]], column_labels=["a"])
