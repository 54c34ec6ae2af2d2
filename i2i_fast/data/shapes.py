"""Geometry of the synthetic scenes: a few shapes in continuous image coordinates.

A scene is the *content* of a synthetic image: 1 to ``MAX_SHAPES`` shapes (circle, square,
equilateral triangle) with a position, a size (circumradius) and a rotation, in coordinates where
the image is the unit square (x to the right, y down). Shapes do not touch: their circumscribed
circles keep a gap of ``GAP`` between them and stay ``MARGIN`` inside the border, so every shape is
whole, separate, and has room for a glow. Rendering at R x R pixels samples the scene at the pixel
centres ((i + 0.5) / R), so the same scene gives the same picture at any resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SHAPE_KINDS = ("circle", "square", "triangle")
MAX_SHAPES = 4
MIN_SHAPES = 1
RADIUS_RANGE = (0.09, 0.2)  # circumradius, in image widths
GAP = 0.03
MARGIN = 0.02
_ATTEMPTS_PER_SHAPE = 40


@dataclass(frozen=True)
class Scene:
    """Shapes of one image. Arrays of length n (1 <= n <= MAX_SHAPES), float64 unless noted.

    kinds: int64 indices into SHAPE_KINDS; centers: (n, 2) as (x, y); radii: circumradius;
    angles: rotation in radians (ignored for circles).
    """

    kinds: np.ndarray
    centers: np.ndarray
    radii: np.ndarray
    angles: np.ndarray

    def __len__(self) -> int:
        return len(self.kinds)


def sample_scene(rng: np.random.Generator) -> Scene:
    """Draw a scene: a target count in [MIN_SHAPES, MAX_SHAPES], each shape placed by rejection.

    A shape that finds no free place in its attempts is left out; the first always fits, so a
    scene has at least one shape.
    """
    target = int(rng.integers(MIN_SHAPES, MAX_SHAPES + 1))
    kinds, centers, radii, angles = [], [], [], []
    for _ in range(target):
        for _attempt in range(_ATTEMPTS_PER_SHAPE):
            kind = int(rng.integers(len(SHAPE_KINDS)))
            radius = float(rng.uniform(*RADIUS_RANGE))
            low, high = radius + MARGIN, 1.0 - radius - MARGIN
            center = rng.uniform(low, high, size=2)
            angle = float(rng.uniform(0.0, 2.0 * math.pi))
            if all(
                math.dist(center, c) >= radius + r + GAP for c, r in zip(centers, radii)
            ):
                kinds.append(kind)
                centers.append(center)
                radii.append(radius)
                angles.append(angle)
                break
    return Scene(
        kinds=np.asarray(kinds, dtype=np.int64),
        centers=np.asarray(centers, dtype=np.float64).reshape(-1, 2),
        radii=np.asarray(radii, dtype=np.float64),
        angles=np.asarray(angles, dtype=np.float64),
    )


def pixel_grid(resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [0, 1], float32, as broadcastable views: x (1, R), y (R, 1).

    Expressions in x and y broadcast to (R, R); terms in x or y alone stay 1-D and cheap.
    """
    t = (np.arange(resolution, dtype=np.float32) + 0.5) / np.float32(resolution)
    return t[None, :], t[:, None]


def signed_distance(scene: Scene, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Signed distance of each pixel to each shape, (n, R, R) float32, negative inside.

    Exact (Euclidean) for every kind: a glow or an outline drawn from it keeps its width all
    around the shape, corners included.
    """
    out = np.empty((len(scene), y.shape[0], x.shape[1]), dtype=np.float32)
    for k in range(len(scene)):
        cx, cy = (np.float32(v) for v in scene.centers[k])
        r, a = float(scene.radii[k]), float(scene.angles[k])
        dx, dy = x - cx, y - cy
        kind = SHAPE_KINDS[int(scene.kinds[k])]
        if kind == "circle":
            out[k] = np.sqrt(dx * dx + dy * dy) - np.float32(r)
            continue
        dx, dy = np.broadcast_arrays(dx, dy)
        # Coordinates in the shape's own rotated frame.
        cos, sin = np.float32(math.cos(a)), np.float32(math.sin(a))
        u = cos * dx + sin * dy
        v = cos * dy - sin * dx
        if kind == "square":
            half = np.float32(r / math.sqrt(2.0))
            qu, qv = np.abs(u) - half, np.abs(v) - half
            outside = np.sqrt(np.maximum(qu, 0) ** 2 + np.maximum(qv, 0) ** 2)
            out[k] = outside + np.minimum(np.maximum(qu, qv), 0)
        else:  # equilateral triangle: edges at the inradius r / 2, vertices at r
            inside = np.full_like(u, -np.inf)
            for j in range(3):
                theta = math.pi / 2 + j * 2.0 * math.pi / 3.0
                edge = np.float32(math.cos(theta)) * u + np.float32(math.sin(theta)) * v
                np.maximum(inside, edge - np.float32(r / 2.0), out=inside)
            corners = [
                (r * math.cos(5 * math.pi / 6 + j * 2 * math.pi / 3),
                 r * math.sin(5 * math.pi / 6 + j * 2 * math.pi / 3))
                for j in range(3)
            ]
            outside = np.full_like(u, np.inf)
            for j in range(3):
                np.minimum(outside, _segment_distance(u, v, corners[j - 1], corners[j]), out=outside)
            out[k] = np.where(inside <= 0, inside, outside)
    return out


def _segment_distance(
    u: np.ndarray, v: np.ndarray, p: tuple[float, float], q: tuple[float, float]
) -> np.ndarray:
    """Euclidean distance from points (u, v) to the segment p-q."""
    eu, ev = q[0] - p[0], q[1] - p[1]
    pu, pv = u - np.float32(p[0]), v - np.float32(p[1])
    t = np.clip((pu * np.float32(eu) + pv * np.float32(ev)) / np.float32(eu * eu + ev * ev), 0.0, 1.0)
    du, dv = pu - t * np.float32(eu), pv - t * np.float32(ev)
    return np.sqrt(du * du + dv * dv)


def coverage(sdf: np.ndarray, resolution: int) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] from signed distances: 1 inside, 0 outside, a one-pixel ramp.

    Coverage is at least 0.5 exactly where the distance is <= 0, i.e. where the mask is 1.
    """
    return np.clip(np.float32(0.5) - sdf * np.float32(resolution), 0.0, 1.0)


def shape_mask(sdf: np.ndarray) -> np.ndarray:
    """(1, R, R) float32 {0, 1}: pixels whose centre lies inside (or on) a shape."""
    if sdf.shape[0] == 0:
        return np.zeros((1,) + sdf.shape[1:], dtype=np.float32)
    return (sdf.min(axis=0, keepdims=True) <= 0).astype(np.float32)
