"""translate keeps an input's size where the networks take any multiple of their stride (MUNIT),
says what it does otherwise, and refuses inputs below the networks' minimum."""

from __future__ import annotations

import pytest
from PIL import Image

from i2i_fast.methods import create_method
from i2i_fast.train import TrainError, translate_files


pytestmark = pytest.mark.usefixtures("one_thread")


def image(path, width, height):
    Image.new("RGB", (width, height), (200, 30, 90)).save(path)
    return path


def test_munit_keeps_sizes_its_networks_take_and_crops_the_others(tmp_path):
    method = create_method("munit", "demo", ["image_size=16"])  # multiples of 4 >= 16
    inputs = [image(tmp_path / "wide.png", 40, 24), image(tmp_path / "odd.png", 30, 18),
              image(tmp_path / "same.png", 40, 24)]
    result = translate_files(method, inputs, tmp_path / "out", n_styles=2, batch_size=4)
    sizes = {p.name: Image.open(p).size for p in result.outputs}
    assert sizes["wide_style1.png"] == (40, 24) and sizes["same_style2.png"] == (40, 24)
    assert sizes["odd_style1.png"] == (28, 16)  # the largest centred part it takes
    assert result.notes == ["1 image(s) centre-cropped to sides munit takes (a multiple of 4 >= "
                            "16): odd.png 30x18 -> 28x16; the others keep their size"]
    # the grid holds every row, each image centred in a 40 x 24 cell
    assert Image.open(result.grid).size == (3 * 40 + 2 * 2, 3 * 24 + 2 * 2)
    # a reference of another size gives its style to inputs of any size
    result = translate_files(method, inputs[:2], tmp_path / "ref",
                             reference=image(tmp_path / "style.png", 20, 20))
    assert Image.open(tmp_path / "ref" / "wide_ref.png").size == (40, 24)


def test_inputs_below_the_minimum_are_refused(tmp_path):
    method = create_method("munit", "demo", ["image_size=16"])
    small = image(tmp_path / "small.png", 40, 12)
    with pytest.raises(TrainError, match=rf"--input {small}: 40x12 \(width x height\) is smaller "
                                         rf"than munit takes: each side a multiple of 4 >= 16"):
        translate_files(method, [image(tmp_path / "fine.png", 16, 16), small], tmp_path / "out")
    assert not (tmp_path / "out").exists()  # checked before anything is written


def test_a_method_built_for_one_size_gets_resized_inputs_and_says_so(tmp_path):
    method = create_method("stargan_v2", "small", ["image_size=16", "dim_in=4",
                                                   "max_conv_dim=8"])
    result = translate_files(method, [image(tmp_path / "a.png", 40, 24)], tmp_path / "out",
                             target_domain=1, n_styles=1)
    assert Image.open(result.outputs[0]).size == (16, 16)
    assert result.notes == ["1 image(s) resized (shorter side) and centre-cropped to 16x16: "
                            "stargan_v2 runs at the size it was trained at"]
