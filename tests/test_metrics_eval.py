"""The evaluation engine on stand-in translators: the metrics separate them in the expected
direction, runs are deterministic by seed, and bad arguments or outputs give clear errors."""

from __future__ import annotations

import json

import pytest
import torch

from i2i_fast.metrics import (
    IdentityBaseline,
    OracleBaseline,
    RandomBaseline,
    evaluate,
)
from i2i_fast.metrics.engine import EvaluationError, _modes, _tasks

R = 32
DATA = "synthetic:shapes"  # day (A) and night (B)


def quiet(message: str) -> None:
    pass


def run(method, metrics_cache, **kwargs):
    options = {"resolution": R, "n_inputs": 6, "n_styles": 3, "cache_dir": metrics_cache,
               "log": quiet}
    options.update(kwargs)
    return evaluate(method, DATA, **options)


def rows(report):
    return {(t.mode, t.source, t.target): t for t in report.tasks}


@pytest.fixture(scope="module")
def unpaired_reports(metrics_cache):
    methods = {
        "identity": IdentityBaseline("unpaired"),
        "oracle": OracleBaseline(DATA, R, "unpaired"),
        "wrong_scene": OracleBaseline(DATA, R, "unpaired", scene_offset=1),
        "random": RandomBaseline("unpaired"),
    }
    return {name: run(m, metrics_cache) for name, m in methods.items()}


def test_two_domain_methods_are_evaluated_in_both_directions(unpaired_reports):
    for report in unpaired_reports.values():
        assert [(t.direction, t.source, t.target) for t in report.tasks] == [
            ("a2b", "day", "night"), ("b2a", "night", "day")]
        assert report.notes == []
        for t in report.tasks:
            assert (t.n_inputs, t.n_styles, t.pairs_per_input) == (6, 3, 3)


def test_stand_ins_separate_on_every_metric(unpaired_reports):
    for t in unpaired_reports["identity"].tasks:  # content kept, domain unchanged, no diversity
        assert t.content_iou > 0.85
        assert t.target_accuracy < 0.1
        assert t.diversity_l1 == 0.0
    for t in unpaired_reports["oracle"].tasks:  # content kept, right domain, diverse
        assert t.content_iou > 0.85
        assert t.target_accuracy > 0.9
        assert t.diversity_l1 > 0.05
    for t in unpaired_reports["wrong_scene"].tasks:  # right domain, diverse, content lost
        assert t.content_iou < 0.35
        assert t.target_accuracy > 0.9
    for t in unpaired_reports["random"].tasks:  # no content
        assert t.content_iou < 0.3
        assert t.diversity_l1 > 0.5  # uniform noise: E|u - v| = 2/3 in [-1, 1]


def test_report_json_and_table(unpaired_reports):
    report = unpaired_reports["oracle"]
    data = json.loads(report.to_json())
    assert data["method"] == "oracle" and data["data"] == DATA
    assert (data["n_inputs"], data["n_styles"], data["seed"], data["resolution"]) == (6, 3, 0, R)
    assert data["lpips"].startswith("unavailable") and data["fid"].startswith("unavailable")
    assert data["sanity"]["classifier_val_accuracy"] >= 0.97
    assert data["summary"]["latent"]["content_iou"] == pytest.approx(
        sum(t.content_iou for t in report.tasks) / 2)
    table = report.table()
    assert "day->night (a2b)" in table and "night->day (b2a)" in table
    assert "sanity (real held-out images): domain classifier accuracy" in table
    assert "LPIPS: unavailable" in table


def test_multi_domain_latent_and_reference(metrics_cache):
    oracle = run(OracleBaseline(DATA, R, "multi_domain"), metrics_cache)
    identity = run(IdentityBaseline("multi_domain"), metrics_cache)
    assert oracle.modes == ["latent", "reference"]
    assert sorted(rows(oracle)) == [("latent", "day", "night"), ("latent", "night", "day"),
                                    ("reference", "day", "night"), ("reference", "night", "day")]
    for t in oracle.tasks:
        assert t.direction is None
        assert t.content_iou > 0.85 and t.target_accuracy > 0.9 and t.diversity_l1 > 0.05
    for t in identity.tasks:
        assert t.content_iou > 0.85 and t.target_accuracy < 0.1 and t.diversity_l1 == 0.0


def test_default_modes_follow_the_data_kind_and_reference_guidance():
    assert _modes("unpaired", None, False) == ["latent"]
    assert _modes("unpaired", None, True) == ["latent", "reference"]  # MUNIT, a target's style
    assert _modes("multi_domain", None, False) == ["latent", "reference"]
    assert _modes("paired", None, False) == ["latent"]
    assert _modes("paired", None, True) == ["latent", "encoded"]  # BicycleGAN's E(target)


def test_every_ordered_pair_of_domains_is_a_task():
    tasks = _tasks("multi_domain", 3, ["latent", "reference"], [])
    assert [(t.mode, t.source, t.target) for t in tasks] == [
        (m, s, t) for m in ("latent", "reference") for s in range(3) for t in range(3) if s != t]
    assert len(_tasks("unpaired", 2, ["latent"], ["a2b", "b2a"])) == 2


def test_deterministic_by_seed(metrics_cache, unpaired_reports):
    def figures(report):
        data = report.to_dict()
        return [{k: v for k, v in t.items() if k != "seconds"} for t in data["tasks"]]

    again = run(OracleBaseline(DATA, R, "unpaired"), metrics_cache)
    assert figures(again) == figures(unpaired_reports["oracle"])
    other = run(OracleBaseline(DATA, R, "unpaired"), metrics_cache, seed=1)
    assert [t.diversity_l1 for t in other.tasks] != [
        t.diversity_l1 for t in unpaired_reports["oracle"].tasks]
    # A task's figures do not depend on which other tasks ran.
    alone = run(OracleBaseline(DATA, R, "unpaired"), metrics_cache, directions=["b2a"])
    assert figures(alone) == figures(unpaired_reports["oracle"])[1:]


class RecordingTranslator:
    """A two-domain translator that returns its input and records the target_domain of each
    call (the contract names the two domains "a" and "b")."""

    data_kind = "unpaired"
    name = "recording"

    def __init__(self, output=None):
        self.output = output
        self.targets = []

    def translate(self, x, *, n_styles=1, reference=None, target_domain=None, generator=None):
        self.targets.append(target_domain)
        if self.output is not None:
            return self.output(x, n_styles)
        return x.unsqueeze(1).repeat(1, n_styles, 1, 1, 1)


def test_two_domain_directions_reach_translate_as_target_domain(metrics_cache):
    method = RecordingTranslator()
    report = run(method, metrics_cache, n_inputs=2)
    assert [t.direction for t in report.tasks] == ["a2b", "b2a"]
    assert set(method.targets) == {"a", "b"}
    assert method.targets.index("b") < method.targets.index("a")
    method.targets.clear()
    run(method, metrics_cache, n_inputs=2, directions=["b2a"])
    assert set(method.targets) == {"a"}


def test_one_style_has_no_diversity(metrics_cache):
    report = run(IdentityBaseline(), metrics_cache, n_inputs=2, n_styles=1)
    assert all(t.diversity_l1 is None and t.pairs_per_input == 0 for t in report.tasks)
    assert any("K = 1" in n for n in report.notes)
    assert "n/a" in report.table()


def test_outputs_are_clamped_to_the_image_range(metrics_cache):
    loud = RecordingTranslator(lambda x, k: (3 * x).unsqueeze(1).repeat(1, k, 1, 1, 1))
    clamped = RecordingTranslator(lambda x, k: (3 * x).clamp(-1, 1).unsqueeze(1).repeat(1, k, 1, 1, 1))
    a = run(loud, metrics_cache, n_inputs=2).tasks[0]
    b = run(clamped, metrics_cache, n_inputs=2).tasks[0]
    assert (a.content_iou, a.target_accuracy) == (b.content_iou, b.target_accuracy)


def test_bad_outputs_are_errors_naming_the_task(metrics_cache):
    wrong = RecordingTranslator(lambda x, k: x.unsqueeze(1))  # K = 1 instead of 3
    with pytest.raises(EvaluationError, match=r"latent, day -> night\): expected an output of "
                                              r"shape \(2, 3, 3, 32, 32\), got \(2, 1, 3, 32, 32\)"):
        run(wrong, metrics_cache, n_inputs=2)
    nan = RecordingTranslator(lambda x, k: torch.full((x.shape[0], k, 3, R, R), float("nan")))
    with pytest.raises(EvaluationError, match="NaN or Inf"):
        run(nan, metrics_cache, n_inputs=2)


def test_bad_arguments(metrics_cache, tmp_path):
    m = IdentityBaseline()
    with pytest.raises(EvaluationError, match="data: expected a synthetic set with ground truth"):
        evaluate(m, str(tmp_path), resolution=R)
    with pytest.raises(EvaluationError, match="kind 'unpaired' needs two domains"):
        evaluate(m, "synthetic:shapes-k3", resolution=R, cache_dir=metrics_cache)
    with pytest.raises(EvaluationError, match="n_inputs: expected at most 500"):
        run(m, metrics_cache, n_inputs=501)
    with pytest.raises(EvaluationError, match="n_styles: expected an int >= 1, got 0"):
        run(m, metrics_cache, n_styles=0)
    with pytest.raises(TypeError, match="seed: expected an int, got float"):
        run(m, metrics_cache, seed=1.5)
    with pytest.raises(EvaluationError, match="modes: expected distinct values"):
        run(m, metrics_cache, modes=["latent", "style"])
    with pytest.raises(EvaluationError, match="directions: expected distinct values"):
        run(m, metrics_cache, directions=["a2b", "a2b"])
    with pytest.raises(EvaluationError, match="directions: only for two-domain methods"):
        run(IdentityBaseline("multi_domain"), metrics_cache, directions=["a2b"])
    with pytest.raises(EvaluationError, match="resolution: not given"):
        evaluate(m, DATA)
    with pytest.raises(TypeError, match="method: expected an object with a translate"):
        evaluate(object(), DATA, resolution=R)
    no_kind = RecordingTranslator()
    no_kind.data_kind = "video"
    with pytest.raises(EvaluationError, match="data_kind: expected one of unpaired"):
        run(no_kind, metrics_cache)


def test_oracle_refuses_images_it_does_not_know():
    oracle = OracleBaseline(DATA, 16, "unpaired", split="test")  # searches all 2 x 500 images
    with pytest.raises(ValueError, match="x: an image that is not in synthetic:shapes"):
        oracle.translate(torch.zeros(1, 3, 16, 16))


class OneClusterReferenceCopier:
    """A stand-in for a method trained without labels: every image in cluster 0; a translation
    is the reference itself."""

    name = "one_cluster"
    data_kind = "unlabelled"

    def __init__(self):
        self.targets = []

    def translate(self, x, *, n_styles=1, reference=None, target_domain=None, generator=None):
        self.targets.append(target_domain)
        assert reference is not None and n_styles == 1
        return reference.unsqueeze(1).clone()

    def cluster(self, x):
        return torch.zeros(x.shape[0], dtype=torch.int64)


def test_unlabelled_methods_are_evaluated_by_reference_with_their_clusters(metrics_cache):
    """Data kind "unlabelled" (TUNIT): by reference only, no target domain; its clusters
    scored (accuracy after the best matching, NMI)."""
    method = OneClusterReferenceCopier()
    report = evaluate(method, "synthetic:shapes", resolution=32, n_inputs=6, n_styles=2,
                      cache_dir=metrics_cache, log=lambda message: None)
    assert {t.mode for t in report.tasks} == {"reference"}
    assert len(report.tasks) == 2  # both ordered pairs of the 2 domains
    assert set(method.targets) == {None}  # the reference gives the style, no target domain
    for task in report.tasks:  # the reference itself: of the target domain
        assert task.target_accuracy > 0.9
    c = report.clustering
    assert c["accuracy"] == pytest.approx(1 / 2) and c["nmi"] == 0.0
    assert c["cluster_sizes"] == {0: c["images"]}
    assert "clustering of the" in report.table()
    with pytest.raises(EvaluationError, match="reference"):
        evaluate(method, "synthetic:shapes", resolution=32, modes=["latent"],
                 cache_dir=metrics_cache)
