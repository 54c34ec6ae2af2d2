"""Image transforms of the official configurations: resize, (random resized) crop, flip, [-1, 1].

A transform works in two steps so that aligned pairs get the same augmentation: ``draw`` picks
the random parameters from a numpy generator (given the input size), ``apply`` applies them to a
PIL image and returns a (3, S, S) float32 tensor in [-1, 1] (``x / 127.5 - 1``, the same as
ToTensor + Normalize(0.5, 0.5)). Order: [random resized crop] -> resize -> crop -> flip.

Presets (``preset(name, resolution)``), from METHODS.md, with S = resolution:

=============  =================================================================================
munit          resize shorter side to S (bilinear), random crop S, flip (MUNIT)
drit           resize to round(S*256/216) square (bicubic), random crop S, flip (DRIT: 256 -> 216)
stargan_v2     with p 0.5 random resized crop (scale 0.8-1, ratio 0.9-1.1) to S, else resize to
               S x S (bilinear); flip (StarGAN v2)
pix2pix        resize to round(S*286/256) square (bicubic), random crop S, flip (pix2pix /
               BicycleGAN "aligned"; alias bicyclegan)
crop           no resize, random crop S, flip (images already about the right size; an image
               smaller than S is an error)
resize         resize to S x S (bilinear), no crop, no flip
=============  =================================================================================

``augment=False`` (evaluation splits) makes a transform deterministic: centre crop, no flip, no
random resized crop.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from . import checks

_INTERPOLATION = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}
RESIZE_MODES = ("shorter_side", "square")


@dataclass(frozen=True)
class TransformParams:
    """The random choices of one application. Boxes are (left, top, width, height) in pixels."""

    resized_crop: tuple[int, int, int, int] | None  # region of the input, resized to S x S
    resize_to: tuple[int, int] | None  # (width, height) after resizing, or None
    crop: tuple[int, int] | None  # (left, top) of the S x S crop, or None
    flip: bool


@dataclass(frozen=True)
class ImageTransform:
    """Resize / crop / flip to a square (3, size, size) float32 tensor in [-1, 1].

    Attributes:
        name: what the transform is (a preset name or "custom").
        size: output side S.
        resize: side the image is resized to (see ``resize_mode``), or None for no resize.
        resize_mode: "shorter_side" (keep aspect, shorter side = resize) or "square"
            (resize x resize).
        crop: crop S x S after resizing (random when augmenting, centred otherwise); without a
            crop, ``resize`` must make the image S x S ("square", resize == size).
        flip: random horizontal flip with probability 0.5 when augmenting.
        resized_crop_p: probability of a random resized crop (scale and ratio ranges below,
            torchvision's algorithm) straight to S x S, instead of the resize, when augmenting.
        interpolation: "bilinear" or "bicubic" (PIL, antialiased when shrinking).
        augment: False for evaluation: centre crop, no flip, no resized crop.
    """

    name: str
    size: int
    resize: int | None = None
    resize_mode: str = "square"
    crop: bool = True
    flip: bool = True
    resized_crop_p: float = 0.0
    resized_crop_scale: tuple[float, float] = (0.8, 1.0)
    resized_crop_ratio: tuple[float, float] = (0.9, 1.1)
    interpolation: str = "bilinear"
    augment: bool = True

    def __post_init__(self):
        what = f"transform {self.name!r}"
        checks.integer(what, "size", self.size, 1)
        if self.resize is not None:
            checks.integer(what, "resize", self.resize, 1)
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(
                f"{what}: resize_mode: expected one of {RESIZE_MODES}, got {self.resize_mode!r}"
            )
        if self.interpolation not in _INTERPOLATION:
            raise ValueError(
                f"{what}: interpolation: expected one of {tuple(_INTERPOLATION)}, "
                f"got {self.interpolation!r}"
            )
        if not 0.0 <= self.resized_crop_p <= 1.0:
            raise ValueError(
                f"{what}: resized_crop_p: expected a probability in [0, 1], got {self.resized_crop_p}"
            )
        if self.crop and self.resize is not None and self.resize < self.size:
            raise ValueError(
                f"{what}: resize: expected >= size {self.size} (the crop), got {self.resize}"
            )
        if not self.crop and not (self.resize == self.size and self.resize_mode == "square"):
            raise ValueError(
                f"{what}: without a crop the resize must give size x size: expected "
                f"resize={self.size}, resize_mode='square', got resize={self.resize}, "
                f"resize_mode={self.resize_mode!r}"
            )

    def for_eval(self) -> ImageTransform:
        """The deterministic version (centre crop, no flip, no random resized crop)."""
        return dataclasses.replace(self, augment=False)

    @property
    def needs_input_size(self) -> bool:
        """True when some inputs are too small (a crop without a resize): see check_size."""
        return self.crop and self.resize is None

    def check_size(self, width: int, height: int) -> str | None:
        """Why an input of this size cannot be transformed (too small for the crop), or None."""
        if self.needs_input_size and (width < self.size or height < self.size):
            return (
                f"is {width}x{height} (width x height), smaller than the {self.size}x{self.size} "
                f"crop of transform {self.name!r}, which does not resize (use a transform that "
                f"resizes, e.g. 'munit', or larger images)"
            )
        return None

    def draw(self, width: int, height: int, rng: np.random.Generator) -> TransformParams:
        """Random parameters for an input of width x height."""
        reason = self.check_size(width, height)
        if reason is not None:
            raise ValueError(f"image {reason}")
        box = None
        if self.augment and self.resized_crop_p > 0 and rng.uniform() < self.resized_crop_p:
            box = _resized_crop_box(width, height, self.resized_crop_scale, self.resized_crop_ratio, rng)
        if box is not None:
            resize_to, (w, h) = None, (self.size, self.size)
        elif self.resize is None:
            resize_to, (w, h) = None, (width, height)
        else:
            resize_to = _resized_size(width, height, self.resize, self.resize_mode)
            w, h = resize_to
        crop = None
        if self.crop:
            if self.augment:
                crop = (int(rng.integers(0, w - self.size + 1)), int(rng.integers(0, h - self.size + 1)))
            else:
                crop = (int(round((w - self.size) / 2.0)), int(round((h - self.size) / 2.0)))
        flip = bool(self.augment and self.flip and rng.uniform() < 0.5)
        return TransformParams(resized_crop=box, resize_to=resize_to, crop=crop, flip=flip)

    def apply(self, image: Image.Image, params: TransformParams) -> torch.Tensor:
        """(3, S, S) float32 in [-1, 1] from an RGB PIL image."""
        resample = _INTERPOLATION[self.interpolation]
        if params.resized_crop is not None:
            left, top, w, h = params.resized_crop
            image = image.crop((left, top, left + w, top + h)).resize((self.size, self.size), resample)
        elif params.resize_to is not None and params.resize_to != image.size:
            image = image.resize(params.resize_to, resample)
        if params.crop is not None:
            left, top = params.crop
            image = image.crop((left, top, left + self.size, top + self.size))
        if params.flip:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return to_tensor(image)

    def __call__(self, image: Image.Image, rng: np.random.Generator) -> torch.Tensor:
        return self.apply(image, self.draw(image.width, image.height, rng))

    def describe(self) -> str:
        steps = []
        if self.augment and self.resized_crop_p > 0:
            lo, hi = self.resized_crop_scale
            rlo, rhi = self.resized_crop_ratio
            steps.append(
                f"p={self.resized_crop_p:g} random resized crop (scale {lo:g}-{hi:g}, ratio "
                f"{rlo:g}-{rhi:g}) to {self.size}, else"
            )
        if self.resize is not None:
            how = "shorter side to" if self.resize_mode == "shorter_side" else "to"
            steps.append(f"resize {how} {self.resize} ({self.interpolation})")
        if self.crop:
            steps.append(f"{'random' if self.augment else 'centre'} crop {self.size}")
        if self.flip and self.augment:
            steps.append("horizontal flip p=0.5")
        steps.append("[-1, 1]")
        return f"{self.name}: " + ", ".join(steps)


def to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image -> (3, H, W) float32 in [-1, 1] (x / 127.5 - 1)."""
    array = np.array(image.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(array).permute(2, 0, 1).float().div_(127.5).sub_(1.0).contiguous()


def _resized_size(width: int, height: int, target: int, mode: str) -> tuple[int, int]:
    if mode == "square":
        return target, target
    if width <= height:  # as torchvision's Resize(int): the longer side is truncated
        return target, int(target * height / width)
    return int(target * width / height), target


def _resized_crop_box(
    width: int, height: int, scale: tuple[float, float], ratio: tuple[float, float],
    rng: np.random.Generator,
) -> tuple[int, int, int, int]:
    """A region of about scale * area with aspect ratio in `ratio` (log-uniform); after 10 failed
    tries, the largest centred region whose ratio is clamped into the range."""
    area = width * height
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1)), w, h
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        w, h = int(round(height * ratio[1])), height
    else:
        w, h = width, height
    return (width - w) // 2, (height - h) // 2, w, h


# name -> (resize as a multiple of the resolution or None, resize_mode, crop, flip,
#          resized_crop_p, interpolation)
PRESETS: dict[str, tuple[float | None, str, bool, bool, float, str]] = {
    "munit": (1.0, "shorter_side", True, True, 0.0, "bilinear"),
    "drit": (256 / 216, "square", True, True, 0.0, "bicubic"),
    "stargan_v2": (1.0, "square", False, True, 0.5, "bilinear"),
    "pix2pix": (286 / 256, "square", True, True, 0.0, "bicubic"),
    "crop": (None, "square", True, True, 0.0, "bilinear"),
    "resize": (1.0, "square", False, False, 0.0, "bilinear"),
}
ALIASES = {"bicyclegan": "pix2pix", "starganv2": "stargan_v2", "drit++": "drit"}


def preset(name: str, resolution: int, augment: bool = True) -> ImageTransform:
    """The named official transform producing resolution x resolution images (see module doc)."""
    key = ALIASES.get(name, name)
    if key not in PRESETS:
        raise ValueError(
            f"transform: expected one of {', '.join(list(PRESETS) + list(ALIASES))}, got {name!r}"
        )
    ratio, mode, crop, flip, p, interpolation = PRESETS[key]
    resize = None if ratio is None else int(round(resolution * ratio))
    return ImageTransform(
        name=key, size=resolution, resize=resize, resize_mode=mode, crop=crop, flip=flip,
        resized_crop_p=p, interpolation=interpolation, augment=augment,
    )
