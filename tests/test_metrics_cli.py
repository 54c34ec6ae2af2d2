"""`i2i-fast eval`: checkpoints and baselines through the command line; user errors are one line
and exit status 2."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from torch import nn

from i2i_fast import cli
from i2i_fast.methods import Method, registry
from i2i_fast.metrics import evaluate
from i2i_fast.train import checkpoint

R = 32


@dataclasses.dataclass
class ToyConfig:
    image_size: int = R
    width: int = 4


class ToyTranslator(Method):
    """A tiny A -> B translator: one conv on the image and a random style plane."""

    name = "toy_eval"
    Config = ToyConfig
    data_kind = "unpaired"

    def __init__(self, config, context=None):
        super().__init__(config, context)
        self.net = nn.Conv2d(4, 3, 3, padding=1)

    def train_step(self, batch, step):
        return {}

    def sample_visuals(self, batch, generator=None):
        return {}

    def translate(self, x, *, n_styles=1, reference=None, target_domain=None, generator=None):
        n, _, h, w = x.shape
        outs = []
        for _ in range(n_styles):
            z = torch.randn(n, 1, 1, 1, generator=generator).expand(n, 1, h, w)
            outs.append(torch.tanh(self.net(torch.cat([x, z], dim=1))))
        return torch.stack(outs, dim=1)


@pytest.fixture
def toy_registered(monkeypatch):
    original = registry._entry_infos

    def with_toy():
        return original() + [registry.MethodInfo("toy_eval", f"{__name__}:ToyTranslator",
                                                 "tests", "0", builtin=False)]

    monkeypatch.setattr(registry, "_entry_infos", with_toy)


def checkpoint_payload(method_name, method_config, training_state, data=None):
    """What the trainer writes (i2i_fast.train.checkpoint), with the fields eval reads."""
    return {"format": checkpoint.FORMAT, "format_version": checkpoint.FORMAT_VERSION,
            "method": method_name, "method_config": method_config, "step": 1,
            "training_state": training_state, "train_options": {"data": data}}


def toy_checkpoint(path, data=None):
    torch.manual_seed(5)
    method = ToyTranslator(ToyConfig())
    with torch.no_grad():
        method.net.weight.mul_(3.0)
    checkpoint.save_atomic(checkpoint_payload("toy_eval", dataclasses.asdict(method.config),
                                              method.training_state(), data), path)
    return method


def test_eval_a_checkpoint(tmp_path, metrics_cache, toy_registered, capsys):
    ckpt = tmp_path / "toy.pt"
    method = toy_checkpoint(ckpt, data="synthetic:shapes")
    out = tmp_path / "report.json"
    code = cli.main(["eval", "--checkpoint", str(ckpt), "--n-inputs", "3", "--n-styles", "2",
                     "--out", str(out), "--cache-dir", str(metrics_cache)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "evaluation of toy_eval on synthetic:shapes" in printed and "day->night" in printed
    report = json.loads(out.read_text())
    assert report["method"] == "toy_eval" and report["resolution"] == R
    assert [t["direction"] for t in report["tasks"]] == ["a2b", "b2a"]
    # The checkpoint's weights were loaded: same figures as the method evaluated in memory.
    direct = evaluate(method, "synthetic:shapes", n_inputs=3, n_styles=2,
                      cache_dir=metrics_cache, log=lambda m: None)
    for key in ("content_iou", "target_accuracy", "diversity_l1"):
        assert report["tasks"][0][key] == getattr(direct.tasks[0], key)


def test_eval_a_baseline(tmp_path, metrics_cache, capsys):
    out = tmp_path / "sub" / "oracle.json"
    code = cli.main(["eval", "--baseline", "oracle", "--data", "synthetic:shapes",
                     "--resolution", str(R), "--n-inputs", "2", "--n-styles", "2",
                     "--direction", "b2a", "--out", str(out), "--cache-dir", str(metrics_cache)])
    assert code == 0
    report = json.loads(out.read_text())
    assert [t["direction"] for t in report["tasks"]] == ["b2a"]
    assert report["tasks"][0]["target_accuracy"] > 0.9
    assert report["lpips"].startswith("unavailable: no LPIPS backbone weights given")
    assert f"report written to {out}" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--checkpoint", "{tmp}/missing.pt"], "no such file"),
    (["--checkpoint", "{tmp}/corrupt.pt"], "cannot be read with torch.load(weights_only=True)"),
    (["--checkpoint", "{tmp}/nokeys.pt"], "expected an i2i_fast checkpoint"),
    (["--checkpoint", "{tmp}/unknown.pt", "--data", "synthetic:shapes"],
     "method 'no_such_method'"),
    (["--checkpoint", "{tmp}/nodata.pt"], "--data: not given and the checkpoint stores no data"),
    (["--baseline", "identity"], "--baseline needs --data synthetic:NAME and --resolution R"),
    (["--baseline", "identity", "--data", "{tmp}", "--resolution", "32"],
     "data: expected a synthetic set with ground truth"),
    (["--baseline", "identity", "--data", "synthetic:shapes", "--resolution", "32",
      "--lpips-weights", "{tmp}/none.pth"], "lpips weights: "),
    (["--baseline", "identity", "--data", "synthetic:shapes", "--resolution", "32",
      "--inception-weights", "{tmp}/none.pth"], "inception weights: "),
    (["--baseline", "identity", "--data", "synthetic:shapes", "--resolution", "32",
      "--n-inputs", "0"], "n_inputs: expected an int >= 1, got 0"),
    (["--baseline", "identity", "--data", "synthetic:shapes", "--resolution", "32",
      "--device", "cuda:0"], "--device"),
])
def test_user_errors_are_one_line_and_exit_2(tmp_path, toy_registered, capsys, args, message):
    (tmp_path / "corrupt.pt").write_bytes(b"\x00garbage")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "nokeys.pt")
    torch.save(checkpoint_payload("no_such_method", {}, {"networks": {}}),
               tmp_path / "unknown.pt")
    toy_checkpoint(tmp_path / "nodata.pt")
    if "--device" in args and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    argv = ["eval"] + [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("i2i-fast eval: error: ") and message in err
    assert "Traceback" not in err


def test_checkpoint_or_baseline_is_required(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["eval", "--data", "synthetic:shapes"])
    assert exit_info.value.code == 2
    assert "one of the arguments --checkpoint --baseline is required" in capsys.readouterr().err
