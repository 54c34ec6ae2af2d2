"""Transforms: presets of the official configs, determinism, augmentation statistics, errors."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from PIL import Image

from i2i_fast.data import seeding
from i2i_fast.data.transforms import ImageTransform, preset, to_tensor


def gradient_image(width: int, height: int) -> Image.Image:
    """Every pixel different: R = x, G = y, B = x + y (mod 256)."""
    x = np.arange(width)[None, :].repeat(height, 0)
    y = np.arange(height)[:, None].repeat(width, 1)
    rgb = np.stack([x % 256, y % 256, (x + y) % 256], -1).astype(np.uint8)
    return Image.fromarray(rgb)


def test_to_tensor_maps_0_255_to_minus1_1():
    img = Image.fromarray(np.array([[[0, 255, 51]]], dtype=np.uint8))
    t = to_tensor(img)
    assert t.shape == (1 + 2, 1, 1) and t.dtype == torch.float32
    assert t.flatten().tolist() == pytest.approx([-1.0, 1.0, 51 / 127.5 - 1])


@pytest.mark.parametrize("name, resize, mode, crop, p, interp", [
    ("munit", 64, "shorter_side", True, 0.0, "bilinear"),
    ("drit", 76, "square", True, 0.0, "bicubic"),  # 64 * 256 / 216 = 75.9
    ("stargan_v2", 64, "square", False, 0.5, "bilinear"),
    ("pix2pix", 72, "square", True, 0.0, "bicubic"),  # 64 * 286 / 256 = 71.5
    ("bicyclegan", 72, "square", True, 0.0, "bicubic"),
    ("crop", None, "square", True, 0.0, "bilinear"),
])
def test_presets_follow_the_official_configs(name, resize, mode, crop, p, interp):
    t = preset(name, 64)
    assert (t.size, t.resize, t.resize_mode, t.crop, t.resized_crop_p, t.interpolation) == (
        64, resize, mode, crop, p, interp)
    assert t.flip and t.augment
    assert preset("munit", 256).resize == 256 and preset("drit", 216).resize == 256
    assert preset("pix2pix", 256).resize == 286


@pytest.mark.parametrize("name", ["munit", "drit", "stargan_v2", "pix2pix", "crop", "resize"])
@pytest.mark.parametrize("size", [(80, 50), (50, 80), (64, 64), (300, 97)])
def test_output_is_square_in_range_and_deterministic(name, size):
    t = preset(name, 48)
    img = gradient_image(*size)
    for i in range(5):
        a = t(img, seeding.rng(1, i))
        b = t(img, seeding.rng(1, i))
        assert a.shape == (3, 48, 48) and a.dtype == torch.float32
        assert a.min() >= -1 and a.max() <= 1
        assert torch.equal(a, b)


def test_munit_resizes_the_shorter_side_then_crops():
    t = preset("munit", 32)
    params = t.draw(64, 96, seeding.rng(0))
    assert params.resize_to == (32, 48)
    left, top = params.crop
    assert left == 0 and 0 <= top <= 16
    params = t.draw(100, 40, seeding.rng(0))
    assert params.resize_to == (80, 32)


def test_eval_transform_is_a_centre_crop_without_flip():
    t = preset("munit", 32, augment=False)
    img = gradient_image(64, 96)
    expected = img.resize((32, 48), Image.Resampling.BILINEAR).crop((0, 8, 32, 40))
    for seed in range(5):
        assert torch.equal(t(img, seeding.rng(seed)), to_tensor(expected))
    assert preset("stargan_v2", 32).for_eval().describe() == (
        "stargan_v2: resize to 32 (bilinear), [-1, 1]")


def test_flip_mirrors_and_happens_half_of_the_time():
    t = preset("crop", 16)
    img = gradient_image(16, 16)  # crop of the whole image: only the flip changes it
    flips = 0
    for i in range(400):
        params = t.draw(16, 16, seeding.rng(2, i))
        out = t.apply(img, params)
        if params.flip:
            flips += 1
            assert torch.equal(out, to_tensor(img).flip(-1))
        else:
            assert torch.equal(out, to_tensor(img))
    assert 0.4 < flips / 400 < 0.6


def test_random_crop_positions_cover_the_range():
    t = preset("crop", 10)
    lefts = {t.draw(14, 12, seeding.rng(3, i)).crop for i in range(300)}
    assert {left for left, _ in lefts} == set(range(5)) and {top for _, top in lefts} == set(range(3))


def test_stargan_v2_random_resized_crop_statistics():
    t = preset("stargan_v2", 32)
    boxes = [t.draw(200, 160, seeding.rng(4, i)).resized_crop for i in range(600)]
    used = [b for b in boxes if b is not None]
    assert 0.42 < len(used) / len(boxes) < 0.58
    for left, top, w, h in used:
        assert 0 <= left and left + w <= 200 and 0 <= top and top + h <= 160
        assert 0.8 * 0.97 <= w * h / (200 * 160) <= 1.0
        assert 0.9 * 0.97 <= w / h <= 1.1 * 1.03
    img = gradient_image(200, 160)
    params = next(t.draw(200, 160, seeding.rng(4, i)) for i in range(600)
                  if t.draw(200, 160, seeding.rng(4, i)).resized_crop is not None)
    left, top, w, h = params.resized_crop
    expected = img.crop((left, top, left + w, top + h)).resize((32, 32), Image.Resampling.BILINEAR)
    if params.flip:
        expected = expected.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    assert torch.equal(t.apply(img, params), to_tensor(expected))


def test_too_small_for_a_crop_without_resize():
    t = preset("crop", 32)
    assert t.needs_input_size and not preset("munit", 32).needs_input_size
    assert t.check_size(32, 40) is None
    reason = t.check_size(31, 40)
    assert "is 31x40 (width x height), smaller than the 32x32 crop of transform 'crop'" in reason
    with pytest.raises(ValueError, match=r"image is 20x20 .* smaller than the 32x32 crop"):
        t(gradient_image(20, 20), seeding.rng(0))
    # a resizing transform takes tiny images
    assert preset("munit", 32)(gradient_image(5, 9), seeding.rng(0)).shape == (3, 32, 32)


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(size=0), r"transform 'custom': size: expected an int >= 1, got 0"),
    (dict(size=32, resize=16), r"resize: expected >= size 32 \(the crop\), got 16"),
    (dict(size=32, resize=40, crop=False), r"without a crop the resize must give size x size"),
    (dict(size=32, resize=32, resize_mode="longer"), r"resize_mode: expected one of"),
    (dict(size=32, interpolation="nearest"), r"interpolation: expected one of \('bilinear', 'bicubic'\)"),
    (dict(size=32, resized_crop_p=1.5), r"resized_crop_p: expected a probability in \[0, 1\], got 1.5"),
])
def test_bad_transform_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        ImageTransform(name="custom", **kwargs)


def test_unknown_preset():
    with pytest.raises(ValueError, match=r"transform: expected one of munit, drit, .* got 'cyclegan'"):
        preset("cyclegan", 64)
