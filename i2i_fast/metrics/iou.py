"""Intersection over union of binary masks (the content-preservation score)."""

from __future__ import annotations

import torch


def mask_iou(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU per image of binary masks (N, 1, H, W) (values > 0.5 count as inside): (N,) float32.

    Two empty masks agree perfectly (IoU 1).
    """
    if not isinstance(predicted, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError(
            f"mask_iou: expected two tensors, got {type(predicted).__name__} and "
            f"{type(target).__name__}"
        )
    if predicted.shape != target.shape or predicted.dim() != 4 or predicted.shape[1] != 1:
        raise ValueError(
            f"mask_iou: predicted, target: expected the same shape (N, 1, H, W), got "
            f"{tuple(predicted.shape)} and {tuple(target.shape)}"
        )
    p = predicted > 0.5
    t = target.to(predicted.device) > 0.5
    inter = (p & t).flatten(1).sum(1).float()
    union = (p | t).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
