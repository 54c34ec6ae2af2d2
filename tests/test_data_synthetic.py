"""Synthetic sets: determinism, resolution independence, ground truth, domains, variation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from i2i_fast.data import STYLE_ORDER, STYLES, open_dataset, segment_shapes
from i2i_fast.data import seeding
from i2i_fast.data.shapes import GAP, MARGIN, MAX_SHAPES, sample_scene
from i2i_fast.data.styles import luma
from i2i_fast.data.synthetic import SyntheticDomain, render


def domain(style: str, resolution: int = 48, seed: int = 0, split: str = "train") -> SyntheticDomain:
    return SyntheticDomain(style, resolution, size=200, seed=seed, split=split,
                           slot=STYLE_ORDER.index(style))


def boundary(mask: torch.Tensor) -> torch.Tensor:
    """Pixels whose 3x3 neighbourhood holds both mask values: (1, H, W) bool."""
    m = mask[None]
    dilated = F.max_pool2d(m, 3, stride=1, padding=1)
    eroded = -F.max_pool2d(-m, 3, stride=1, padding=1)
    return (dilated != eroded)[0]


@pytest.mark.parametrize("spec, kind", [
    ("synthetic:shapes", "unpaired"),
    ("synthetic:shapes-paired", "paired"),
    ("synthetic:shapes-k3", "multi_domain"),
    ("synthetic:shapes-k3", "reference"),
])
def test_same_seed_same_items_other_seed_other_items(spec, kind):
    a = open_dataset(spec, kind, resolution=32, seed=3, size=20)
    b = open_dataset(spec, kind, resolution=32, seed=3, size=20)
    c = open_dataset(spec, kind, resolution=32, seed=4, size=20)
    for i in (0, 7, 19):
        x, y, z = a[i], b[i], c[i]
        assert x.keys() == y.keys() == z.keys()
        for k in x:
            assert torch.equal(x[k], y[k]), k
        image_key = "a" if "a" in x else "image"
        assert not torch.equal(x[image_key], z[image_key])


def test_splits_hold_different_scenes():
    train = domain("day", split="train")
    test = domain("day", split="test")
    assert all(not torch.equal(train.load(i)["mask"], test.load(i)["mask"]) for i in range(5))


@pytest.mark.parametrize("style", STYLE_ORDER)
def test_geometry_and_style_do_not_depend_on_resolution(style):
    hi, lo = domain(style, 256), domain(style, 64)
    for i in range(4):
        h, l = hi.load(i), lo.load(i)
        mask_from_hi = (F.avg_pool2d(h["mask"][None], 4)[0] > 0.5).float()
        assert (mask_from_hi != l["mask"]).float().mean() < 0.01
        image_from_hi = F.avg_pool2d(h["image"][None], 4)[0]
        assert (image_from_hi - l["image"]).abs().mean() < 0.03


@pytest.mark.parametrize("resolution", [8, 17, 32, 64])
@pytest.mark.parametrize("style", STYLE_ORDER)
def test_value_range_shapes_and_dtypes(style, resolution):
    d = domain(style, resolution)
    for i in range(3):
        item = d.load(i)
        img, mask = item["image"], item["mask"]
        assert img.shape == (3, resolution, resolution) and img.dtype == torch.float32
        assert mask.shape == (1, resolution, resolution) and mask.dtype == torch.float32
        assert img.is_contiguous() and torch.isfinite(img).all()
        assert img.min() >= -1 and img.max() <= 1
        assert set(mask.unique().tolist()) <= {0.0, 1.0}


def test_scenes_have_separate_whole_shapes():
    for i in range(300):
        scene = sample_scene(seeding.rng(0, "test", i))
        assert 1 <= len(scene) <= MAX_SHAPES
        for c, r in zip(scene.centers, scene.radii):
            assert np.all(c - r >= MARGIN - 1e-12) and np.all(c + r <= 1 - MARGIN + 1e-12)
        for j, k in itertools.combinations(range(len(scene)), 2):
            gap = math.dist(scene.centers[j], scene.centers[k]) - scene.radii[j] - scene.radii[k]
            assert gap >= GAP - 1e-12


@pytest.mark.parametrize("style", STYLE_ORDER)
def test_mask_matches_the_segmentation_rule_except_on_edges(style):
    """The lightness rule of the style gives the mask exactly, up to anti-aliased edge pixels,
    and away from edges the lightness keeps a margin from the threshold."""
    st = STYLES[style]
    d = domain(style, 64)
    ious = []
    for i in range(40):
        item = d.load(i)
        mask = item["mask"]
        seg = segment_shapes(item["image"], style)
        edge = boundary(mask)
        assert not ((seg != mask) & ~edge).any(), f"image {i}: disagreement off the shape edges"
        y = luma((item["image"] + 1) / 2)
        inside, outside = y[(mask == 1) & ~edge], y[(mask == 0) & ~edge]
        sign = 1 if st.shapes_are == "brighter" else -1
        assert (sign * (inside - st.threshold)).min() > 0.08
        assert (sign * (st.threshold - outside)).min() > 0.08
        ious.append(((seg * mask).sum() / ((seg + mask).clamp(max=1)).sum()).item())
    assert np.mean(ious) > 0.95


def features(images: torch.Tensor) -> torch.Tensor:
    """Per image: median luma Y, median B - Y, median R - Y (the background's colour: shapes
    cover less than half the image) and median |Laplacian| of Y (its texture): (N, 4)."""
    rgb = (images + 1) / 2
    y = luma(rgb)[:, 0]
    lap = torch.tensor([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=torch.float32).view(1, 1, 3, 3)
    texture = F.conv2d(y[:, None], lap).abs()
    stats = [y, rgb[:, 2] - y, rgb[:, 0] - y, texture]
    return torch.stack([s.flatten(1).median(1).values for s in stats], 1)


def test_every_pair_of_domains_is_separated_by_one_simple_statistic():
    """For every two styles, one of the four statistics has disjoint ranges over 100 images each."""
    ds = open_dataset("synthetic:shapes-k5", "multi_domain", resolution=32, size=100, balanced=False)
    images = torch.stack([ds[i]["image"] for i in range(len(ds))])
    labels = torch.tensor([int(ds[i]["domain"]) for i in range(len(ds))])
    feats = features(images)
    for j, k in itertools.combinations(range(5), 2):
        fj, fk = feats[labels == j], feats[labels == k]
        gaps = torch.maximum(fk.min(0).values - fj.max(0).values, fj.min(0).values - fk.max(0).values)
        assert gaps.max() > 0.01, (STYLE_ORDER[j], STYLE_ORDER[k], gaps)


@pytest.mark.parametrize("style", STYLE_ORDER)
def test_style_varies_within_a_domain(style):
    """One scene, several draws of the style parameters: same mask, clearly different images."""
    d = domain(style, 32)
    scene = d.scene(0)
    renders = [render(scene, style, d.style_params(i), 32) for i in range(6)]
    for (img1, m1), (img2, m2) in itertools.combinations(renders, 2):
        assert torch.equal(m1, m2)
        assert (img1 - img2).abs().mean() > 0.03
    # and the images of the domain spread in colour, not only in geometry
    means = torch.stack([d.load(i)["image"].mean((1, 2)) for i in range(30)])
    assert means.std(0).max() > 0.04


def test_paired_items_share_geometry_and_differ_in_style():
    ds = open_dataset("synthetic:shapes-paired", "paired", resolution=32, size=10)
    for i in range(10):
        item = ds[i]
        assert torch.equal(item["a_mask"], item["b_mask"])
        background = item["a_mask"][0] == 0
        a_light = luma((item["a"] + 1) / 2)[0][background].mean()
        b_light = luma((item["b"] + 1) / 2)[0][background].mean()
        assert a_light > 0.7 and b_light < 0.3  # day and night
    # "a" of the pairs is the same image as "a" of the unpaired set (same scenes, same styles)
    unpaired = open_dataset("synthetic:shapes", "unpaired", resolution=32, size=10)
    assert torch.equal(unpaired[3]["a"], ds[3]["a"])


def test_unpaired_b_is_drawn_independently_of_a():
    ds = open_dataset("synthetic:shapes", "unpaired", resolution=16, size=50)
    for epoch in (0, 1):
        b = [ds.b_index(epoch, i) for i in range(50)]
        assert sorted(b) == list(range(50))  # each B image once per epoch
        assert sum(bi == i for i, bi in enumerate(b)) < 10  # not tied to a's index
    assert [ds.b_index(0, i) for i in range(50)] != [ds.b_index(1, i) for i in range(50)]
    # the item really uses that B image
    assert torch.equal(ds[(1, 5)]["b"], ds.b.load(ds.b_index(1, 5))["image"])


def test_multi_domain_labels_and_names():
    ds = open_dataset("synthetic:shapes", "multi_domain", resolution=16, size=4,
                      domains=["sunset", "paper", "day"])
    assert ds.domain_names == ("sunset", "paper", "day") and len(ds) == 12
    assert [int(ds[i]["domain"]) for i in range(12)] == [0] * 4 + [1] * 4 + [2] * 4
    assert ds[0]["domain"].dtype == torch.int64 and ds[0]["domain"].dim() == 0
    ref = open_dataset("synthetic:shapes-k3", "reference", resolution=16, size=6)
    for i in range(len(ref)):
        item = ref[i]
        d = int(item["domain"])
        assert set(item) == {"image", "image2", "mask", "mask2", "domain"}
        # image2 is an image of the same domain
        j = [k for k in range(6) if torch.equal(ref.domains[d].load(k)["image"], item["image2"])]
        assert len(j) == 1


@pytest.mark.parametrize("call, error, pattern", [
    (lambda: open_dataset("synthetic:cubes", "unpaired"), ValueError,
     r"spec: expected synthetic:<name> with name one of shapes, .* got synthetic:cubes"),
    (lambda: open_dataset("synthetic:shapes-paired", "unpaired"), ValueError,
     r"synthetic:shapes-paired is a paired set, expected kind 'paired', got 'unpaired'"),
    (lambda: open_dataset("synthetic:shapes-k3", "unpaired"), ValueError,
     r"kind 'unpaired' needs two domains, synthetic:shapes-k3 has 3"),
    (lambda: open_dataset("synthetic:shapes", "multi_domain", domains=["day", "dusk"]), ValueError,
     r"domains: expected distinct style names among day, night, .* got \['day', 'dusk'\]"),
    (lambda: open_dataset("synthetic:shapes", "multi_domain", domains=9), ValueError,
     r"domains: expected 1 to 5 synthetic styles, got 9"),
    (lambda: open_dataset("synthetic:shapes-k3", "multi_domain", domains=2), ValueError,
     r"only synthetic:shapes takes domains="),
    (lambda: open_dataset("synthetic:shapes", "unpaired", resolution=4), ValueError,
     r"resolution: expected an int >= 8, got 4"),
    (lambda: open_dataset("synthetic:shapes", "unpaired", resolution=32.0), TypeError,
     r"open_dataset: resolution: expected an int, got float"),
    (lambda: open_dataset("synthetic:shapes", "unpaired", resolution=0), ValueError,
     r"open_dataset: resolution: expected an int >= 1, got 0"),
    (lambda: open_dataset("synthetic:shapes", "pairs"), ValueError,
     r"kind: expected one of unpaired, multi_domain, reference, multi_domain_reference, paired, "
     r"unlabelled, got 'pairs'"),
    (lambda: open_dataset("synthetic:shapes", "unpaired", size=0), ValueError,
     r"size: expected an int >= 1, got 0"),
    (lambda: open_dataset("synthetic:shapes", "unpaired", seed=-1), ValueError,
     r"seed: expected an int >= 0, got -1"),
    (lambda: open_dataset("synthetic:shapes", "unpaired", skip_bad=True), ValueError,
     r"skip_bad: expected False for a synthetic set"),
])
def test_bad_arguments(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_keys_and_description():
    ds = open_dataset("synthetic:shapes-k3", "multi_domain", resolution=16, size=5)
    assert torch.equal(ds[-1]["image"], ds[14]["image"])
    assert torch.equal(ds[(3, 2)]["image"], ds[2]["image"])  # no augmentation: epoch-free
    with pytest.raises(IndexError, match=r"index: expected in \[-15, 15\), got 15"):
        ds[15]
    with pytest.raises(TypeError, match=r"index: expected an int .* got float"):
        ds[1.0]
    with pytest.raises(IndexError, match=r"epoch: expected >= 0, got -1"):
        ds[(-1, 0)]
    text = ds.describe()
    assert "multi_domain dataset from synthetic:shapes-k3" in text and "'sunset'" in text
    assert "15 items" in text
    assert repr(ds).startswith('MultiDomainDataset(origin="synthetic:shapes-k3 (split')
    assert ds.skipped == []
