"""Evaluation of paired methods: mode "encoded" translates each input with its own ground-truth
target as the reference and measures the distance to that target."""

from __future__ import annotations

import pytest
import torch

from i2i_fast.metrics import IdentityBaseline, evaluate
from i2i_fast.metrics.baselines import Baseline
from i2i_fast.metrics.engine import EvaluationError
from i2i_fast.metrics.real_images import load_targets, open_domains

R = 32
DATA = "synthetic:shapes-paired"


class TargetEcho(Baseline):
    """A paired, reference-guided stand-in: returns the reference (the ground truth in mode
    "encoded"); random styles are the input."""

    name = "target_echo"
    reference_guided = True

    def translate(self, x, *, n_styles=1, reference=None, target_domain=None, generator=None):
        self._target(target_domain)
        if reference is not None:
            return reference.unsqueeze(1).clone()
        return x.unsqueeze(1).repeat(1, n_styles, 1, 1, 1)


def run(method, metrics_cache, **kwargs):
    return evaluate(method, DATA, resolution=R, n_inputs=5, n_styles=2, cache_dir=metrics_cache,
                    log=lambda message: None, **kwargs)


def test_encoded_mode_measures_the_distance_to_the_ground_truth(metrics_cache):
    report = run(TargetEcho("paired"), metrics_cache)
    assert report.modes == ["latent", "encoded"]  # the default for a reference-guided method
    latent, encoded = report.tasks
    assert (latent.target_l1, latent.target_lpips) == (None, None)
    assert (encoded.mode, encoded.n_styles, encoded.pairs_per_input) == ("encoded", 1, 0)
    assert encoded.target_l1 == 0.0 and encoded.target_lpips is None  # no LPIPS weights given
    assert encoded.target_accuracy > 0.9 and encoded.content_iou > 0.85
    table = report.table()
    assert "L1 to target" in table and "LPIPS to target" in table
    assert report.summary()["encoded"]["target_l1"] == 0.0


def test_encoded_mode_of_the_identity_is_far_from_the_target(metrics_cache):
    report = run(IdentityBaseline("paired"), metrics_cache, modes=["encoded"])
    test = open_domains(DATA, "paired", "test", R)
    inputs = torch.stack([test.domains[0].load(i)["image"] for i in range(5)])
    expected = (inputs - load_targets(test, range(5))).abs().flatten(1).mean(1).mean()
    assert report.tasks[0].target_l1 == pytest.approx(float(expected), rel=1e-5)
    assert report.tasks[0].target_l1 > 0.3
    assert run(IdentityBaseline("paired"), metrics_cache).modes == ["latent"]


def test_targets_are_the_pairs_of_the_inputs():
    test = open_domains(DATA, "paired", "test", R)
    pair = test.pairs.load(3)
    torch.testing.assert_close(test.domains[0].load(3)["image"], pair["a"])
    torch.testing.assert_close(load_targets(test, [3])[0], pair["b"])
    with pytest.raises(ValueError, match="has no ground-truth pairs"):
        load_targets(open_domains("synthetic:shapes", "unpaired", "test", R), [0])


def test_encoded_mode_needs_a_paired_method(metrics_cache):
    with pytest.raises(EvaluationError, match="'encoded' needs ground-truth pairs"):
        evaluate(IdentityBaseline("unpaired"), "synthetic:shapes", resolution=R, n_inputs=2,
                 modes=["encoded"], cache_dir=metrics_cache, log=lambda message: None)
