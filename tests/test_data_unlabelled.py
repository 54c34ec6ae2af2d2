"""The "unlabelled" data kind (TUNIT): (image, transformed image) pairs without domain labels,
from a flat folder, from domain folders or a synthetic set with the labels hidden, the
semi-supervised labelled half, and the official augmentations (checked against torchvision)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from i2i_fast.data import PairAugmentation, open_dataset
from i2i_fast.data.augment import AffineParams, JitterParams, adjust_hue, affine, color_jitter


def save_images(folder, count, colour=(200, 30, 30), size=(20, 16)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        array = np.zeros((size[1], size[0], 3), np.uint8) + np.array(colour, np.uint8)
        array[rng.integers(0, size[1]), :] = 255 - i
        Image.fromarray(array).save(folder / f"{i}.png")


def test_synthetic_set_hides_its_domains():
    ds = open_dataset("synthetic:shapes-k3", "unlabelled", resolution=32, seed=1, size=6)
    assert len(ds) == 18
    item = ds[(0, 4)]
    assert set(item) == {"image", "image_tf"}
    for key in item:
        assert item[key].shape == (3, 32, 32) and item[key].dtype == torch.float32
        assert item[key].min() >= -1 and item[key].max() <= 1
    assert not torch.equal(item["image"], item["image_tf"])
    assert ds.hidden_domains().tolist() == [0] * 6 + [1] * 6 + [2] * 6
    assert ds.hidden_domain(7) == 1
    # deterministic per (seed, epoch, index); another epoch draws other augmentations
    again = open_dataset("synthetic:shapes-k3", "unlabelled", resolution=32, seed=1, size=6)
    torch.testing.assert_close(again[(0, 4)]["image_tf"], item["image_tf"])
    assert not torch.equal(ds[(1, 4)]["image_tf"], item["image_tf"])
    assert "hidden" in ds.describe()


def test_flat_folder_and_domain_folders(tmp_path):
    save_images(tmp_path / "flat", 5)
    ds = open_dataset(tmp_path / "flat", "unlabelled", resolution=16)
    assert len(ds) == 5 and ds.hidden_domains() is None and ds.hidden_domain(0) is None
    assert ds[(0, 0)]["image"].shape == (3, 16, 16)
    save_images(tmp_path / "multi" / "train" / "cat", 3, (200, 30, 30))
    save_images(tmp_path / "multi" / "train" / "dog", 4, (30, 30, 200))
    ds = open_dataset(tmp_path / "multi", "unlabelled", resolution=16)
    assert ds.hidden_domains().tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert set(ds[(0, 5)]) == {"image", "image_tf"}
    with pytest.raises(ValueError, match="domains"):
        open_dataset(tmp_path / "flat", "unlabelled", resolution=16, domains=["a"])


def test_semi_supervised_items_carry_labelled_images(tmp_path):
    ds = open_dataset("synthetic:shapes-k3", "unlabelled", resolution=32, size=10,
                      labelled_fraction=0.2)
    # the first int(10 · 0.2) = 2 images of each domain are labelled, the other 8 are not
    assert len(ds) == 24 and ds.supervised_length == 6
    item = ds[(0, 0)]
    assert set(item) == {"image", "image_tf", "sup_image", "sup_image_tf", "sup_domain"}
    assert item["sup_domain"].dtype == torch.int64
    # each labelled image comes once per supervised_length items
    seen = sorted(ds.supervised_index(0, i) for i in range(6))
    assert seen == list(range(6))
    save_images(tmp_path / "flat", 5)
    with pytest.raises(ValueError, match="labelled_fraction"):
        open_dataset(tmp_path / "flat", "unlabelled", resolution=16, labelled_fraction=0.5)
    with pytest.raises(ValueError, match="labelled_fraction"):
        open_dataset("synthetic:shapes-k3", "multi_domain", resolution=16, labelled_fraction=0.5)
    with pytest.raises(ValueError, match="labelled_fraction"):
        open_dataset("synthetic:shapes-k3", "unlabelled", resolution=16, labelled_fraction=1.0)
    with pytest.raises(ValueError, match="transform"):
        open_dataset("synthetic:shapes-k3", "unlabelled", resolution=16, transform="resize")


def test_colour_jitter_option_sets_the_pair_augmentation():
    """open_dataset's colour_jitter gives the pair augmentation its strengths (None: the
    official ones); hue 0 and factors 0 leave the transformed image's colours as they are."""
    official = open_dataset("synthetic:shapes-k3", "unlabelled", resolution=16, size=2)
    assert official.augmentation == PairAugmentation(16)
    weak = open_dataset("synthetic:shapes-k3", "unlabelled", resolution=16, size=2,
                        colour_jitter=(0.1, 0.0, 0.2, 0.0))
    aug = weak.augmentation
    assert (aug.brightness, aug.contrast, aug.saturation, aug.hue) == (0.1, 0.0, 0.2, 0.0)
    none = PairAugmentation(16, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0)
    jitter = none.draw(16, 16, np.random.default_rng(3)).jitter
    assert (jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue) == (1, 1, 1, 0)
    for bad, error in (((0.4, 0.4, 0.4), ValueError), ((0.4, -0.1, 0.4, 0.1), ValueError),
                       ((0.4, 0.4, 0.4, 0.6), ValueError), ((0.4, "a", 0.4, 0.1), TypeError)):
        with pytest.raises(error, match="colour_jitter"):
            open_dataset("synthetic:shapes-k3", "unlabelled", resolution=16,
                         colour_jitter=bad)
    with pytest.raises(ValueError, match="colour_jitter"):
        open_dataset("synthetic:shapes-k3", "multi_domain", resolution=16,
                     colour_jitter=(0.1, 0.1, 0.1, 0.0))


def test_pair_augmentation_without_changes_is_the_resized_image():
    """Zero rotation/translation/shear, the full crop, factors 1 and hue 0, no flips: the
    transformed image is the original up to the hue step's HSV round trip (lossy in PIL, and
    in torchvision, which does the same)."""
    aug = PairAugmentation(16)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), np.uint8))
    params = aug.draw(16, 16, np.random.default_rng(0))
    still = type(params)(False, AffineParams(0.0, (0, 0), 0.0), (0, 0, 16, 16),
                         JitterParams(("brightness", "contrast", "saturation", "hue"),
                                      1.0, 1.0, 1.0, 0.0), False)
    original, transformed = aug.apply(image, still)
    torch.testing.assert_close(transformed, aug.for_eval(adjust_hue(image, 0.0)))
    torch.testing.assert_close(original, aug.for_eval(image))


def test_augmentations_equal_torchvision():
    """The official code calls torchvision's PIL transforms: same pixels for the same
    parameters."""
    tvf = pytest.importorskip("torchvision.transforms.functional")
    from torchvision.transforms import InterpolationMode

    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (24, 20, 3), np.uint8))
    for params in (AffineParams(13.5, (2, -1), 7.0), AffineParams(-20.0, (-2, 2), -10.0)):
        expected = tvf.affine(image, angle=params.angle, translate=list(params.translate),
                              scale=1.0, shear=[params.shear, 0.0],
                              interpolation=InterpolationMode.NEAREST, fill=0)
        assert np.array_equal(np.asarray(affine(image, params)), np.asarray(expected))
    for hue in (0.1, -0.12):
        assert np.array_equal(np.asarray(adjust_hue(image, hue)),
                              np.asarray(tvf.adjust_hue(image, hue)))
    jitter = JitterParams(("contrast", "hue", "brightness", "saturation"), 1.3, 0.7, 1.2, 0.05)
    expected = tvf.adjust_saturation(tvf.adjust_brightness(tvf.adjust_hue(
        tvf.adjust_contrast(image, 0.7), 0.05), 1.3), 1.2)
    assert np.array_equal(np.asarray(color_jitter(image, jitter)), np.asarray(expected))
