"""FID hook: InceptionV3 pool features (torchvision's architecture, user-supplied weights) and the
Frechet distance between two sets of features.

``InceptionFeatures(weights_path)`` builds ``torchvision.models.Inception3`` (no auxiliary head,
no input transform) and loads a state dict from a local file (``torch.load(weights_only=True)``;
torchvision's ``inception_v3_google-*.pth`` works, its ``AuxLogits.*`` tensors are ignored); the
2048-d output of the final average pool is the feature. Images (N, 3, H, W) in [-1, 1] are
resized to 299 x 299 (bilinear), which is the input range these weights expect with
``transform_input=False``. Without a weights file, FID is unavailable and said so.

Caveat: published FIDs (StarGAN v2's included) use the TF-Inception graph ported by pytorch-fid
(``pt_inception-2015-12-05``), whose blocks differ slightly from torchvision's Inception3; FIDs
from torchvision's ImageNet weights are consistent with each other but not with those tables.
FID is also biased upward for small sample counts: compare figures with the same counts only.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F

INPUT_SIZE = 299
MIN_INPUT_SIZE = 75  # the smallest input Inception3's stride/pool chain accepts
FEATURE_DIM = 2048


class FIDUnavailable(RuntimeError):
    """FID cannot be computed (no weights file, unreadable file): the reason."""


def _inception():
    try:
        from torchvision.models import Inception3
    except Exception as error:  # noqa: BLE001 - any import failure means "unavailable"
        raise FIDUnavailable(
            f"torchvision does not import ({type(error).__name__}: {error})"
        ) from error
    return Inception3(num_classes=1000, aux_logits=False, transform_input=False,
                      init_weights=False)


class InceptionFeatures(torch.nn.Module):
    """Images (N, 3, H, W) in [-1, 1] -> pool features (N, 2048) float64."""

    def __init__(self, weights: str | os.PathLike | None, *, input_size: int = INPUT_SIZE,
                 device: torch.device | str = "cpu"):
        super().__init__()
        if weights is None:
            raise FIDUnavailable(
                "no Inception weights given (pass --inception-weights PATH: a state dict of "
                "torchvision's Inception3); they cannot be downloaded here"
            )
        if input_size < MIN_INPUT_SIZE:
            raise ValueError(
                f"InceptionFeatures: input_size: expected >= {MIN_INPUT_SIZE}, got {input_size}"
            )
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FIDUnavailable(f"inception weights: {path} does not exist or is not a file")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - reported with the path
            raise FIDUnavailable(
                f"inception weights {path}: could not be read with torch.load(weights_only=True) "
                f"({type(error).__name__}: {error})"
            ) from error
        if not isinstance(state, dict):
            raise FIDUnavailable(f"inception weights {path}: expected a state dict, got "
                                 f"{type(state).__name__}")
        state = {k: v for k, v in state.items() if not k.startswith("AuxLogits.")}
        with torch.random.fork_rng(devices=[]):
            net = _inception()
        result = net.load_state_dict(state, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise FIDUnavailable(
                f"inception weights {path}: not a state dict of torchvision's Inception3: "
                f"missing {len(result.missing_keys)} (first: {result.missing_keys[:3]}), "
                f"unexpected {len(result.unexpected_keys)} (first: {result.unexpected_keys[:3]})"
            )
        net.fc = torch.nn.Identity()
        self.net = net.eval().to(device)
        self.input_size = input_size
        self.description = f"torchvision Inception3 pool features, weights {path}"

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"InceptionFeatures: images: expected (N, 3, H, W), got {shape}")
        device = next(self.net.parameters()).device
        x = images.to(device, torch.float32)
        if x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                              align_corners=False)
        return self.net(x).double().cpu()


def feature_statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and covariance (D, D) (unbiased) of features (M, D), float64. M >= 2."""
    if features.dim() != 2 or features.shape[0] < 2:
        raise ValueError(
            f"feature_statistics: features: expected (M >= 2, D), got {tuple(features.shape)}"
        )
    f = features.double()
    mu = f.mean(dim=0)
    centred = f - mu
    return mu, centred.T @ centred / (f.shape[0] - 1)


def _psd_sqrt(m: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh((m + m.T) / 2)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor,
                     sigma2: torch.Tensor) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2):
    |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1^1/2 S2 S1^1/2)^1/2), in float64.

    The trace of the geometric mean is computed from the eigenvalues of the symmetric
    S1^1/2 S2 S1^1/2 (same trace as sqrtm(S1 S2), without its complex round-off)."""
    mu1, mu2, s1, s2 = (t.double() for t in (mu1, mu2, sigma1, sigma2))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.numel(), mu1.numel()):
        raise ValueError(
            f"frechet_distance: expected mu (D,) and sigma (D, D) for both, got "
            f"{tuple(mu1.shape)}, {tuple(s1.shape)}, {tuple(mu2.shape)}, {tuple(s2.shape)}"
        )
    root1 = _psd_sqrt(s1)
    inner = root1 @ s2 @ root1
    cross = torch.linalg.eigvalsh((inner + inner.T) / 2).clamp(min=0).sqrt().sum()
    value = (mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * cross
    return float(value.clamp(min=0))


def fid_from_features(a: torch.Tensor, b: torch.Tensor) -> float:
    """FID between two feature sets (Ma, D) and (Mb, D), Ma, Mb >= 2, in float64.

    With fewer samples than dimensions (the usual case here: hundreds of images, D = 2048) the
    same value is computed in sample space: with centred features A (Ma, D) and B (Mb, D),
    S1 = A^T A / (Ma - 1) and S2 = B^T B / (Mb - 1), the non-zero eigenvalues of
    S1^1/2 S2 S1^1/2 are those of S1 S2, i.e. the squared singular values of
    A B^T / sqrt((Ma - 1)(Mb - 1)); so tr((S1^1/2 S2 S1^1/2)^1/2) is the nuclear norm of that
    (Ma, Mb) matrix: no D x D eigendecomposition.
    """
    for name, f in (("a", a), ("b", b)):
        if f.dim() != 2 or f.shape[0] < 2:
            raise ValueError(f"fid_from_features: {name}: expected (M >= 2, D), got {tuple(f.shape)}")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"fid_from_features: a, b: expected the same feature size, got "
                         f"{a.shape[1]} and {b.shape[1]}")
    if max(a.shape[0], b.shape[0]) >= a.shape[1]:
        return frechet_distance(*feature_statistics(a), *feature_statistics(b))
    a, b = a.double(), b.double()
    mu1, mu2 = a.mean(dim=0), b.mean(dim=0)
    ca, cb = a - mu1, b - mu2
    n1, n2 = a.shape[0] - 1, b.shape[0] - 1
    cross = torch.linalg.matrix_norm(ca @ cb.T, ord="nuc") / (n1 * n2) ** 0.5
    value = (mu1 - mu2).square().sum() + ca.square().sum() / n1 + cb.square().sum() / n2 - 2 * cross
    return float(value.clamp(min=0))
