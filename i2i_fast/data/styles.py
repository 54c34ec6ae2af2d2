"""Rendering styles of the synthetic sets: the *domain* of a synthetic image.

A style turns a scene (``shapes.Scene``, the content) into colours. Each style draws its own
parameters per image (palette hues, lightness, texture, glow...), so one domain holds many
different renderings of the same kind: translating into a domain is genuinely multimodal.

Rules that every style keeps, which make the ground truth usable for evaluation:

- **Shapes are segmentable by lightness.** With luma ``Y = 0.2126 R + 0.7152 G + 0.0722 B`` of
  the image in [0, 1], a pixel is a shape pixel exactly when Y is on the style's side of its
  ``threshold`` (``shapes_are`` = "darker" or "brighter"), except on the edges: shape interiors
  and background (with its texture and glow) stay more than 0.08 away from the threshold (about
  0.1 measured on 200 renders per style), and edges are anti-aliased over one pixel, so only
  pixels next to a shape's outline can disagree with the mask. ``segment_shapes`` applies the
  rule.
- **Domains are recognisable from the background's colour.** The median luma Y, median B - Y and
  median R - Y of an image (shapes cover less than half of it, so the medians are background)
  fall in ranges that do not overlap between styles: every pair of styles is separated by one of
  these three medians or by the median |Laplacian| of Y (texture). Day: light sky-blue, flat;
  night: near-black indigo with neon shapes; sunset: warm mid-light gradient with dark
  silhouettes; blueprint: saturated azure with a grid; paper: light warm white, textured. Each
  style's ``description`` gives its ranges (measured on renders, edge pixels excluded).

All parameters are drawn in ``sample(rng)`` and all drawing happens in ``paint`` without
randomness, in continuous image coordinates (textures are lattices sampled at pixel centres), so
a (scene, parameters) pair renders the same picture at any resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .shapes import MAX_SHAPES

LUMA_WEIGHTS = (0.2126, 0.7152, 0.0722)  # Rec. 709
Params = dict[str, Any]


# ----------------------------------------------------------------------------------------------
# Colour and texture helpers


def luma(images: torch.Tensor) -> torch.Tensor:
    """Luma of RGB images in [0, 1]: (..., 3, H, W) -> (..., 1, H, W)."""
    w = torch.tensor(LUMA_WEIGHTS, dtype=images.dtype, device=images.device).view(3, 1, 1)
    return (images * w).sum(dim=-3, keepdim=True)


def _hue_rgb(hue: float) -> np.ndarray:
    """Fully saturated colour of a hue in [0, 1) (0 red, 1/3 green, 2/3 blue), RGB in [0, 1]."""
    h6 = (hue % 1.0) * 6.0
    return np.clip([abs(h6 - 3.0) - 1.0, 2.0 - abs(h6 - 2.0), 2.0 - abs(h6 - 4.0)], 0.0, 1.0)


def colour(hue: float, saturation: float, lightness: np.ndarray | float) -> np.ndarray:
    """RGB with an exact luma: (3, *shape of lightness) float32 in [0, 1].

    ``lightness`` (the luma, clamped to [0, 1]) is kept exactly; ``saturation`` in [0, 1] is the
    fraction of the largest chroma of that hue that fits in [0, 1] at that luma.
    """
    lum = np.clip(np.asarray(lightness, dtype=np.float32), 0.0, 1.0)
    pure = _hue_rgb(hue)
    chroma = (pure - float(np.dot(LUMA_WEIGHTS, pure))).astype(np.float32)  # zero-luma direction
    room = np.full_like(lum, np.inf)
    for d in chroma:
        if d > 1e-6:
            np.minimum(room, (1.0 - lum) / d, out=room)
        elif d < -1e-6:
            np.minimum(room, lum / -d, out=room)
    scale = np.where(np.isfinite(room), room, 0.0).astype(np.float32) * np.float32(saturation)
    return np.stack([lum + scale * d for d in chroma])


def _interpolation(knots: int, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For coordinates t in [0, 1] over `knots` evenly spread knots: left knot index, right knot
    index and the smoothstep weight of the right one."""
    cells = knots - 1
    u = t * np.float32(cells)
    i = np.clip(np.floor(u), 0, cells - 1).astype(np.intp)
    f = u - i
    return i, i + 1, f * f * (3 - 2 * f)


def value_noise(lattice: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Smooth noise in [-1, 1] from a (c+1, c+1) lattice spread over the unit square, sampled on
    the pixel grid x (1, R), y (R, 1): (R, R) float32. Separable: rows first, then columns."""
    grid = lattice.astype(np.float32)
    j0, j1, fy = _interpolation(grid.shape[0], y[:, 0])
    rows = grid[j0] + (grid[j1] - grid[j0]) * fy[:, None]  # (R, c+1)
    i0, i1, fx = _interpolation(grid.shape[1], x[0])
    left, right = rows[:, i0], rows[:, i1]
    return left + (right - left) * fx[None, :]


def _smooth_1d(values: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Smooth 1-D noise: `values` (c+1,) spread over [0, 1], sampled at t (any shape)."""
    knots = values.astype(np.float32)
    i0, i1, f = _interpolation(len(knots), t)
    return knots[i0] + (knots[i1] - knots[i0]) * f


def _lattice(rng: np.random.Generator, cells: int) -> np.ndarray:
    return rng.uniform(-1.0, 1.0, size=(cells + 1, cells + 1))


def _stripes(x: np.ndarray, y: np.ndarray, period: float, angle: float) -> np.ndarray:
    """sin wave in [-1, 1] across direction `angle` with `period` in image widths."""
    k = 2.0 * math.pi / period
    return np.sin(x * np.float32(k * math.cos(angle)) + y * np.float32(k * math.sin(angle)))


@dataclass(frozen=True)
class Canvas:
    """What a style paints on (float32 arrays). x (1, R), y (R, 1): pixel centres in [0, 1]
    (broadcast to (R, R)); sdf: (n, R, R) signed distance to each shape; cover: (n, R, R)
    anti-aliased coverage."""

    x: np.ndarray
    y: np.ndarray
    sdf: np.ndarray
    cover: np.ndarray
    resolution: int


def _composite(background: np.ndarray, fills: list[np.ndarray], cover: np.ndarray) -> np.ndarray:
    """Shapes (3, R, R) or (3, 1, 1) each over a background (shapes never overlap)."""
    out = background
    for k, fill in enumerate(fills):
        out = out + (fill - out) * cover[k]
    return out


# ----------------------------------------------------------------------------------------------
# Styles


class Style:
    """A rendering style (one domain). Subclasses define the parameters and the painting."""

    name: str = ""
    description: str = ""
    shapes_are: str = ""  # "darker" or "brighter" than `threshold` (luma in [0, 1])
    threshold: float = 0.5

    def sample(self, rng: np.random.Generator) -> Params:
        """Draw this style's parameters for one image."""
        raise NotImplementedError

    def paint(self, canvas: Canvas, p: Params) -> np.ndarray:
        """(3, R, R) float32 RGB, in [0, 1] up to rounding (the renderer clamps)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"Style({self.name!r})"


class Day(Style):
    name = "day"
    description = (
        "day: light sky background (luma 0.76-0.94, hue 0.50-0.64, gentle vertical gradient, "
        "flat), flat saturated shapes (luma 0.26-0.45, any hue); shapes darker than 0.6"
    )
    shapes_are, threshold = "darker", 0.6

    def sample(self, rng):
        return {
            "bg_hue": rng.uniform(0.50, 0.64),
            "bg_sat": rng.uniform(0.2, 0.55),
            "bg_top": rng.uniform(0.84, 0.94),
            "bg_drop": rng.uniform(0.0, 0.08),
            "fg_hue": rng.uniform(0.0, 1.0),
            "fg_hue_jitter": rng.uniform(-0.08, 0.08, size=MAX_SHAPES),
            "fg_sat": rng.uniform(0.75, 1.0),
            "fg_luma": rng.uniform(0.26, 0.45),
        }

    def paint(self, c, p):
        background = colour(p["bg_hue"], p["bg_sat"], p["bg_top"] - p["bg_drop"] * c.y)
        fills = [
            colour(p["fg_hue"] + p["fg_hue_jitter"][k], p["fg_sat"], p["fg_luma"])[:, None, None]
            for k in range(len(c.sdf))
        ]
        return _composite(background, fills, c.cover)


class Night(Style):
    name = "night"
    description = (
        "night: near-black indigo/violet background (luma 0-0.15, hue 0.64-0.78, up to 0.29 in "
        "the glow) with cloudy and fine noise, bright striped neon shapes (luma 0.65-0.94, any "
        "hue) with a glow; shapes brighter than 0.52"
    )
    shapes_are, threshold = "brighter", 0.52

    def sample(self, rng):
        return {
            "bg_hue": rng.uniform(0.64, 0.78),
            "bg_sat": rng.uniform(0.3, 0.65),
            "bg_luma": rng.uniform(0.03, 0.07),
            "clouds": _lattice(rng, 5),
            "clouds_amp": rng.uniform(0.01, 0.03),
            "grain": _lattice(rng, 24),
            "grain_amp": rng.uniform(0.01, 0.025),
            "fg_hue": rng.uniform(0.0, 1.0),
            "fg_hue_jitter": rng.uniform(-0.1, 0.1, size=MAX_SHAPES),
            "fg_sat": rng.uniform(0.7, 1.0),
            "fg_luma": rng.uniform(0.72, 0.86),
            "stripe_period": rng.uniform(0.05, 0.1),
            "stripe_angle": rng.uniform(0.0, math.pi),
            "stripe_amp": rng.uniform(0.03, 0.08),
            "glow_width": rng.uniform(0.02, 0.05),
            "glow_strength": rng.uniform(0.15, 0.25),
        }

    def paint(self, c, p):
        lum = (
            p["bg_luma"]
            + p["clouds_amp"] * value_noise(p["clouds"], c.x, c.y)
            + p["grain_amp"] * value_noise(p["grain"], c.x, c.y)
        )
        background = colour(p["bg_hue"], p["bg_sat"], lum)
        stripes = p["fg_luma"] + p["stripe_amp"] * _stripes(
            c.x, c.y, p["stripe_period"], p["stripe_angle"]
        )
        fills = []
        for k in range(len(c.sdf)):
            hue = p["fg_hue"] + p["fg_hue_jitter"][k]
            glow = colour(hue, p["fg_sat"], p["fg_luma"] * p["glow_strength"])[:, None, None]
            falloff = np.exp(np.maximum(c.sdf[k], 0) * np.float32(-1.0 / p["glow_width"]))
            background = background + glow * falloff
            fills.append(colour(hue, p["fg_sat"], stripes))
        return _composite(np.minimum(background, 1.0), fills, c.cover)


class Sunset(Style):
    name = "sunset"
    description = (
        "sunset: warm vertical gradient from red-orange-yellow (top) to magenta-purple (bottom), "
        "luma 0.34-0.73, with horizontal streaks, dark flat silhouettes (luma 0.03-0.10); shapes "
        "darker than 0.24"
    )
    shapes_are, threshold = "darker", 0.24

    def sample(self, rng):
        return {
            "top_hue": rng.uniform(-0.02, 0.11) % 1.0,
            "top_luma": rng.uniform(0.58, 0.72),
            "bottom_hue": rng.uniform(0.78, 0.95),
            "bottom_luma": rng.uniform(0.36, 0.46),
            "sat": rng.uniform(0.6, 1.0),
            "streaks": rng.uniform(-1.0, 1.0, size=13),
            "streaks_amp": rng.uniform(0.01, 0.03),
            "fg_luma": rng.uniform(0.03, 0.10),
            "fg_sat": rng.uniform(0.1, 0.5),
        }

    def paint(self, c, p):
        top = colour(p["top_hue"], p["sat"], p["top_luma"])[:, None, None]
        bottom = colour(p["bottom_hue"], p["sat"], p["bottom_luma"])[:, None, None]
        streaks = p["streaks_amp"] * _smooth_1d(p["streaks"], c.y)
        background = top + (bottom - top) * c.y + streaks
        fill = colour(p["bottom_hue"], p["fg_sat"], p["fg_luma"])[:, None, None]
        return _composite(background, [fill] * len(c.sdf), c.cover)


class Blueprint(Style):
    name = "blueprint"
    description = (
        "blueprint: saturated azure background (luma 0.20-0.39, hue 0.54-0.61) with a lighter "
        "grid, near-white hatched shapes (luma 0.78-1.0); shapes brighter than 0.58"
    )
    shapes_are, threshold = "brighter", 0.58

    def sample(self, rng):
        return {
            "bg_hue": rng.uniform(0.54, 0.61),
            "bg_sat": rng.uniform(0.75, 1.0),
            "bg_luma": rng.uniform(0.2, 0.3),
            "grid_spacing": 1.0 / rng.uniform(6.0, 12.0),
            "grid_width": rng.uniform(0.004, 0.008),
            "grid_offset": rng.uniform(0.0, 1.0, size=2),
            "grid_luma": rng.uniform(0.08, 0.14),
            "fg_hue": rng.uniform(0.5, 0.6),
            "fg_sat": rng.uniform(0.0, 0.3),
            "fg_luma": rng.uniform(0.84, 0.95),
            "hatch_period": rng.uniform(0.04, 0.07),
            "hatch_angle": math.pi / 4 if rng.uniform() < 0.5 else 3 * math.pi / 4,
            "hatch_amp": rng.uniform(0.03, 0.06),
        }

    def paint(self, c, p):
        spacing, width = p["grid_spacing"], p["grid_width"]

        def lines(t: np.ndarray, offset: float) -> np.ndarray:
            # Anti-aliased coverage of the grid line nearest to each coordinate t.
            phase = (t / np.float32(spacing) + np.float32(offset)) % 1.0
            distance = (0.5 - np.abs(phase - 0.5)) * np.float32(spacing)
            return np.clip((width / 2 - distance) * c.resolution + 0.5, 0.0, 1.0)

        grid = np.maximum(lines(c.x, p["grid_offset"][0]), lines(c.y, p["grid_offset"][1]))
        background = colour(p["bg_hue"], p["bg_sat"], p["bg_luma"] + p["grid_luma"] * grid)
        hatch = p["fg_luma"] + p["hatch_amp"] * _stripes(
            c.x, c.y, p["hatch_period"], p["hatch_angle"]
        )
        fill = colour(p["fg_hue"], p["fg_sat"], hatch)
        return _composite(background, [fill] * len(c.sdf), c.cover)


class Paper(Style):
    name = "paper"
    description = (
        "paper: warm-white textured background (luma 0.76-0.97, hue 0.08-0.15), watercolour "
        "shapes (luma 0.28-0.52, any hue) with blotches and darker edges; shapes darker than 0.62"
    )
    shapes_are, threshold = "darker", 0.62

    def sample(self, rng):
        return {
            "bg_hue": rng.uniform(0.08, 0.15),
            "bg_sat": rng.uniform(0.15, 0.4),
            "bg_luma": rng.uniform(0.86, 0.93),
            "fibres": _lattice(rng, 32),
            "fibres_amp": rng.uniform(0.015, 0.03),
            "stains": _lattice(rng, 6),
            "stains_amp": rng.uniform(0.01, 0.02),
            "fg_hue": rng.uniform(0.0, 1.0),
            "fg_hue_jitter": rng.uniform(-0.15, 0.15, size=MAX_SHAPES),
            "fg_sat": rng.uniform(0.45, 0.8),
            "fg_luma": rng.uniform(0.34, 0.46),
            "blotches": _lattice(rng, 8),
            "blotch_amp": rng.uniform(0.03, 0.06),
            "edge_depth": rng.uniform(0.04, 0.08),
            "edge_width": rng.uniform(0.01, 0.02),
        }

    def paint(self, c, p):
        lum = (
            p["bg_luma"]
            + p["fibres_amp"] * value_noise(p["fibres"], c.x, c.y)
            + p["stains_amp"] * value_noise(p["stains"], c.x, c.y)
        )
        background = colour(p["bg_hue"], p["bg_sat"], lum)
        wash = p["fg_luma"] + p["blotch_amp"] * value_noise(p["blotches"], c.x, c.y)
        fills = []
        for k in range(len(c.sdf)):
            rim = p["edge_depth"] * np.exp(np.minimum(c.sdf[k], 0) * np.float32(1.0 / p["edge_width"]))
            fills.append(colour(p["fg_hue"] + p["fg_hue_jitter"][k], p["fg_sat"], wash - rim))
        return _composite(background, fills, c.cover)


STYLES: dict[str, Style] = {s.name: s for s in (Day(), Night(), Sunset(), Blueprint(), Paper())}
STYLE_ORDER = tuple(STYLES)  # domain order of the K-domain sets: day, night, sunset, ...


def get_style(name: str | Style) -> Style:
    if isinstance(name, Style):
        return name
    try:
        return STYLES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"style: expected one of {', '.join(STYLE_ORDER)}, got {name!r}"
        ) from None


def segment_shapes(images: torch.Tensor, style: str | Style) -> torch.Tensor:
    """Shape mask by the style's lightness rule: (..., 3, H, W) in [-1, 1] -> (..., 1, H, W) {0, 1}.

    This is the rule the renderer guarantees, so on real renders it reproduces the ground-truth
    mask up to anti-aliased boundary pixels; on a translated image it measures whether the shapes
    came out where the rule of the target style puts them.
    """
    st = get_style(style)
    y = luma((images.float() + 1.0) / 2.0)
    inside = y < st.threshold if st.shapes_are == "darker" else y > st.threshold
    return inside.to(torch.float32)
