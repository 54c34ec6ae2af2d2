"""`i2i-fast train` and `i2i-fast translate`: files written, and user errors reported in one line
with a non-zero exit status and no traceback."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest
import torch
from PIL import Image

from i2i_fast import cli
from i2i_fast.data import open_dataset
from i2i_fast.train import checkpoint as checkpoint_lib
from train_helpers import TESTS, subprocess_env, toy_plugin  # noqa: F401

FAST_ARGS = ["--data", "synthetic:shapes", "--device", "cpu", "--workers", "0", "--log-every", "2",
             "--sample-every", "3", "--checkpoint-every", "3", "--n-samples", "2", "--no-progress"]


pytestmark = pytest.mark.usefixtures("one_thread")


def run_cli(argv, capsys):
    """(exit status, stdout, stderr) of i2i-fast in this process."""
    status = cli.main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def assert_user_error(status, err, *fragments):
    assert status == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("i2i-fast ")]
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, toy_plugin):
    """A run of the toy method through the CLI: its checkpoint."""
    root = tmp_path_factory.mktemp("cli_run")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        status = cli.main(["train", "toygan", *FAST_ARGS, "--run-dir", str(root / "run"),
                           "--set", "max_iter=3"])
    finally:
        torch.set_num_threads(threads)
    assert status == 0
    return root / "run" / "checkpoints" / "step_000000003.pt"


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A folder of 3 day images (odd sizes: resize + centre crop) and one night reference."""
    folder = tmp_path_factory.mktemp("inputs")
    data = open_dataset("synthetic:shapes", "unpaired", split="test", resolution=24, size=4)
    for i in range(3):
        pixels = ((data[i]["a"] + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
        Image.fromarray(pixels).resize((24 + 8 * i, 24)).save(folder / f"day{i}.png")
    night = ((data[3]["b"] + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    Image.fromarray(night).save(folder.parent / "night.png")
    return folder


def test_train_writes_the_run(trained):
    run = trained.parent.parent
    assert (run / "config.yaml").is_file() and trained.is_file()
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_000000003.png"]
    assert any((run / "tensorboard").iterdir())


def test_train_resume_auto_continues(trained, capsys, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained.parent.parent, run)
    status, _, err = run_cli(["train", "toygan", "--run-dir", str(run), "--resume", "auto",
                              "--set", "max_iter=4", "--no-progress"], capsys)
    assert status == 0, err
    assert "resumed from" in err and "step_000000003.pt" in err
    assert (run / "checkpoints" / "step_000000004.pt").is_file()


@pytest.mark.parametrize("argv, fragments", [
    (["train", "nope", "--data", "synthetic:shapes"], ["unknown method 'nope'", "registered:"]),
    (["train", "toygan", "--set", "gen.dim=3"], ["gen: unknown key", "ToyConfig has"]),
    (["train", "toygan", "--set", "dim=wide"], ["dim: expected an int, got 'wide'"]),
    (["train", "toygan", "--set", "dim"], ["--set: expected KEY=VALUE", "'dim'"]),
    (["train", "toygan", "--set", "lr=-1", "--data", "synthetic:shapes"],
     ["toygan: lr: expected > 0, got -1.0"]),
    (["train", "toygan", "--config", "nope"], ["'nope' is neither a named configuration of toygan"]),
    (["train", "toygan"], ["--data: expected a dataset folder or synthetic:NAME"]),
    (["train", "toygan", "--data", "/no/such/folder"], ["--data /no/such/folder", "does not exist"]),
    (["train", "toygan", "--precision", "fp16", "--device", "cpu", "--data", "synthetic:shapes"],
     ["--precision fp16", "CUDA"]),
    (["train", "toygan", "--backend", "nope", "--data", "synthetic:shapes"],
     ["--backend: unknown backend 'nope'"]),
    (["train", "toygan", "--resume", "/no/such.pt"], ["checkpoint /no/such.pt: no such file"]),
])
def test_train_user_errors(argv, fragments, capsys, tmp_path, toy_plugin):
    status, _, err = run_cli(argv + ["--run-dir", str(tmp_path / "run"), "--device", "cpu",
                                     "--no-progress", "--workers", "0"], capsys)
    assert_user_error(status, err, "i2i-fast train: error: ", *fragments)


def corrupt_checkpoints(folder, good):
    """name -> (path, expected fragment of the error)."""
    truncated = folder / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:5000])
    garbage = folder / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint at all" * 10)
    other = folder / "other.pt"
    torch.save({"weights": torch.ones(2)}, other)
    code = folder / "code.pt"
    # an arbitrary Python object: weights_only refuses to build it (no code runs on load)
    torch.save({"format": "i2i_fast.checkpoint", "payload": argparse.Namespace(a=1)}, code)
    newer = folder / "newer.pt"
    saved = torch.load(good, weights_only=True)
    torch.save({**saved, "format_version": 99}, newer)
    return {
        "truncated": (truncated, "cannot be read with torch.load(weights_only=True)"),
        "garbage": (garbage, "cannot be read with torch.load(weights_only=True)"),
        "other": (other, "expected an i2i_fast checkpoint"),
        "code": (code, "cannot be read with torch.load(weights_only=True)"),
        "newer": (newer, "format version 99 was written by a newer i2i_fast"),
    }


def test_corrupt_checkpoints_are_refused_clearly(trained, capsys, tmp_path):
    for name, (path, fragment) in corrupt_checkpoints(tmp_path, trained).items():
        status, _, err = run_cli(["train", "toygan", "--resume", str(path), "--run-dir",
                                  str(tmp_path / name), "--no-progress"], capsys)
        assert_user_error(status, err, f"checkpoint {path}", fragment)
        status, _, err = run_cli(["translate", "--checkpoint", str(path), "--input",
                                  str(trained), "--out", str(tmp_path / "out")], capsys)
        assert_user_error(status, err, "i2i-fast translate: error: ", fragment)


def test_a_user_error_in_a_fresh_process_has_no_traceback(tmp_path, toy_plugin):
    done = subprocess.run([sys.executable, "-m", "i2i_fast.cli", "train", "nope", "--data",
                           "synthetic:shapes", "--run-dir", str(tmp_path / "run")],
                          capture_output=True, text=True, env=subprocess_env(toy_plugin),
                          cwd=TESTS.parent, timeout=300)
    assert done.returncode == 2
    # the methods that environment registers (the built-ins of the installed package, or of a
    # source tree's metadata, and the toy plugin)
    listed = subprocess.run([sys.executable, "-c", "from i2i_fast.methods.registry import "
                             "method_names; print(', '.join(method_names()))"],
                            capture_output=True, text=True, env=subprocess_env(toy_plugin),
                            cwd=TESTS.parent, timeout=300).stdout.strip()
    assert {"munit", "stargan_v2", "toygan"} <= set(listed.split(", "))
    assert done.stderr.strip().splitlines() == [
        f"i2i-fast train: error: unknown method 'nope'; registered: {listed}"]


def test_translate_random_styles(trained, images, tmp_path, capsys):
    out = tmp_path / "out"
    status, stdout, err = run_cli(["translate", "--checkpoint", str(trained), "--input",
                                   str(images), "--n-styles", "2", "--out", str(out)], capsys)
    assert status == 0, err
    names = sorted(p.name for p in out.iterdir())
    assert names == ["day0_style1.png", "day0_style2.png", "day1_style1.png", "day1_style2.png",
                     "day2_style1.png", "day2_style2.png", "grid.png"]
    assert Image.open(out / "day1_style2.png").size == (16, 16)  # the method's image_size
    assert Image.open(out / "grid.png").size == (3 * 16 + 2 * 2, 3 * 16 + 2 * 2)  # input + 2
    assert "6 images from 3 input(s)" in stdout
    # two random styles differ; the same seed gives the same images
    assert Image.open(out / "day0_style1.png").tobytes() != Image.open(out / "day0_style2.png").tobytes()
    again = tmp_path / "again"
    assert cli.main(["translate", "--checkpoint", str(trained), "--input", str(images),
                     "--n-styles", "2", "--out", str(again)]) == 0
    for name in names:
        assert (again / name).read_bytes() == (out / name).read_bytes()


def test_translate_reference_and_single_file(trained, images, tmp_path, capsys):
    out = tmp_path / "out"
    reference = images.parent / "night.png"
    status, _, err = run_cli(["translate", "--checkpoint", str(trained), "--input",
                              str(images / "day2.png"), "--reference", str(reference),
                              "--out", str(out)], capsys)
    assert status == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["day2_ref.png", "grid.png"]
    # input | reference | output
    assert Image.open(out / "grid.png").size == (3 * 16 + 2 * 2, 16)


@pytest.mark.parametrize("extra, fragments", [
    (["--checkpoint", "/no/such.pt", "--input", "{images}"], ["checkpoint /no/such.pt: no such file"]),
    (["--checkpoint", "{ckpt}", "--input", "/no/such/dir"], ["--input /no/such/dir: no such file"]),
    (["--checkpoint", "{ckpt}", "--input", "{images}", "--reference", "/no/ref.png"],
     ["--reference /no/ref.png: no such file"]),
    (["--checkpoint", "{ckpt}", "--input", "{images}", "--reference", "{night}", "--n-styles", "3"],
     ["--n-styles: with --reference", "got 3"]),
    (["--checkpoint", "{ckpt}", "--input", "{images}", "--target-domain", "2"],
     ["toygan.translate: toygan: target_domain: expected an index in [0, 2) or one of "
      "['a', 'b'], got 2"]),
    (["--checkpoint", "{ckpt}", "--input", "{images}", "--n-styles", "0"],
     ["--n-styles: expected an int >= 1, got 0"]),
    (["--checkpoint", "{ckpt}", "--input", "{empty}"], ["expected image files", "found none"]),
    (["--checkpoint", "{ckpt}", "--input", "{bad}"], ["--input: cannot read image"]),
])
def test_translate_user_errors(extra, fragments, trained, images, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.png").write_bytes(b"not a png")
    values = {"images": images, "ckpt": trained, "night": images.parent / "night.png",
              "empty": tmp_path / "empty", "bad": tmp_path / "bad.png"}
    argv = ["translate", *[a.format(**values) for a in extra], "--out", str(tmp_path / "out")]
    status, _, err = run_cli(argv, capsys)
    assert_user_error(status, err, "i2i-fast translate: error: ", *fragments)


def test_checkpoint_loader_names_the_problem(tmp_path):
    with pytest.raises(checkpoint_lib.CheckpointError, match="expected a file, got a folder"):
        checkpoint_lib.load(tmp_path)
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(checkpoint_lib.CheckpointError, match="got a list"):
        checkpoint_lib.load(tmp_path / "list.pt")
    torch.save({"format": "i2i_fast.checkpoint", "format_version": 1, "method": "x"},
               tmp_path / "partial.pt")
    with pytest.raises(checkpoint_lib.CheckpointError,
                       match=r"missing keys \['method_config', 'step', 'training_state'\]"):
        checkpoint_lib.load(tmp_path / "partial.pt")


def image_folder_with_a_corrupt_file(root):
    """root/trainA, root/trainB with 3 small images each, and one corrupt file in trainA."""
    for domain, value in (("trainA", 40), ("trainB", 200)):
        (root / domain).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (20, 20), (value + i, value, value)).save(root / domain / f"{i}.png")
    bad = root / "trainA" / "broken.png"
    bad.write_bytes(b"not an image")
    return bad


def truncated_image(path):
    """A PNG whose header reads and whose pixels do not (a copy cut short)."""
    Image.new("RGB", (20, 20), (90, 20, 20)).save(path)
    path.write_bytes(path.read_bytes()[:60])
    return path


def test_train_on_a_folder_with_a_corrupt_image(tmp_path, toy_plugin, capsys):
    bad = image_folder_with_a_corrupt_file(tmp_path / "data")
    args = ["train", "toygan", *FAST_ARGS[2:], "--data", str(tmp_path / "data"),
            "--set", "max_iter=2", "--set", "batch_size=2"]
    status, _, err = run_cli([*args, "--run-dir", str(tmp_path / "strict")], capsys)
    # found before training, from the files' headers: one line, naming it, saying what to do
    assert_user_error(status, err, str(bad), "1 unreadable image file(s)", "--skip-bad-images")
    assert not (tmp_path / "strict" / "checkpoints").exists()
    status, _, err = run_cli([*args, "--run-dir", str(tmp_path / "skip"), "--skip-bad-images"],
                             capsys)
    assert status == 0, err
    lines = [line for line in err.splitlines() if str(bad) in line]
    assert lines == [f"--skip-bad-images: left out {bad} (UnidentifiedImageError: cannot identify "
                     f"image file '{bad}')"]  # once, one line, no warning
    assert (tmp_path / "skip" / "skipped_images.txt").read_text().startswith(f"{bad}\t")


@pytest.mark.parametrize("workers", ["0", "1"])
def test_a_file_unreadable_when_loaded_is_left_out_once(tmp_path, toy_plugin, capsys, workers):
    root = tmp_path / "data"
    (image_folder_with_a_corrupt_file(root)).unlink()
    bad = truncated_image(root / "trainA" / "3.png")
    args = ["train", "toygan", *FAST_ARGS[2:], "--data", str(root), "--workers", workers,
            "--set", "max_iter=6", "--set", "batch_size=2", "--run-dir", str(tmp_path / "run"),
            "--skip-bad-images"]
    status, _, err = run_cli(args, capsys)  # 4 items, 2 per step: every item thrice
    assert status == 0, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if str(bad) in line]
    assert len(lines) == 1 and lines[0].startswith(f"--skip-bad-images: left out {bad} (")
    assert (tmp_path / "run" / "checkpoints" / "step_000000006.pt").is_file()


def test_an_error_during_training_saves_the_last_whole_step_first(tmp_path, toy_plugin, capsys):
    root = tmp_path / "data"
    (image_folder_with_a_corrupt_file(root)).unlink()
    bad = truncated_image(root / "trainA" / "3.png")
    bad = truncated_image(bad.rename(root / "trainA" / "0a.png"))  # item 1: loaded at step 4
    run = tmp_path / "run"
    args = ["train", "toygan", *FAST_ARGS[2:], "--data", str(root), "--set", "max_iter=8",
            "--set", "batch_size=1", "--checkpoint-every", "100", "--run-dir", str(run)]
    status, _, err = run_cli(args, capsys)
    # met when loaded, after some steps: what was trained is saved, then the error, one line
    assert_user_error(status, err, f"cannot read image {bad}", "--skip-bad-images",
                      "the run's latest checkpoint is")
    saved = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert saved == ["step_000000003.pt"]
    step = 3
    assert f"stopping at step 3 (ImageReadError: " in err
    # and the run goes on from there, leaving the file out
    status, _, err = run_cli(["train", "toygan", "--run-dir", str(run), "--resume", "auto",
                              "--skip-bad-images", "--no-progress"], capsys)
    assert status == 0, err
    assert f"resumed from {run / 'checkpoints' / saved[0]} at step {step}" in err
    assert (run / "checkpoints" / "step_000000008.pt").is_file()


def test_translate_says_when_it_resizes(trained, images, tmp_path, capsys):
    status, _, err = run_cli(["translate", "--checkpoint", str(trained), "--input", str(images),
                              "--out", str(tmp_path / "out")], capsys)
    assert status == 0, err
    # the toy method has no size rule: it runs at its image_size, and that is said
    assert ("i2i-fast translate: note: 3 image(s) resized (shorter side) and centre-cropped to "
            "16x16: toygan runs at the size it was trained at") in err
