"""`i2i-fast eval` on a StarGAN v2 checkpoint: the official protocol's shape (10 outputs per input
and target domain, diversity as the mean over the 45 pairs), latent- and reference-guided, on
every ordered pair of the synthetic K-domain set's domains. Tiny networks and quickly trained
metric networks: this checks the mechanics, not the figures."""

from __future__ import annotations

import json

import pytest
import torch

from i2i_fast import cli
from i2i_fast.metrics import engine
from i2i_fast.metrics.classifier import ClassifierSettings
from i2i_fast.metrics.segmenter import SegmenterSettings
from i2i_fast.train import TrainOptions, Trainer

TINY_SET = ["image_size=32", "dim_in=8", "max_conv_dim=16", "style_dim=8", "latent_dim=4",
            "hidden_dim=16", "batch_size=2", "max_iter=2"]
QUICK_CLASSIFIER = ClassifierSettings(steps=3, batch_size=4, images_per_domain=4,
                                      val_per_domain=2)
QUICK_SEGMENTER = SegmenterSettings(steps=3, batch_size=4, images_per_domain=4, val_per_domain=2)


@pytest.fixture
def quick_metric_networks(monkeypatch):
    """The engine trains its classifier and segmenter with a few steps only."""
    classifier, segmenter = engine.domain_classifier, engine.shape_segmenter

    def quick_classifier(*args, settings=None, **kwargs):
        return classifier(*args, settings=QUICK_CLASSIFIER, **kwargs)

    def quick_segmenter(*args, settings=None, **kwargs):
        return segmenter(*args, settings=QUICK_SEGMENTER, **kwargs)

    monkeypatch.setattr(engine, "domain_classifier", quick_classifier)
    monkeypatch.setattr(engine, "shape_segmenter", quick_segmenter)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny networks gain nothing from threads, and a busy 2-core machine loses a lot."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def checkpoint(tmp_path):
    result = Trainer(TrainOptions(
        "stargan_v2", data="synthetic:shapes-k3", config="small", overrides=TINY_SET,
        run_dir=str(tmp_path / "run"), device="cpu", workers=0, sample_every=100,
        checkpoint_every=2, progress=False)).run()
    return result.last_checkpoint


def test_eval_latent_and_reference_guided(checkpoint, tmp_path, metrics_cache,
                                          quick_metric_networks, capsys):
    out = tmp_path / "report.json"
    status = cli.main(["eval", "--checkpoint", str(checkpoint), "--n-inputs", "2",
                       "--out", str(out), "--cache-dir", str(metrics_cache)])
    printed = capsys.readouterr()
    assert status == 0, printed.err
    assert "evaluation of stargan_v2 on synthetic:shapes-k3" in printed.out
    report = json.loads(out.read_text())
    assert report["modes"] == ["latent", "reference"] and report["n_styles"] == 10
    tasks = report["tasks"]
    domains = ["day", "night", "sunset"]
    expected = sorted((mode, s, t) for mode in ("latent", "reference") for s in domains
                      for t in domains if s != t)
    assert sorted((t["mode"], t["source"], t["target"]) for t in tasks) == expected
    for task in tasks:
        assert task["n_inputs"] == 2 and task["n_styles"] == 10
        assert task["pairs_per_input"] == 45
        assert task["direction"] is None
        assert 0.0 <= task["content_iou"] <= 1.0 and 0.0 <= task["target_accuracy"] <= 1.0
        assert task["diversity_l1"] > 0  # random styles / references give different outputs
