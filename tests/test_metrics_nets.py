"""Metric networks on real synthetic images: domain classifier, shape segmenter, IoU, disk cache."""

from __future__ import annotations

import pytest
import torch

from i2i_fast.data import segment_shapes
from i2i_fast.metrics import (
    ClassifierSettings,
    SegmenterSettings,
    domain_classifier,
    mask_iou,
    shape_segmenter,
)
from i2i_fast.metrics.real_images import domain_at, load_images

R = 32
STYLES = ("day", "night")
TINY_CLASSIFIER = ClassifierSettings(steps=3, batch_size=4, images_per_domain=4, val_per_domain=2)
TINY_SEGMENTER = SegmenterSettings(steps=3, batch_size=4, images_per_domain=4, val_per_domain=2)


def quiet(message: str) -> None:
    pass


@pytest.fixture(scope="module")
def classifier(metrics_cache):
    return domain_classifier(STYLES, R, cache_dir=metrics_cache, log=quiet)


@pytest.fixture(scope="module")
def segmenter(metrics_cache):
    return shape_segmenter(STYLES, R, cache_dir=metrics_cache, log=quiet)


def held_out(label: int, start: int = 100, count: int = 40):
    """Val-split images the networks' own held-out check did not use (indices >= 100)."""
    return load_images(domain_at(STYLES, "val", R, 0, label), range(start, start + count))


def test_classifier_is_accurate_on_held_out_real_images(classifier):
    assert classifier.info["val_accuracy"] >= 0.97
    assert set(classifier.info["val_accuracy_per_domain"]) == set(STYLES)
    for label in range(len(STYLES)):
        x, _ = held_out(label)
        accuracy = (classifier.net.predict(x) == label).float().mean().item()
        assert accuracy >= 0.95, (STYLES[label], accuracy)


def test_mask_iou_definition():
    a = torch.zeros(3, 1, 4, 4)
    a[0, 0, :2] = 1  # 8 pixels
    a[1, 0, :, :1] = 1  # 4 pixels
    b = torch.zeros(3, 1, 4, 4)
    b[0, 0, :1] = 1  # 4 of a[0]'s 8
    b[1, 0, :, 3:] = 1  # disjoint from a[1]
    iou = mask_iou(a, b)
    assert iou.tolist() == [0.5, 0.0, 1.0]  # last: both empty
    assert mask_iou(a, a).tolist() == [1.0, 1.0, 1.0]


def test_image_against_its_own_mask_scores_one_and_segmenters_nearly(segmenter):
    for label, style in enumerate(STYLES):
        x, m = held_out(label, count=24)
        assert torch.equal(mask_iou(m, m), torch.ones(24))
        # Only anti-aliased boundary pixels can disagree: at 32 x 32 that costs a few percent.
        assert mask_iou(segment_shapes(x, style), m).mean() > 0.9
        assert mask_iou(segmenter.net.segment(x), m).mean() > 0.9


def test_segmenter_matches_the_lightness_rule_on_real_images(segmenter):
    info = segmenter.info
    assert info["val_iou"] > 0.93
    assert info["val_iou"] > info["rule_val_iou"] - 0.02
    assert set(info["val_iou_per_domain"]) == set(STYLES)


def test_segmenter_finds_no_shapes_where_there_are_none(segmenter):
    # The content of another scene (same domain) overlaps the input's mask only by chance.
    x, m = held_out(0, count=24)
    other = torch.roll(m, 1, dims=0)
    assert mask_iou(segmenter.net.segment(x), other).mean() < 0.3


def test_cache_reuses_a_trained_network(classifier, metrics_cache):
    again = domain_classifier(STYLES, R, cache_dir=metrics_cache, log=quiet)
    assert not again.trained_now and again.path == classifier.path
    for k, v in classifier.net.state_dict().items():
        assert torch.equal(v, again.net.state_dict()[k])


def test_cache_key_follows_settings_and_styles(tmp_path):
    a = domain_classifier(STYLES, 16, settings=TINY_CLASSIFIER, cache_dir=tmp_path, log=quiet)
    b = domain_classifier(STYLES, 16, settings=ClassifierSettings(
        steps=4, batch_size=4, images_per_domain=4, val_per_domain=2), cache_dir=tmp_path, log=quiet)
    c = domain_classifier(("night", "day"), 16, settings=TINY_CLASSIFIER, cache_dir=tmp_path,
                          log=quiet)
    assert a.trained_now and b.trained_now and c.trained_now
    assert len({a.path, b.path, c.path}) == 3


def test_training_is_deterministic(tmp_path):
    a = shape_segmenter(STYLES, 16, settings=TINY_SEGMENTER, cache_dir=tmp_path / "a", log=quiet)
    b = shape_segmenter(STYLES, 16, settings=TINY_SEGMENTER, cache_dir=tmp_path / "b", log=quiet)
    assert a.trained_now and b.trained_now
    for k, v in a.net.state_dict().items():
        assert torch.equal(v, b.net.state_dict()[k]), k


def test_training_leaves_the_global_rng_alone(tmp_path):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    domain_classifier(STYLES, 16, settings=TINY_CLASSIFIER, cache_dir=tmp_path, log=quiet)
    assert torch.equal(torch.rand(3), expected)


def test_unreadable_cache_file_is_retrained_with_a_warning(tmp_path):
    first = domain_classifier(STYLES, 16, settings=TINY_CLASSIFIER, cache_dir=tmp_path, log=quiet)
    first.path.write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="could not be read"):
        again = domain_classifier(STYLES, 16, settings=TINY_CLASSIFIER, cache_dir=tmp_path,
                                  log=quiet)
    assert again.trained_now
    assert again.path.read_bytes() != b"not a torch file"


def test_bad_arguments(classifier, segmenter):
    with pytest.raises(ValueError, match=r"images: expected shape \(N, 3, 32, 32\), got \(2, 3, 16"):
        classifier.net.predict(torch.zeros(2, 3, 16, 16))
    with pytest.raises(ValueError, match=r"expected shape \(N, 3, 32, 32\), got \(3, 32, 32\)"):
        segmenter.net.segment(torch.zeros(3, 32, 32))
    with pytest.raises(TypeError, match="images: expected a floating dtype, got torch.uint8"):
        segmenter.net.segment(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="styles: expected at least 2 domains"):
        domain_classifier(("day",), R)
    with pytest.raises(ValueError, match=r"predicted, target: expected the same shape"):
        mask_iou(torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 5))


def test_training_shows_progress(tmp_path, capsys):
    domain_classifier(STYLES, 16, settings=TINY_CLASSIFIER, cache_dir=tmp_path / "c", log=quiet)
    shape_segmenter(STYLES, 16, settings=TINY_SEGMENTER, cache_dir=tmp_path / "s", log=quiet)
    err = capsys.readouterr().err
    for what in ("domain classifier", "shape segmenter"):
        assert f"training the {what}: 100%" in err and "3/3" in err and "loss=" in err
    # loaded from the cache: nothing to show; progress=False: no bar
    domain_classifier(STYLES, 16, settings=TINY_CLASSIFIER, cache_dir=tmp_path / "c", log=quiet)
    domain_classifier(STYLES, 16, settings=TINY_CLASSIFIER, cache_dir=tmp_path / "q", log=quiet,
                      progress=False)
    assert capsys.readouterr().err == ""
