"""Diversity: mean distance over all K(K-1)/2 pairs of the K outputs of one input.

StarGAN v2's protocol: 10 outputs per input and target, LPIPS averaged over the 45 pairs, then
over inputs. Here the pixel-space L1 (mean absolute difference of images in [-1, 1], so between
0 and 2) is always computed; LPIPS when a ``LPIPSDistance`` is given.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch

Distance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _check(outputs: object) -> torch.Tensor:
    if not isinstance(outputs, torch.Tensor) or outputs.dim() != 5:
        shape = tuple(outputs.shape) if isinstance(outputs, torch.Tensor) else type(outputs).__name__
        raise ValueError(f"diversity: outputs: expected (N, K, C, H, W), got {shape}")
    if outputs.shape[1] < 2:
        raise ValueError(
            f"diversity: outputs: expected K >= 2 outputs per input to form pairs, got K = "
            f"{outputs.shape[1]}"
        )
    return outputs


def pairs(k: int) -> list[tuple[int, int]]:
    """The K(K-1)/2 index pairs (i < j)."""
    return list(itertools.combinations(range(k), 2))


def l1_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference per image: (N, C, H, W) x 2 -> (N,) float32."""
    return (a.float() - b.float()).abs().flatten(1).mean(1)


def pairwise_mean(outputs: torch.Tensor, distance: Distance = l1_distance) -> torch.Tensor:
    """For outputs (N, K, C, H, W): (N,) mean of `distance` over the K(K-1)/2 pairs of each
    input's outputs."""
    outputs = _check(outputs)
    index = pairs(outputs.shape[1])
    total = torch.zeros(outputs.shape[0], dtype=torch.float64)
    for i, j in index:
        total += distance(outputs[:, i], outputs[:, j]).double().cpu()
    return (total / len(index)).float()
