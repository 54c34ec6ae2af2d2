"""Invariant Information Clustering (Ji, Henriques, Vedaldi, ICCV 2019), as TUNIT trains its
guiding network's cluster head with it (tools/ops.py: calc_iic_loss, compute_joint).

Plain PyTorch: this is the reference definition (a fused kernel would be tested against it).
"""

from __future__ import annotations

import torch


def _check_probabilities(owner: str, name: str, p: torch.Tensor) -> None:
    if not isinstance(p, torch.Tensor) or p.dim() != 2 or not p.is_floating_point():
        got = (f"{p.dtype} of shape {tuple(p.shape)}" if isinstance(p, torch.Tensor)
               else type(p).__name__)
        raise ValueError(f"{owner}: {name}: expected a floating point tensor (N, K) of cluster "
                         f"probabilities, got {got}")


def iic_joint(p: torch.Tensor, p_tf: torch.Tensor) -> torch.Tensor:
    """The joint distribution of the cluster assignments of an image and of its transformed
    version: P = Σ_n p_n p_tf_nᵀ (K, K), symmetrised ((P + Pᵀ) / 2) and normalised to sum 1."""
    joint = p.t() @ p_tf
    joint = (joint + joint.t()) / 2.0
    return joint / joint.sum()


def iic_loss(p: torch.Tensor, p_tf: torch.Tensor, eps: float = 1e-10,
             entropy_weight: float = 1.0) -> torch.Tensor:
    """−I(z; z') = −Σ_ij P_ij (log P_ij − log P_i − log P_j), the negative mutual information of
    the joint ``iic_joint(p, p_tf)`` and its marginals P_i (row sums), P_j (column sums).

    entropy_weight λ (the official ``lamb``, 1 in TUNIT and IIC): −Σ_ij P_ij (log P_ij − λ log
    P_i − λ log P_j) = H(z, z') − λ (H(z) + H(z')); λ > 1 rewards evenly used clusters more (IIC's
    remedy for degenerate solutions that leave clusters nearly empty or merge classes).

    p, p_tf: (N, K) softmax probabilities of the images and of their transformed versions.
    Entries of P, P_i and P_j below eps are set to eps before the logs (the official clamp: no
    NaN from log 0; a clamped entry gets no gradient). The marginals are taken before P is
    clamped, as in the official code. Returns a 0-d tensor (minimised: at best −log K).
    """
    _check_probabilities("iic_loss", "p", p)
    _check_probabilities("iic_loss", "p_tf", p_tf)
    if p.shape != p_tf.shape:
        raise ValueError(f"iic_loss: p_tf: expected the shape of p {tuple(p.shape)}, got "
                         f"{tuple(p_tf.shape)}")
    if isinstance(entropy_weight, bool) or not isinstance(entropy_weight, (int, float)) \
            or not entropy_weight > 0:
        raise ValueError(f"iic_loss: entropy_weight: expected a number > 0, got "
                         f"{entropy_weight!r}")
    joint = iic_joint(p, p_tf)
    p_i = joint.sum(dim=1, keepdim=True)
    p_j = joint.sum(dim=0, keepdim=True)
    floor = torch.tensor(eps, dtype=joint.dtype, device=joint.device)
    joint, p_i, p_j = (torch.where(t < eps, floor, t) for t in (joint, p_i, p_j))
    if entropy_weight == 1.0:  # the official expression, rounding included
        return -(joint * (torch.log(joint) - torch.log(p_j) - torch.log(p_i))).sum()
    return -(joint * (torch.log(joint) - entropy_weight * torch.log(p_j)
                      - entropy_weight * torch.log(p_i))).sum()
