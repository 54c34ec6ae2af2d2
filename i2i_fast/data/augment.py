"""TUNIT's augmentations (datasets/datasetgetter.py): each training item is an image and a
strongly transformed version of it, the pair the guiding network's IIC and MoCo losses compare.

    original    = resize to S x S (bilinear) -> horizontal flip (p 0.5) -> [-1, 1]
    transformed = random affine (rotation +-20 degrees, translation +-0.1 of each side, x-shear
                  +-10 degrees, nearest, black fill) -> random resized crop to S x S (scale
                  0.9-1.1, ratio 0.9-1.1, bilinear) -> colour jitter (brightness, contrast,
                  saturation 0.4, hue 0.125, in a random order) -> horizontal flip (p 0.5)
                  -> [-1, 1]

The operations follow torchvision's PIL implementations, which the official code calls
(RandomAffine, RandomResizedCrop, ColorJitter, RandomHorizontalFlip, Resize): the same parameter
distributions and the same pixel operations (PIL's affine transform with torchvision's inverse
matrix; ImageEnhance for brightness, contrast and saturation; a hue shift of the HSV H channel by
int(hue * 255) mod 256). The random parameters come from a numpy generator (``draw``), so an item
is a pure function of its keys (see ``seeding``); torchvision is not needed.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from PIL import Image, ImageEnhance

from .transforms import _resized_crop_box, to_tensor

JITTER_ORDER = ("brightness", "contrast", "saturation", "hue")


@dataclasses.dataclass(frozen=True)
class AffineParams:
    angle: float  # degrees, counter-clockwise
    translate: tuple[int, int]  # pixels (x, y)
    shear: float  # degrees, along x


@dataclasses.dataclass(frozen=True)
class JitterParams:
    order: tuple[str, ...]  # a permutation of JITTER_ORDER
    brightness: float
    contrast: float
    saturation: float
    hue: float


@dataclasses.dataclass(frozen=True)
class PairParams:
    flip_original: bool
    affine: AffineParams
    crop: tuple[int, int, int, int]  # (left, top, width, height) of the affine output
    jitter: JitterParams
    flip_transformed: bool


def affine_matrix(width: int, height: int, params: AffineParams) -> list[float]:
    """The inverse affine matrix (output pixel -> input pixel) PIL's Image.transform takes, about
    the image centre (width / 2, height / 2): torchvision's _get_inverse_affine_matrix with
    scale 1 and no y-shear."""
    rot = math.radians(params.angle)
    sx = math.radians(params.shear)
    cx, cy = width * 0.5, height * 0.5
    tx, ty = params.translate
    # rotation and x-shear (RSS of torchvision with sy = 0)
    a = math.cos(rot)
    b = -math.cos(rot) * math.tan(sx) - math.sin(rot)
    c = math.sin(rot)
    d = -math.sin(rot) * math.tan(sx) + math.cos(rot)
    m = [d, -b, 0.0, -c, a, 0.0]  # its inverse (determinant 1)
    m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty)
    m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty)
    m[2] += cx
    m[5] += cy
    return m


def affine(image: Image.Image, params: AffineParams) -> Image.Image:
    """Rotate, translate and shear about the centre; nearest neighbour, black outside."""
    matrix = affine_matrix(image.width, image.height, params)
    return image.transform(image.size, Image.Transform.AFFINE, matrix,
                           Image.Resampling.NEAREST, fillcolor=0)


def adjust_hue(image: Image.Image, hue: float) -> Image.Image:
    """Shift the HSV hue channel by int(hue * 255) (wrapping mod 256), hue in [-0.5, 0.5]."""
    if not -0.5 <= hue <= 0.5:
        raise ValueError(f"adjust_hue: hue: expected a value in [-0.5, 0.5], got {hue}")
    h, s, v = image.convert("HSV").split()
    shifted = (np.asarray(h, dtype=np.int64) + int(hue * 255)) % 256
    h = Image.fromarray(shifted.astype(np.uint8), "L")
    return Image.merge("HSV", (h, s, v)).convert(image.mode)


def color_jitter(image: Image.Image, params: JitterParams) -> Image.Image:
    """Brightness, contrast, saturation (PIL ImageEnhance factors) and hue, in params.order."""
    for name in params.order:
        if name == "brightness":
            image = ImageEnhance.Brightness(image).enhance(params.brightness)
        elif name == "contrast":
            image = ImageEnhance.Contrast(image).enhance(params.contrast)
        elif name == "saturation":
            image = ImageEnhance.Color(image).enhance(params.saturation)
        else:
            image = adjust_hue(image, params.hue)
    return image


@dataclasses.dataclass(frozen=True)
class PairAugmentation:
    """The (original, transformed) pair of one image (see the module docstring); the defaults are
    the official ones. ``__call__(image, rng)`` -> two (3, size, size) float32 tensors in [-1, 1].
    """

    size: int
    degrees: float = 20.0
    translate: float = 0.1
    shear: float = 10.0
    crop_scale: tuple[float, float] = (0.9, 1.1)
    crop_ratio: tuple[float, float] = (0.9, 1.1)
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.125
    augment: bool = True  # False (evaluation splits): the original is not flipped

    def draw(self, width: int, height: int, rng: np.random.Generator) -> PairParams:
        """Random parameters for an input image of width x height."""
        flip_original = bool(rng.uniform() < 0.5)
        angle = float(rng.uniform(-self.degrees, self.degrees))
        max_dx, max_dy = self.translate * width, self.translate * height
        translate = (int(round(rng.uniform(-max_dx, max_dx))),
                     int(round(rng.uniform(-max_dy, max_dy))))
        shear = float(rng.uniform(-self.shear, self.shear))
        crop = _resized_crop_box(width, height, self.crop_scale, self.crop_ratio, rng)
        order = tuple(JITTER_ORDER[i] for i in rng.permutation(4))
        jitter = JitterParams(
            order,
            float(rng.uniform(max(0.0, 1 - self.brightness), 1 + self.brightness)),
            float(rng.uniform(max(0.0, 1 - self.contrast), 1 + self.contrast)),
            float(rng.uniform(max(0.0, 1 - self.saturation), 1 + self.saturation)),
            float(rng.uniform(-self.hue, self.hue)))
        flip_transformed = bool(rng.uniform() < 0.5)
        return PairParams(flip_original, AffineParams(angle, translate, shear), crop, jitter,
                          flip_transformed)

    def apply(self, image: Image.Image, params: PairParams) -> tuple[torch.Tensor, torch.Tensor]:
        image = image.convert("RGB")
        original = image
        if original.size != (self.size, self.size):
            original = original.resize((self.size, self.size), Image.Resampling.BILINEAR)
        if params.flip_original and self.augment:
            original = original.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        transformed = affine(image, params.affine)
        left, top, w, h = params.crop
        transformed = transformed.crop((left, top, left + w, top + h)).resize(
            (self.size, self.size), Image.Resampling.BILINEAR)
        transformed = color_jitter(transformed, params.jitter)
        if params.flip_transformed:
            transformed = transformed.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return to_tensor(original), to_tensor(transformed)

    def __call__(self, image: Image.Image, rng: np.random.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.apply(image, self.draw(image.width, image.height, rng))

    def for_eval(self, image: Image.Image) -> torch.Tensor:
        """The original of an evaluation image: resized to size x size, not flipped."""
        image = image.convert("RGB")
        if image.size != (self.size, self.size):
            image = image.resize((self.size, self.size), Image.Resampling.BILINEAR)
        return to_tensor(image)

    def describe(self) -> str:
        return (f"TUNIT pair at {self.size}x{self.size}: original = resize + flip; transformed = "
                f"affine (rotation +-{self.degrees:g} deg, translation +-{self.translate:g}, "
                f"shear +-{self.shear:g} deg), resized crop (scale {self.crop_scale[0]:g}-"
                f"{self.crop_scale[1]:g}, ratio {self.crop_ratio[0]:g}-{self.crop_ratio[1]:g}), "
                f"colour jitter ({self.brightness:g}, {self.contrast:g}, {self.saturation:g}, "
                f"{self.hue:g}), flip")


def to_pil(image: torch.Tensor) -> Image.Image:
    """(3, H, W) in [-1, 1] -> an RGB PIL image (rounded to 8 bits)."""
    array = ((image.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return Image.fromarray(array.permute(1, 2, 0).cpu().numpy(), "RGB")
