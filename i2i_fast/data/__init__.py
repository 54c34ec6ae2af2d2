"""Data: image-folder datasets, bundled synthetic sets, transforms and the resumable stream.

``open_dataset(spec, kind, split, resolution, ...)`` is the entry point (the CLI passes
``--data PATH|synthetic:NAME`` straight to it); ``ResumableLoader`` turns a dataset into the
endless, resumable, DDP-sharded batch stream of training.

Kinds and items (images (3, S, S) float32 in [-1, 1]; masks (1, S, S) float32 {0, 1}, synthetic
sets only):

======================  ==================================================  ==================
kind                    item                                                methods
======================  ==================================================  ==================
unpaired                {"a", "b"} (+ "a_mask", "b_mask")                   MUNIT, DRIT
multi_domain            {"image", "domain": int64} (+ "mask")
reference               {"image", "image2", "domain"} (+ "mask", "mask2")   (StarGAN v2 refs)
multi_domain_reference  {"image", "domain", "ref", "ref2", "ref_domain"}    StarGAN v2
                        (+ "mask", "ref_mask", "ref2_mask")
paired                  {"a", "b"} aligned (+ "a_mask", "b_mask")           BicycleGAN
unlabelled              {"image", "image_tf"} (+ "sup_image", "sup_image_tf",  TUNIT
                        "sup_domain" with labelled_fraction > 0)
======================  ==================================================  ==================

unlabelled is an image set without domain labels (a folder of images, or the domain folders /
synthetic domains with their labels hidden, kept for evaluation), each item an image and a
strongly transformed version of it (``augment``); see ``unlabelled``.

multi_domain_reference is what StarGAN v2 trains on from one loader: a source item and an
independent reference pair of one domain (see ``datasets.MultiDomainReferenceDataset``).

Synthetic sets (no download, any resolution >= 8, deterministic by seed; see ``synthetic`` and
``styles`` for the ground truth rules):

- ``synthetic:shapes``: two domains, day (A, label 0) and night (B, label 1); any kind.
- ``synthetic:shapes-paired``: the same two styles as aligned pairs (kind "paired").
- ``synthetic:shapes-k<K>``, K = 2..5: the first K styles of day, night, sunset, blueprint,
  paper (kinds multi_domain, reference and multi_domain_reference; unpaired/paired when K = 2).
  ``synthetic:shapes`` with ``domains=K`` or ``domains=["day", "sunset", ...]`` picks the styles.

Folders: see ``folders`` for the layouts (root/trainA + root/trainB; root/train/<domain>/;
root/train/ of side-by-side AB images) and the handling of bad files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from . import checks
from .datasets import (
    Dataset,
    MultiDomainDataset,
    MultiDomainReferenceDataset,
    PairedDataset,
    ReferenceDataset,
    UnpairedDataset,
)
from .folders import AlignedFolder, BadImage, FolderDomain, ImageReadError, find_domains
from .loader import ResumableLoader
from .sampling import StreamPosition, StreamSampler
from .styles import STYLE_ORDER, STYLES, segment_shapes
from .synthetic import SyntheticDomain, SyntheticPairs
from .transforms import ImageTransform, preset
from .augment import PairAugmentation
from .unlabelled import UnlabelledDataset, flat_folder

KINDS = ("unpaired", "multi_domain", "reference", "multi_domain_reference", "paired",
         "unlabelled")
DEFAULT_TRANSFORM = {
    "unpaired": "munit",
    "multi_domain": "stargan_v2",
    "reference": "stargan_v2",
    "multi_domain_reference": "stargan_v2",
    "paired": "pix2pix",
    "unlabelled": "resize",  # the original of each pair (PairAugmentation draws the rest)
}
MULTI_DOMAIN_CLASSES = {
    "multi_domain": MultiDomainDataset,
    "reference": ReferenceDataset,
    "multi_domain_reference": MultiDomainReferenceDataset,
}
SYNTHETIC_PREFIX = "synthetic:"
SYNTHETIC_NAMES = ("shapes", "shapes-paired") + tuple(
    f"shapes-k{k}" for k in range(2, len(STYLE_ORDER) + 1)
)
SYNTHETIC_TRAIN_SIZE = 10000  # images per domain of split "train"
SYNTHETIC_EVAL_SIZE = 500  # images per domain of any other split

__all__ = [
    "KINDS", "SYNTHETIC_NAMES", "open_dataset",
    "Dataset", "UnpairedDataset", "MultiDomainDataset", "ReferenceDataset",
    "MultiDomainReferenceDataset", "PairedDataset", "UnlabelledDataset", "PairAugmentation",
    "FolderDomain", "AlignedFolder", "BadImage", "ImageReadError", "find_domains",
    "SyntheticDomain", "SyntheticPairs", "STYLES", "STYLE_ORDER", "segment_shapes",
    "ImageTransform", "preset", "ResumableLoader", "StreamSampler", "StreamPosition",
]


def open_dataset(
    spec: str | os.PathLike,
    kind: str,
    split: str = "train",
    resolution: int = 256,
    *,
    seed: int = 0,
    transform: str | ImageTransform | None = None,
    augment: bool | None = None,
    domains: int | Sequence[str] | None = None,
    balanced: bool | None = None,
    size: int | None = None,
    skip_bad: bool = False,
    progress: bool = False,
    labelled_fraction: float = 0.0,
    colour_jitter: Sequence[float] | None = None,
) -> Dataset:
    """Open a dataset for a method.

    Args:
        spec: a dataset root folder, or "synthetic:<name>" (see the module doc).
        kind: "unpaired", "multi_domain", "reference", "multi_domain_reference", "paired" or
            "unlabelled".
        split: "train", "test", "val"... (folder layouts name their folders after it; synthetic
            sets draw other scenes for each split).
        resolution: side S of the (square) output images.
        seed: seed of the augmentation and pairing (and of the scenes of a synthetic set).
        transform: a preset name (see ``transforms``) or an ``ImageTransform``; default per kind:
            unpaired "munit", multi_domain/reference/multi_domain_reference "stargan_v2",
            paired "pix2pix". Synthetic
            sets are rendered at S and not augmented.
        augment: random augmentation; default True for split "train" only.
        domains: folders: the domain folder names to use, in label order; synthetic:shapes:
            the number of styles or their names.
        balanced: multi_domain/reference/multi_domain_reference: every domain equally often per
            epoch; default True for split "train".
        size: synthetic sets: images per domain (default 10000 for "train", 500 otherwise).
        skip_bad: folders: leave unreadable images out (listed in ``dataset.skipped``, counted in
            a warning) instead of raising an error naming them (see ``folders``: every header is
            checked here; files that fail later are left out with ``exclude_unreadable``).
        progress: folders: a progress bar on stderr while the files of a large folder are
            checked.
        labelled_fraction: kind "unlabelled": the fraction of each domain's images given with
            their labels (TUNIT's semi-supervised mode; 0: none). Needs known domains.
        colour_jitter: kind "unlabelled": the (brightness, contrast, saturation, hue) strengths of
            the pair augmentation's colour jitter (see ``augment.PairAugmentation``); None: the
            official (0.4, 0.4, 0.4, 0.125).
    Returns:
        A ``Dataset`` (``len()``, ``dataset[i]`` or ``dataset[(epoch, i)]``, ``describe()``).
    """
    if kind not in KINDS:
        raise ValueError(f"open_dataset: kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    if not isinstance(split, str) or not split:
        raise ValueError(f"open_dataset: split: expected a non-empty string, got {split!r}")
    checks.integer("open_dataset", "resolution", resolution, 1)
    augment = split == "train" if augment is None else bool(augment)
    balanced = split == "train" if balanced is None else bool(balanced)
    if labelled_fraction != 0.0 and kind != "unlabelled":
        raise ValueError(f"open_dataset: labelled_fraction: only kind 'unlabelled' takes one, got "
                         f"{labelled_fraction!r} with kind {kind!r}")
    if kind == "unlabelled" and transform is not None:
        raise ValueError("open_dataset: transform: kind 'unlabelled' makes its (image, "
                         "transformed image) pairs with TUNIT's augmentation, expected None")
    if colour_jitter is not None and kind != "unlabelled":
        raise ValueError(f"open_dataset: colour_jitter: only kind 'unlabelled' takes one, got "
                         f"{colour_jitter!r} with kind {kind!r}")
    jitter = {} if colour_jitter is None else checks.colour_jitter("open_dataset", colour_jitter)
    pairs = PairAugmentation(resolution, augment=augment, **jitter)
    if isinstance(spec, str) and spec.startswith(SYNTHETIC_PREFIX):
        if skip_bad:
            raise ValueError("open_dataset: skip_bad: expected False for a synthetic set (no files)")
        if kind == "unlabelled":
            styles = _synthetic_styles(spec[len(SYNTHETIC_PREFIX):], kind, domains)
            if size is None:
                size = SYNTHETIC_TRAIN_SIZE if split == "train" else SYNTHETIC_EVAL_SIZE
            sources = [SyntheticDomain(s, resolution, size, seed, split, slot)
                       for slot, s in enumerate(styles)]
            origin = (f"{spec} (split {split!r}, {resolution}x{resolution}, rendered; domains "
                      f"hidden)")
            return UnlabelledDataset(sources, pairs, seed, origin, names=styles,
                                     labelled_fraction=labelled_fraction)
        return _open_synthetic(
            spec[len(SYNTHETIC_PREFIX):], kind, split, resolution, seed, domains, balanced, size
        )
    if size is not None:
        raise ValueError(f"open_dataset: size: only synthetic sets take a size, got {size!r} for {spec}")
    tf = _transform(transform, kind, resolution, augment)
    if kind == "unlabelled":
        return _open_unlabelled_folder(Path(spec).expanduser(), split, tf, pairs, seed, domains,
                                       skip_bad, progress, labelled_fraction)
    return _open_folders(Path(spec).expanduser(), kind, split, tf, seed, domains, balanced, skip_bad,
                         progress)


def _open_unlabelled_folder(
    root: Path, split: str, transform: ImageTransform, pairs: PairAugmentation, seed: int,
    domains: int | Sequence[str] | None, skip_bad: bool, progress: bool, labelled_fraction: float,
) -> Dataset:
    """A folder of images (no domains) or the multi-domain layout (domains hidden)."""
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {root}: expected a directory, it does not exist")
    folder = flat_folder(root, split)
    if folder is not None:
        if domains is not None:
            raise ValueError(f"open_dataset: domains: {folder} is a folder of images without "
                             f"domain folders, got domains={domains!r}")
        source = FolderDomain(folder, transform, skip_bad, name=folder.name, progress=progress)
        return UnlabelledDataset([source], pairs, seed, f"{folder} (no domain labels)",
                                 labelled=False, labelled_fraction=labelled_fraction)
    found = find_domains(root, split)
    if domains is not None:
        by_name = dict(found)
        if isinstance(domains, (str, int)) or any(d not in by_name for d in domains):
            raise ValueError(f"open_dataset: domains: expected names among "
                             f"{[n for n, _ in found]}, got {domains!r}")
        found = [(d, by_name[d]) for d in domains]
    sources = [FolderDomain(path, transform, skip_bad, name=name, progress=progress)
               for name, path in found]
    return UnlabelledDataset(sources, pairs, seed, f"{root} (split {split!r}; domains hidden)",
                             names=[n for n, _ in found], labelled_fraction=labelled_fraction)


def _transform(
    transform: str | ImageTransform | None, kind: str, resolution: int, augment: bool
) -> ImageTransform:
    if transform is None:
        transform = DEFAULT_TRANSFORM[kind]
    if isinstance(transform, str):
        return preset(transform, resolution, augment=augment)
    if isinstance(transform, ImageTransform):
        if transform.size != resolution:
            raise ValueError(
                f"open_dataset: transform: expected output size {resolution} (the resolution), "
                f"got an ImageTransform of size {transform.size}"
            )
        return transform if augment else transform.for_eval()
    raise TypeError(
        f"open_dataset: transform: expected a preset name or an ImageTransform, "
        f"got {type(transform).__name__}"
    )


def _synthetic_styles(name: str, kind: str, domains: int | Sequence[str] | None) -> list[str]:
    if name not in SYNTHETIC_NAMES:
        raise ValueError(
            f"open_dataset: spec: expected synthetic:<name> with name one of "
            f"{', '.join(SYNTHETIC_NAMES)}, got synthetic:{name}"
        )
    if name == "shapes-paired" and kind != "paired":
        raise ValueError(
            f"open_dataset: kind: synthetic:shapes-paired is a paired set, expected kind "
            f"'paired', got {kind!r} (use synthetic:shapes for {kind!r})"
        )
    match = re.fullmatch(r"shapes-k(\d+)", name)
    if domains is not None and name != "shapes":
        raise ValueError(
            f"open_dataset: domains: only synthetic:shapes takes domains=, got {domains!r} "
            f"with synthetic:{name}"
        )
    if match:
        return list(STYLE_ORDER[: int(match.group(1))])
    if domains is None:
        return list(STYLE_ORDER[:2])
    if isinstance(domains, int) and not isinstance(domains, bool):
        if not 1 <= domains <= len(STYLE_ORDER):
            raise ValueError(
                f"open_dataset: domains: expected 1 to {len(STYLE_ORDER)} synthetic styles, "
                f"got {domains}"
            )
        return list(STYLE_ORDER[:domains])
    if isinstance(domains, str) or not all(isinstance(d, str) for d in domains):
        raise TypeError(
            f"open_dataset: domains: expected an int or a list of style names, got {domains!r}"
        )
    unknown = [d for d in domains if d not in STYLES]
    if unknown or len(set(domains)) != len(domains) or not domains:
        raise ValueError(
            f"open_dataset: domains: expected distinct style names among "
            f"{', '.join(STYLE_ORDER)}, got {list(domains)!r}"
        )
    return list(domains)


def _open_synthetic(
    name: str, kind: str, split: str, resolution: int, seed: int,
    domains: int | Sequence[str] | None, balanced: bool, size: int | None,
) -> Dataset:
    styles = _synthetic_styles(name, kind, domains)
    if size is None:
        size = SYNTHETIC_TRAIN_SIZE if split == "train" else SYNTHETIC_EVAL_SIZE
    origin = f"synthetic:{name} (split {split!r}, {resolution}x{resolution}, rendered, no augmentation)"
    if kind in ("unpaired", "paired") and len(styles) != 2:
        raise ValueError(
            f"open_dataset: kind {kind!r} needs two domains, synthetic:{name} has "
            f"{len(styles)} ({', '.join(styles)})"
        )
    if kind == "paired":
        pairs = SyntheticPairs(styles[0], styles[1], resolution, size, seed, split)
        return PairedDataset(pairs, seed, origin)
    sources = [SyntheticDomain(s, resolution, size, seed, split, slot) for slot, s in enumerate(styles)]
    if kind == "unpaired":
        return UnpairedDataset(sources[0], sources[1], seed, origin)
    cls = MULTI_DOMAIN_CLASSES[kind]
    return cls(sources, seed, origin, balanced=balanced, names=styles)


def _open_folders(
    root: Path, kind: str, split: str, transform: ImageTransform, seed: int,
    domains: int | Sequence[str] | None, balanced: bool, skip_bad: bool, progress: bool,
) -> Dataset:
    origin = f"{root} (split {split!r})"
    if kind == "paired":
        if domains is not None:
            raise ValueError("open_dataset: domains: a paired folder has no domain folders to choose")
        folder = root / split
        if not folder.is_dir():
            raise FileNotFoundError(
                f"dataset root {root}: expected {split}/ holding side-by-side A|B images "
                f"(paired layout), {folder} does not exist"
            )
        return PairedDataset(AlignedFolder(folder, transform, skip_bad, progress), seed, origin)
    found = find_domains(root, split)
    if domains is not None:
        if isinstance(domains, (str, int)) or not all(isinstance(d, str) for d in domains):
            raise TypeError(
                f"open_dataset: domains: expected a list of domain folder names, got {domains!r}"
            )
        by_name = dict(found)
        unknown = [d for d in domains if d not in by_name]
        if unknown:
            raise ValueError(
                f"open_dataset: domains: {unknown} not found in {root} for split {split!r}; "
                f"domains there: {[n for n, _ in found]}"
            )
        found = [(d, by_name[d]) for d in domains]
    if kind == "unpaired" and len(found) != 2:
        raise ValueError(
            f"open_dataset: kind 'unpaired' needs two domains, {root} has {len(found)} for split "
            f"{split!r} ({[n for n, _ in found]}); pass domains=[name_a, name_b]"
        )
    sources = [FolderDomain(path, transform, skip_bad, name=name, progress=progress)
               for name, path in found]
    if kind == "unpaired":
        return UnpairedDataset(sources[0], sources[1], seed, origin)
    cls = MULTI_DOMAIN_CLASSES[kind]
    return cls(sources, seed, origin, balanced=balanced, names=[n for n, _ in found])
