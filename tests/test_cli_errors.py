"""Bad arguments end in one line (``i2i-fast <command>: error: ...``, exit status 2), never in a
traceback: image sizes the networks cannot take (the minimum found from the architecture), a
demo run folder that already holds a run, benchmark arguments, a StarGAN v2 without masks."""

from __future__ import annotations

import pytest
import torch

from i2i_fast import cli
from i2i_fast.methods import MethodUsageError, create_method
from i2i_fast.methods.munit import MUNIT, MUNITConfig, size_rule
from i2i_fast.methods.registry import resolve_config
from i2i_fast.methods.stargan_v2 import StarGANv2


pytestmark = pytest.mark.usefixtures("one_thread")


def one_line_error(capsys, command: str, *fragments: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith(f"i2i-fast {command}: error:")]
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_munit_minimum_image_size_is_found_from_its_networks():
    demo = resolve_config(MUNIT, "demo")
    assert (size_rule(demo).minimum, size_rule(demo).multiple) == (16, 4)
    # the official discriminator (4 layers, 3 scales) needs more; 3 downsamplings: multiples of 8
    assert (size_rule(MUNITConfig()).minimum, size_rule(MUNITConfig()).multiple) == (64, 4)
    deeper = resolve_config(MUNIT, "demo", ["gen.n_downsample=3"])
    assert size_rule(deeper).multiple == 8
    with pytest.raises(ValueError, match=r"munit: image_size: expected a multiple of 4 >= 16 "
                                         r"\(the sides these networks take.*\), got 8"):
        create_method("munit", "demo", ["image_size=8"])
    with pytest.raises(ValueError, match=r"expected a multiple of 4 >= 16 .*got 18"):
        create_method("munit", "demo", ["image_size=18"])
    # the minimum is tight: a training step runs at 16 and not at 12
    method = create_method("munit", "demo", ["image_size=16", "batch_size=1"])

    def batch(side):
        return {"a": torch.zeros(1, 3, side, side), "b": torch.zeros(1, 3, side, side)}

    assert set(method.train_step(batch(16), 0)) >= {"d_total", "g_total"}
    with pytest.raises(ValueError, match="reflection_pad"):
        method.train_step(batch(12), 1)


def test_stargan_v2_minimum_image_size_is_found_from_its_networks():
    with pytest.raises(ValueError, match=r"stargan_v2: image_size: expected a power of two >= 4 "
                                         r"\(the sides these networks are built for.*got 2"):
        create_method("stargan_v2", "small", ["image_size=2"])
    with pytest.raises(ValueError, match=r"expected a power of two >= 4 .*got 48"):
        create_method("stargan_v2", "small", ["image_size=48"])
    method = create_method("stargan_v2", "small", ["image_size=8", "dim_in=4", "max_conv_dim=8"])
    assert isinstance(method, StarGANv2)
    x = torch.zeros(2, 3, 8, 8)
    assert method.translate(x, target_domain=1).shape == (2, 1, 3, 8, 8)


def test_train_with_an_image_size_too_small_is_one_line(tmp_path, capsys):
    status = cli.main(["train", "munit", "--config", "demo", "--set", "image_size=8", "--data",
                       "synthetic:shapes", "--device", "cpu", "--workers", "0", "--no-progress",
                       "--run-dir", str(tmp_path / "run")])
    assert status == 2
    one_line_error(capsys, "train", "munit: image_size: expected a multiple of 4 >= 16", "got 8")


def test_stargan_v2_without_masks_is_one_line(tmp_path, capsys):
    status = cli.main(["train", "stargan_v2", "--data", "synthetic:shapes-k2", "--device", "cpu",
                       "--workers", "0", "--no-progress", "--run-dir", str(tmp_path / "run"),
                       "--n-samples", "2", "--sample-every", "100",
                       *[a for s in ("image_size=16", "dim_in=8", "max_conv_dim=16",
                                     "style_dim=4", "latent_dim=2", "hidden_dim=8",
                                     "batch_size=2", "max_iter=2") for a in ("--set", s)]])
    assert status == 2
    one_line_error(capsys, "train", "stargan_v2: train_step: w_hpf = 1.0 needs the masks",
                   "hpf_masks=")
    with pytest.raises(MethodUsageError):
        method = create_method("stargan_v2", None, ["image_size=16", "dim_in=8",
                                                    "max_conv_dim=16"])
        method.translate(torch.zeros(1, 3, 16, 16), target_domain=0)


def test_demo_on_a_folder_that_holds_a_run_is_one_line_naming_its_own_flags(tmp_path, capsys):
    run = tmp_path / "demo"
    args = ["demo", "--steps", "1", "--run-dir", str(run), "--n-inputs", "1", "--n-styles", "1",
            "--eval-inputs", "0", "--speed-iterations", "0", "--threads", "1"]
    assert cli.main(args) == 0
    capsys.readouterr()
    assert cli.main(args) == 2
    line = one_line_error(capsys, "demo", f"run folder {run} already holds checkpoints",
                          "pass --resume to continue")
    assert "--resume auto" not in line and "--set" not in line
    # --resume continues it; at its last step it says how to go further, in the demo's words
    status = cli.main([*args[:2], "2", *args[3:], "--resume"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "trained 2 iterations" in out
    assert cli.main([*args[:2], "2", *args[3:], "--resume"]) == 0
    err = capsys.readouterr().err
    assert "nothing to do (raise it with --steps N)" in err
    # a demo --resume in an empty folder starts the demo's run (not the official 256x256 one)
    assert cli.main([*args, "--run-dir", str(tmp_path / "fresh"), "--resume"]) == 0
    assert "64x64" in capsys.readouterr().err


@pytest.mark.parametrize("argv, fragment", [
    (["bench", "ops", "--ops", "nope", "--no-save"], "--ops: expected some of adain"),
    (["bench", "ops", "--device", "nope", "--no-save"], "--device: expected cpu, cuda"),
    (["bench", "ops", "--providers", "nope", "--no-save"], "--providers: expected some of"),
    (["bench", "ops", "--layouts", "nope", "--no-save"], "--layouts: expected some of"),
    (["bench", "resampling", "--ops", "nope", "--no-save"], "--ops: expected some of avg_pool"),
    (["bench", "resampling", "--modes", "nope", "--no-save"], "--modes: expected some of"),
    (["bench", "losses", "--cases", "nope", "--no-save"], "--cases: expected some of munit_d"),
    (["bench", "method", "munit", "--config", "demo", "--data", "synthetic:nope", "--no-save"],
     "--data synthetic:nope"),
    (["bench", "method", "munit", "--config", "demo", "--set", "image_size=8", "--no-save"],
     "image_size: expected a multiple of 4 >= 16"),
])
def test_bad_benchmark_arguments_are_one_line(argv, fragment, capsys):
    assert cli.main(argv) == 2
    one_line_error(capsys, f"bench {argv[1]}", fragment)


def test_finding_the_sizes_leaves_the_random_generator_alone():
    from i2i_fast.methods import munit, stargan_v2

    for name, cache in (("munit", munit._SIZE_RULES), ("stargan_v2", stargan_v2._SMALLEST_SIZES)):
        cache.clear()
        torch.manual_seed(0)
        first = create_method(name, "demo" if name == "munit" else "small").state_dict()
        torch.manual_seed(0)  # found already: not searched again
        second = create_method(name, "demo" if name == "munit" else "small").state_dict()
        for key in first:
            assert torch.equal(first[key], second[key]), key
