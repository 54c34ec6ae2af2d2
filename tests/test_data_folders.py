"""Folder datasets built in tmp_path: layouts, items, bad files, empty folders, small images."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from i2i_fast.data import ImageReadError, find_domains, open_dataset
from i2i_fast.data.folders import list_images


def write_image(path: Path, width: int = 40, height: int = 30, value: int | None = None, seed: int = 0,
                mode: str = "RGB") -> np.ndarray:
    """A random (or constant) RGB image saved at path; returns its uint8 pixels (H, W, 3)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if value is None:
        pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    else:
        pixels = np.full((height, width, 3), value, dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path)
    return pixels


def unpaired_root(root: Path, n_a: int = 5, n_b: int = 3, split: str = "train") -> Path:
    for i in range(n_a):
        write_image(root / f"{split}A" / f"a{i}.png", seed=i)
    for i in range(n_b):
        write_image(root / f"{split}B" / f"b{i}.jpg", seed=100 + i)
    return root


def multi_root(root: Path, counts=(("cat", 4), ("dog", 2), ("wild", 3))) -> Path:
    for d, (name, n) in enumerate(counts):
        for i in range(n):
            write_image(root / "train" / name / f"{i}.png", value=40 + 80 * d + i)
    return root


# ---------------------------------------------------------------------------------------------
# layouts and items


def test_unpaired_folders(tmp_path):
    root = unpaired_root(tmp_path)
    ds = open_dataset(root, "unpaired", resolution=24, seed=1)
    assert len(ds) == 5 and ds.domain_names == ("A", "B")
    item = ds[0]
    assert set(item) == {"a", "b"}
    for k in ("a", "b"):
        assert item[k].shape == (3, 24, 24) and item[k].dtype == torch.float32
        assert item[k].min() >= -1 and item[k].max() <= 1
    # deterministic for a seed, augmentation depends on the epoch
    again = open_dataset(root, "unpaired", resolution=24, seed=1)
    assert torch.equal(again[3]["a"], ds[3]["a"]) and torch.equal(again[3]["b"], ds[3]["b"])
    assert any(not torch.equal(ds[(0, i)]["a"], ds[(1, i)]["a"]) for i in range(5))
    # b comes from a per-epoch permutation of B, each B image once per 3 items
    assert sorted(ds.b_index(0, i) for i in range(3)) == [0, 1, 2]
    text = ds.describe()
    assert "unpaired dataset from" in text and "trainA (5 images)" in text and "munit:" in text


def test_test_split_is_deterministic_and_not_augmented(tmp_path):
    root = unpaired_root(tmp_path, split="test")
    ds = open_dataset(root, "unpaired", "test", resolution=24)
    pixels = np.asarray(Image.open(root / "testA" / "a0.png"))
    expected = Image.fromarray(pixels).resize((32, 24), Image.Resampling.BILINEAR).crop((4, 0, 28, 24))
    expected = torch.from_numpy(np.asarray(expected).copy()).permute(2, 0, 1).float() / 127.5 - 1
    assert torch.equal(ds[(0, 0)]["a"], expected) and torch.equal(ds[(5, 0)]["a"], expected)


def test_multi_domain_folders(tmp_path):
    root = multi_root(tmp_path)
    ds = open_dataset(root, "multi_domain", resolution=16, balanced=False)
    assert ds.domain_names == ("cat", "dog", "wild") and len(ds) == 9
    labels = [int(ds[i]["domain"]) for i in range(9)]
    assert labels == [0] * 4 + [1] * 2 + [2] * 3
    # constant images: the value tells which file was read
    values = [round(float((ds[i]["image"][0, 0, 0] + 1) * 127.5)) for i in range(9)]
    assert values == [40, 41, 42, 43, 120, 121, 200, 201, 202]

    balanced = open_dataset(root, "multi_domain", resolution=16)  # train: balanced by default
    assert len(balanced) == 12
    for epoch in (0, 1):
        located = [balanced.locate(epoch, i) for i in range(12)]
        assert [d for d, _ in located] == [0] * 4 + [1] * 4 + [2] * 4
        dog = sorted(j for d, j in located if d == 1)
        assert dog == [0, 0, 1, 1]  # each dog image twice per epoch
        wild = sorted(j for d, j in located if d == 2)
        assert set(wild) == {0, 1, 2}


def test_reference_dataset_pairs_two_images_of_one_domain(tmp_path):
    root = multi_root(tmp_path)
    ds = open_dataset(root, "reference", resolution=16)
    for i in range(len(ds)):
        item = ds[i]
        assert set(item) == {"image", "image2", "domain"}
        d = int(item["domain"])
        for key in ("image", "image2"):
            value = round(float((item[key][0, 0, 0] + 1) * 127.5))
            assert 40 + 80 * d <= value < 40 + 80 * d + 4


def test_domain_selection_and_two_domains_from_multi_domain_layout(tmp_path):
    root = multi_root(tmp_path)
    with pytest.raises(ValueError, match=r"kind 'unpaired' needs two domains, .* has 3 .* "
                       r"\(\[.cat., .dog., .wild.\]\); pass domains=\[name_a, name_b\]"):
        open_dataset(root, "unpaired", resolution=16)
    ds = open_dataset(root, "unpaired", resolution=16, domains=["wild", "cat"])
    assert ds.domain_names == ("wild", "cat") and len(ds) == 4
    with pytest.raises(ValueError, match=r"domains: \['cow'\] not found in .* domains there: "):
        open_dataset(root, "multi_domain", resolution=16, domains=["cat", "cow"])
    # the two-domain layout is also a 2-domain multi-domain set
    root2 = unpaired_root(tmp_path / "ab")
    md = open_dataset(root2, "multi_domain", resolution=16, balanced=False)
    assert md.domain_names == ("A", "B") and len(md) == 8


def test_paired_side_by_side_halves_get_the_same_augmentation(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(4):
        a = rng.integers(0, 256, size=(30, 40, 3), dtype=np.uint8)
        b = 255 - a  # B is the negative of A: after identical resize/crop/flip, b = -a
        (tmp_path / "train").mkdir(exist_ok=True)
        Image.fromarray(np.concatenate([a, b], 1)).save(tmp_path / "train" / f"{i}.png")
    ds = open_dataset(tmp_path, "paired", resolution=24)
    assert len(ds) == 4 and "A = left half" in ds.describe()
    for epoch in range(4):
        for i in range(4):
            item = ds[(epoch, i)]
            assert item["a"].shape == item["b"].shape == (3, 24, 24)
            # bicubic resizing of the negative is the negative of the resizing, up to rounding
            assert (item["a"] + item["b"]).abs().max() <= 1.5 / 127.5
    # and the augmentation does change between epochs
    assert any(not torch.equal(ds[(0, i)]["a"], ds[(1, i)]["a"]) for i in range(4))
    with pytest.raises(ValueError, match=r"a paired folder has no domain folders"):
        open_dataset(tmp_path, "paired", domains=["a"])


def test_listing_rules(tmp_path):
    for name in ["b.PNG", "a.jpg", "c.JpEg", "d.bmp", "e.webp", "sub/f.png", "notes.txt",
                 ".hidden.png", "._a.jpg", ".cache/g.png"]:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".txt"):
            path.write_text("not an image")
        else:
            Image.new("RGB", (4, 4)).save(path, format={"jpg": "JPEG", "jpeg": "JPEG"}.get(
                path.suffix.lower()[1:], path.suffix[1:].upper()))
    names = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert names == ["a.jpg", "b.PNG", "c.JpEg", "d.bmp", "e.webp", "sub/f.png"]


def test_grey_and_rgba_images_become_rgb(tmp_path):
    write_image(tmp_path / "trainA" / "grey.png", mode="L")
    write_image(tmp_path / "trainB" / "rgba.png", mode="RGBA")
    item = open_dataset(tmp_path, "unpaired", resolution=16)[0]
    assert item["a"].shape == item["b"].shape == (3, 16, 16)
    assert torch.equal(item["a"][0], item["a"][1])  # grey: equal channels


# ---------------------------------------------------------------------------------------------
# bad files, empty folders, small images


def corrupt_files(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    garbage = folder / "garbage.png"
    garbage.write_bytes(b"this is not an image at all")
    truncated = folder / "truncated.png"
    write_image(truncated, 64, 64)
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    return [garbage, truncated]


def test_corrupt_file_error_names_the_file(tmp_path):
    root = unpaired_root(tmp_path, n_a=2, n_b=2)
    garbage, truncated = corrupt_files(root / "trainA")
    # the headers are checked when the folder is opened: every unreadable one is named at once
    another = root / "trainA" / "empty.png"
    another.write_bytes(b"")
    with pytest.raises(ImageReadError, match=rf"trainA: 2 unreadable image file\(s\): cannot read "
                                             rf"image {another}: .*; cannot read image {garbage}: "
                                             rf"UnidentifiedImageError"):
        open_dataset(root, "unpaired", resolution=16)
    garbage.unlink()
    another.unlink()
    # a file whose header reads but whose pixels do not is met when loaded, and named
    ds = open_dataset(root, "unpaired", resolution=16)
    assert len(ds) == 3
    with pytest.raises(ImageReadError, match=rf"cannot read image {truncated}"):
        ds[ds.a.files.index(truncated)]


def test_many_unreadable_files_are_counted_and_the_first_named(tmp_path):
    root = unpaired_root(tmp_path, n_a=1, n_b=2)
    for i in range(13):
        (root / "trainA" / f"bad{i:02d}.png").write_bytes(b"no")
    with pytest.raises(ImageReadError, match=r"13 unreadable image file\(s\): .*bad09.png: "
                                             r"[^;]*; and 3 more$"):
        open_dataset(root, "unpaired", resolution=16)


def test_checking_a_large_folder_shows_progress(tmp_path, monkeypatch, capsys):
    from i2i_fast.data import folders

    root = unpaired_root(tmp_path, n_a=20, n_b=2)
    monkeypatch.setattr(folders, "PROGRESS_MIN_FILES", 16)
    open_dataset(root, "unpaired", resolution=16, progress=True)
    err = capsys.readouterr().err
    assert f"checking {root / 'trainA'}" in err and "20/20" in err
    assert "trainB" not in err  # 2 files: no bar
    open_dataset(root, "unpaired", resolution=16)  # progress=False: quiet
    assert capsys.readouterr().err == ""


def test_a_file_unreadable_when_loaded_can_be_left_out(tmp_path):
    root = unpaired_root(tmp_path, n_a=3, n_b=3)
    _, truncated = corrupt_files(root / "trainA")
    (root / "trainA" / "garbage.png").unlink()
    ds = open_dataset(root, "unpaired", resolution=16, skip_bad=True)
    index = ds.a.files.index(truncated)
    with pytest.raises(ImageReadError) as caught:
        ds[index]
    # the message a DataLoader worker's error carries: a traceback, then the error
    message = f"Caught ImageReadError in DataLoader worker process 0.\nTraceback ...\n" \
              f"i2i_fast.data.folders.ImageReadError: {caught.value}"
    bad = ds.exclude_unreadable(message)
    assert bad.path == truncated and bad.reason == str(caught.value)
    assert ds.exclude_unreadable(message) is None  # once
    assert len(ds) == 4 and ds.skipped == [bad]
    following = ds.a.files[(index + 1) % len(ds.a.files)]
    assert torch.equal(ds[index]["a"], ds.a.load(ds.a.files.index(following),
                                                 ds._rng("a", 0, index))["image"])


def test_corrupt_file_found_while_opening_when_sizes_are_checked(tmp_path):
    root = unpaired_root(tmp_path, n_a=2, n_b=2)
    garbage = corrupt_files(root / "trainB")[0]
    with pytest.raises(ImageReadError, match=rf"cannot read image {garbage}: UnidentifiedImageError"):
        open_dataset(root, "unpaired", resolution=16, transform="crop")


def test_skip_bad_skips_counts_and_warns(tmp_path):
    root = unpaired_root(tmp_path, n_a=2, n_b=2)
    garbage, truncated = corrupt_files(root / "trainA")
    # unreadable headers: left out when the folder is opened
    with pytest.warns(UserWarning, match=r"trainA: skipped 1 unreadable image\(s\) of 4 .* `skipped`"):
        ds = open_dataset(root, "unpaired", resolution=16, skip_bad=True)
    assert [b.path for b in ds.skipped] == [garbage]
    # unreadable pixels: met when loaded, then left out (the trainer does this)
    with pytest.raises(ImageReadError) as caught:
        ds[ds.a.files.index(truncated)]
    ds.exclude_unreadable(str(caught.value))
    assert sorted(b.path for b in ds.skipped) == sorted([garbage, truncated])
    assert all("cannot read image" in b.reason for b in ds.skipped)
    assert len(ds.a) == 3 and len(ds) == 3  # the length stays (a resumed stream continues)
    for i in range(len(ds)):
        ds[i]  # every item loads
    assert "2 skipped" in ds.describe()


def test_skip_bad_with_nothing_left(tmp_path):
    root = unpaired_root(tmp_path, n_a=0, n_b=2)
    garbage, truncated = corrupt_files(root / "trainA")
    truncated.unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"trainA: expected readable images, all 1 were unreadable"):
            open_dataset(root, "unpaired", resolution=16, skip_bad=True)
    corrupt_files(root / "trainA")
    garbage.unlink()
    ds = open_dataset(root, "unpaired", resolution=16, skip_bad=True)
    with pytest.raises(ImageReadError) as caught:
        ds[0]
    with pytest.raises(ValueError, match=r"trainA: expected readable images, all 1 were unreadable"):
        ds.exclude_unreadable(str(caught.value))


def test_empty_and_missing_folders(tmp_path):
    root = unpaired_root(tmp_path, n_a=2, n_b=0)
    (root / "trainB").mkdir()
    (root / "trainB" / "readme.txt").write_text("no images here")
    with pytest.raises(FileNotFoundError, match=rf"image folder {root / 'trainB'}: expected image "
                       r"files \(.jpg, .jpeg, .png, .bmp, .webp, any case.*\), found none"):
        open_dataset(root, "unpaired", resolution=16)

    only_a = unpaired_root(tmp_path / "only_a", n_a=2, n_b=0)
    with pytest.raises(FileNotFoundError, match=r"expected both trainA/ and trainB/ .* trainB/ is missing"):
        open_dataset(only_a, "unpaired", resolution=16)

    nothing = tmp_path / "nothing"
    (nothing / "images").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"expected trainA/ and trainB/ \(two-domain layout\) "
                       r"or train/<domain>/ folders \(multi-domain layout\); found images/"):
        open_dataset(nothing, "multi_domain", resolution=16)

    flat = tmp_path / "flat"
    write_image(flat / "train" / "x.png")
    with pytest.raises(FileNotFoundError, match=r"train exists but has no domain subfolders"):
        find_domains(flat, "train")

    with pytest.raises(FileNotFoundError, match=r"dataset root .*/absent: expected a directory"):
        open_dataset(tmp_path / "absent", "unpaired")
    with pytest.raises(FileNotFoundError, match=r"expected test/ holding side-by-side A\|B images"):
        open_dataset(flat, "paired", "test")


def test_image_smaller_than_the_crop(tmp_path):
    root = unpaired_root(tmp_path, n_a=2, n_b=2)
    small = root / "trainB" / "small.png"
    write_image(small, 20, 12)
    with pytest.raises(ValueError, match=rf"image {small} is 20x12 \(width x height\), smaller than "
                       r"the 24x24 crop of transform 'crop'"):
        open_dataset(root, "unpaired", resolution=24, transform="crop")
    # 30 x 40 images are large enough for a 24 crop; a resizing transform takes the small one
    open_dataset(root, "unpaired", resolution=24, transform="munit")[0]
    # side-by-side pairs: the size of each half counts
    write_image(tmp_path / "p" / "train" / "pair.png", 40, 30)
    with pytest.raises(ValueError, match=r"each half of image .*pair.png is 20x30 .* 24x24 crop"):
        open_dataset(tmp_path / "p", "paired", resolution=24, transform="crop")


def test_folder_argument_errors(tmp_path):
    root = unpaired_root(tmp_path, n_a=1, n_b=1)
    with pytest.raises(ValueError, match=r"size: only synthetic sets take a size"):
        open_dataset(root, "unpaired", size=10)
    with pytest.raises(TypeError, match=r"domains: expected a list of domain folder names, got 2"):
        open_dataset(root, "multi_domain", domains=2)
    with pytest.raises(TypeError, match=r"transform: expected a preset name or an ImageTransform, got int"):
        open_dataset(root, "unpaired", transform=3)
    from i2i_fast.data import preset
    with pytest.raises(ValueError, match=r"transform: expected output size 16 \(the resolution\), "
                       r"got an ImageTransform of size 32"):
        open_dataset(root, "unpaired", resolution=16, transform=preset("munit", 32))
