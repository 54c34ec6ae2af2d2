"""Bundled synthetic image sources: shapes (content) rendered in styles (domains), no download.

Image ``index`` of a synthetic domain is a pure function of (seed, split, slot, index): its scene
comes from ``rng(seed, "synthetic", split, "scene", slot, index)`` and its style parameters from
``rng(seed, "synthetic", split, "style", slot, index)``. ``slot`` is the domain's position in the
set (0 for A / the first domain, 1 for B, ...), so different domains (and splits) hold different
scenes. Nothing is cached on disk; an image is rendered when it is loaded, single-threaded with
vectorised numpy (so it never competes with torch's thread pool): a few milliseconds at 64 x 64,
tens of milliseconds at 256 x 256 (``python -m i2i_fast.bench.data_bench``).

A paired source renders slot 0's scenes in two styles with independent style parameters: the
ground-truth pairs share geometry exactly (same mask) and differ only in rendering.

Ground truth returned with each image: ``mask`` (1, R, R) float32 {0, 1}, the pixels whose centre
lies inside a shape. The domain label is the position of the style in the set. The scene itself
(``SyntheticDomain.scene(index)``) and the style parameters (``style_params(index)``) are
available for finer evaluation. See ``styles`` for the rules that make shapes segmentable and
domains recognisable.
"""

from __future__ import annotations

import numpy as np
import torch

from . import checks, seeding
from .shapes import Scene, coverage, pixel_grid, sample_scene, shape_mask, signed_distance
from .styles import Canvas, Params, Style, get_style

MIN_RESOLUTION = 8


def render(
    scene: Scene, style: str | Style, params: Params, resolution: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render a scene in a style at R x R.

    Returns (image, mask): image (3, R, R) float32 in [-1, 1]; mask (1, R, R) float32 {0, 1}.
    """
    st = get_style(style)
    x, y = pixel_grid(resolution)
    sdf = signed_distance(scene, x, y)
    canvas = Canvas(x=x, y=y, sdf=sdf, cover=coverage(sdf, resolution), resolution=resolution)
    rgb = np.broadcast_to(st.paint(canvas, params), (3, resolution, resolution))
    rgb = np.clip(rgb, 0.0, 1.0) * np.float32(2.0) - np.float32(1.0)
    image = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32))
    return image, torch.from_numpy(shape_mask(sdf))


class SyntheticDomain:
    """One synthetic domain: ``size`` scenes rendered in one style at ``resolution``.

    ``load(index)`` returns {"image": (3, R, R) float32 in [-1, 1], "mask": (1, R, R) {0, 1}}.
    """

    def __init__(
        self, style: str | Style, resolution: int, size: int, seed: int, split: str, slot: int
    ):
        what = "synthetic domain"
        self.style = get_style(style)
        self.resolution = checks.integer(what, "resolution", resolution, MIN_RESOLUTION)
        self.size = checks.integer(what, "size", size, 1)
        self.seed = checks.integer(what, "seed", seed, 0)
        self.slot = checks.integer(what, "slot", slot, 0)
        self.split = str(split)
        self.name = self.style.name

    def __len__(self) -> int:
        return self.size

    def _keys(self, what: str, index: int) -> tuple:
        return (self.seed, "synthetic", self.split, what, self.slot, index)

    def scene(self, index: int) -> Scene:
        return sample_scene(seeding.rng(*self._keys("scene", index)))

    def style_params(self, index: int) -> Params:
        return self.style.sample(seeding.rng(*self._keys("style", index)))

    def load(self, index: int, rng: np.random.Generator | None = None) -> dict[str, torch.Tensor]:
        """Image `index` (no augmentation: `rng` is not used; every index is its own scene)."""
        image, mask = render(self.scene(index), self.style, self.style_params(index), self.resolution)
        return {"image": image, "mask": mask}

    def describe(self) -> str:
        return (
            f"synthetic '{self.style.name}' ({self.size} images, {self.resolution}x{self.resolution},"
            f" slot {self.slot}): {self.style.description}"
        )

    def __repr__(self) -> str:
        return (
            f"SyntheticDomain(style={self.style.name!r}, resolution={self.resolution}, "
            f"size={self.size}, seed={self.seed}, split={self.split!r}, slot={self.slot})"
        )


class SyntheticPairs:
    """Aligned pairs: the scenes of domain A (slot 0) rendered in style A and in style B.

    ``load(index)`` returns {"a", "b": (3, R, R) in [-1, 1], "a_mask", "b_mask": (1, R, R), equal}.
    Image "a" is image `index` of ``domain_a`` (same scene and style parameters); "b" has the
    same scene and its own style-B parameters.
    """

    def __init__(
        self, style_a: str | Style, style_b: str | Style, resolution: int, size: int, seed: int,
        split: str,
    ):
        self.domain_a = SyntheticDomain(style_a, resolution, size, seed, split, slot=0)
        self.domain_b = SyntheticDomain(style_b, resolution, size, seed, split, slot=1)

    def __len__(self) -> int:
        return len(self.domain_a)

    def load(self, index: int, rng: np.random.Generator | None = None) -> dict[str, torch.Tensor]:
        scene = self.domain_a.scene(index)
        res = self.domain_a.resolution
        a, mask = render(scene, self.domain_a.style, self.domain_a.style_params(index), res)
        b, _ = render(scene, self.domain_b.style, self.domain_b.style_params(index), res)
        return {"a": a, "b": b, "a_mask": mask, "b_mask": mask.clone()}

    def describe(self) -> str:
        return (
            "synthetic pairs: the same scenes rendered as\n"
            f"    A = {self.domain_a.describe()}\n    B = {self.domain_b.describe()}"
        )

    def __repr__(self) -> str:
        return f"SyntheticPairs(a={self.domain_a!r}, b={self.domain_b!r})"
