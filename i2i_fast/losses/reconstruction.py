"""Reconstruction terms."""

from __future__ import annotations

import torch


def l1(input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mean(|input − target|) (MUNIT's recon_criterion, StarGAN v2's style/cycle terms)."""
    return torch.mean(torch.abs(input - target))
