"""Nothing named in a checkpoint or a configuration file is imported: code references (Config
fields declared with i2i_fast.config.code_reference, e.g. StarGAN v2's hpf_masks) come from the
command line or the caller only.

The attack: a checkpoint that loads with torch.load(weights_only=True) whose stored method
configuration names a module of the attacker's choosing. Importing that module would run its
top-level code, which here leaves a marker file."""

from __future__ import annotations

import dataclasses
import sys
import warnings

import pytest
import torch

from i2i_fast import cli
from i2i_fast import config as config_lib
from i2i_fast.methods import registry
from i2i_fast.methods.stargan_v2 import StarGANv2Config
from i2i_fast.metrics import eval_command
from i2i_fast.train import TrainOptions, Trainer, load_method
from i2i_fast.train import checkpoint as checkpoint_lib

# A tiny StarGAN v2 with the high-pass skips (w_hpf > 0), so that it needs a masks function.
TINY = ["image_size=16", "dim_in=8", "max_conv_dim=16", "style_dim=4", "latent_dim=2",
        "hidden_dim=8", "num_domains=2", "w_hpf=1.0", "hpf_resolutions=[8, 16]", "batch_size=2",
        "max_iter=1", "domain_names=[day, night]"]


@pytest.fixture
def modules(tmp_path, monkeypatch):
    """Two importable modules: good_masks (a real masks function) and evil_masks (whose import
    writes the marker file). Returns the marker's path."""
    marker = tmp_path / "imported.marker"
    folder = tmp_path / "modules"
    folder.mkdir()
    masks = ("import torch\n\n\ndef masks(x):\n"
             "    m = torch.ones(x.shape[0], 1, *x.shape[2:], device=x.device)\n"
             "    return m, m\n")
    (folder / "good_masks.py").write_text(masks)
    (folder / "evil_masks.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('code ran')\n\n{masks}")
    monkeypatch.syspath_prepend(str(folder))
    yield marker
    for name in ("good_masks", "evil_masks"):
        sys.modules.pop(name, None)


@pytest.fixture
def crafted(tmp_path, modules):
    """A real one-step StarGAN v2 checkpoint (trained with good_masks), rewritten to name
    evil_masks: (its path, the marker's path)."""
    run = tmp_path / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        Trainer(TrainOptions("stargan_v2", data="synthetic:shapes-k2", device="cpu", workers=0,
                             overrides=TINY + ["hpf_masks=good_masks:masks"], run_dir=str(run),
                             n_samples=2, progress=False), stream=sys.stderr).run()
    finally:
        torch.set_num_threads(threads)
    path = run / "checkpoints" / "step_000000001.pt"
    saved = torch.load(path, weights_only=True)
    saved["method_config"]["hpf_masks"] = "evil_masks:masks"
    checkpoint_lib.save_atomic(saved, path)
    assert torch.load(path, weights_only=True)["method_config"]["hpf_masks"] == "evil_masks:masks"
    assert not modules.exists()
    return path, modules


def test_code_references_are_declared_in_the_config():
    assert config_lib.code_reference_keys(StarGANv2Config) == {"hpf_masks": ""}
    stored = {**dataclasses.asdict(StarGANv2Config()), "hpf_masks": "evil_masks:masks"}
    cleaned, dropped = config_lib.without_code_references(StarGANv2Config, stored)
    assert cleaned["hpf_masks"] == "" and dropped == {"hpf_masks": "evil_masks:masks"}
    assert stored["hpf_masks"] == "evil_masks:masks"  # the input is left as it was
    munit = registry.get_method_class("munit")
    assert config_lib.code_reference_keys(munit.Config) == {}


def test_a_configuration_file_never_names_code(tmp_path, modules):
    path = tmp_path / "celeba.yaml"
    path.write_text("w_hpf: 1.0\nhpf_masks: evil_masks:masks\n")
    cls = registry.get_method_class("stargan_v2")
    with pytest.raises(config_lib.ConfigError,
                       match=r"celeba.yaml: hpf_masks: a code reference \('evil_masks:masks'\) is "
                             r"not read from a file .* --set hpf_masks=evil_masks:masks"):
        registry.resolve_config(cls, str(path))
    assert not modules.exists()
    # from the command line or the caller it is taken
    assert registry.resolve_config(cls, None, ["hpf_masks=good_masks:masks"]).hpf_masks \
        == "good_masks:masks"


def test_loading_a_crafted_checkpoint_imports_nothing(crafted):
    path, marker = crafted
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        method = load_method(path)
    assert not marker.exists()
    assert method.mask_fn is None and method.config.hpf_masks == ""
    assert any("--set hpf_masks=evil_masks:masks" in str(w.message) for w in caught)
    # the caller gives the code reference it trusts
    method = load_method(path, code=["hpf_masks=good_masks:masks"])
    assert method.mask_fn is not None and not marker.exists()
    # and only code references: the rest of the configuration is the checkpoint's
    with pytest.raises(Exception, match=r"--set image_size: only the code references of "
                                        r"stargan_v2 \(hpf_masks\)"):
        load_method(path, code=["image_size=32"])


def test_translate_and_eval_of_a_crafted_checkpoint_import_nothing(crafted, tmp_path, capsys):
    path, marker = crafted
    image = tmp_path / "in.png"
    from PIL import Image

    Image.new("RGB", (16, 16), (10, 200, 30)).save(image)
    status = cli.main(["translate", "--checkpoint", str(path), "--input", str(image),
                       "--target-domain", "night", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert not marker.exists()
    assert status == 2 and "Traceback" not in err
    assert "i2i-fast translate: note: the checkpoint's configuration names code, " \
           "hpf_masks='evil_masks:masks': not imported" in err
    assert "--set hpf_masks=evil_masks:masks" in err
    assert "needs the masks of the high-pass skips" in err  # what the method says without them
    status = cli.main(["translate", "--checkpoint", str(path), "--input", str(image),
                       "--target-domain", "night", "--out", str(tmp_path / "out"),
                       "--set", "hpf_masks=good_masks:masks"])
    assert status == 0, capsys.readouterr().err
    assert (tmp_path / "out" / "in_style1.png").is_file()

    method, data = eval_command.load_checkpoint(path, "cpu")
    assert not marker.exists() and method.mask_fn is None and data == "synthetic:shapes-k2"
    assert "--set hpf_masks=evil_masks:masks" in capsys.readouterr().err


def test_resuming_a_crafted_checkpoint_imports_nothing(crafted):
    path, marker = crafted
    run = path.parent.parent
    import io

    stream = io.StringIO()
    Trainer(TrainOptions("stargan_v2", run_dir=str(run), resume="auto", progress=False),
            stream=stream).run()  # at max_iter already: builds the method, nothing to do
    assert not marker.exists()
    log = stream.getvalue()
    assert "nothing to do" in log
    assert "hpf_masks='evil_masks:masks': not imported" in log
    assert "--set hpf_masks=evil_masks:masks" in log
    # given again on the command line, the trusted one is used for the next steps
    stream = io.StringIO()
    result = Trainer(TrainOptions("stargan_v2", run_dir=str(run), resume="auto",
                                  overrides=["hpf_masks=good_masks:masks", "max_iter=2"],
                                  workers=0, progress=False), stream=stream).run()
    assert result.step == 2 and not marker.exists()
    assert "not imported" not in stream.getvalue()
