"""LPIPS distance with the real ``lpips`` package, its backbone weights read from a local file.

``lpips.LPIPS(net=..., pnet_rand=True)`` builds the package's network with a randomly
initialised backbone (nothing is downloaded) and loads the calibrated linear layers that ship
inside the package; the backbone (ImageNet-trained AlexNet, VGG16 or SqueezeNet 1.1 features)
is then loaded from a file the user supplies: either torchvision's state dict of that network
(e.g. ``alexnet-owt-7be5be79.pth``, keys ``features.<i>.weight``...) or the LPIPS backbone's own
keys (``slice<j>.<i>.weight``, optionally prefixed ``net.``). The file is read with
``torch.load(weights_only=True)``; every backbone tensor must be present with its shape.

Without a weights file, LPIPS is *unavailable* (``lpips_or_reason`` says why) and the evaluation
reports it so; nothing is computed with a random backbone, except when ``random_backbone=True``
is asked for explicitly (the tests do, to check the mechanics), and then ``description`` says so.

Inputs are images (N, 3, H, W) in [-1, 1] (LPIPS's own convention), H and W at least
``MIN_SIZE`` for AlexNet (its pooling needs it); output (N,) distances.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import torch

NETS = ("alex", "vgg", "squeeze")
TORCHVISION_NAMES = {"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1"}
MIN_SIZE = {"alex": 32, "vgg": 16, "squeeze": 16}
_SLICE_KEY = re.compile(r"^slice(\d+)\.(\d+)\.(.+)$")


class LPIPSUnavailable(RuntimeError):
    """LPIPS cannot be computed (no weights file, no lpips package, bad file): the reason."""


def _build(net: str, seed: int):
    try:
        import lpips  # imports torchvision
    except Exception as error:  # noqa: BLE001 - any import failure means "unavailable"
        raise LPIPSUnavailable(
            f"the lpips package does not import ({type(error).__name__}: {error}); "
            f"install it with `pip install lpips`"
        ) from error
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        # torchvision warns that `pretrained=False` (what pnet_rand passes) is deprecated.
        warnings.simplefilter("ignore", UserWarning)
        torch.manual_seed(seed)
        return lpips.LPIPS(pretrained=True, net=net, pnet_rand=True, verbose=False)


def _backbone_state(path: Path, backbone: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The file's tensors renamed to the LPIPS backbone's keys (checked complete, right shapes)."""
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - reported with the path
        raise LPIPSUnavailable(
            f"lpips weights {path}: could not be read with torch.load(weights_only=True) "
            f"({type(error).__name__}: {error})"
        ) from error
    if isinstance(stored, dict) and isinstance(stored.get("state_dict"), dict):
        stored = stored["state_dict"]
    if not isinstance(stored, dict) or not all(isinstance(v, torch.Tensor) for v in stored.values()):
        raise LPIPSUnavailable(
            f"lpips weights {path}: expected a state dict (name -> tensor), got "
            f"{type(stored).__name__}"
        )
    mapped, missing, wrong = {}, [], []
    for name, tensor in backbone.state_dict().items():
        match = _SLICE_KEY.match(name)
        candidates = [name, f"net.{name}"]
        if match:
            candidates.append(f"features.{match.group(2)}.{match.group(3)}")
        found = next((c for c in candidates if c in stored), None)
        if found is None:
            missing.append(" or ".join(candidates))
        elif stored[found].shape != tensor.shape:
            wrong.append(f"{found}: expected {tuple(tensor.shape)}, got {tuple(stored[found].shape)}")
        else:
            mapped[name] = stored[found].to(tensor.dtype)
    if missing or wrong:
        some = list(stored)[:4]
        raise LPIPSUnavailable(
            f"lpips weights {path}: not a backbone of this LPIPS network; "
            + (f"missing {len(missing)} tensors (first: {missing[:3]}); " if missing else "")
            + (f"wrong shapes: {wrong[:3]}; " if wrong else "")
            + f"the file has {len(stored)} tensors, e.g. {some}"
        )
    return mapped


def _no_weights(net: str) -> str:
    return (f"no LPIPS backbone weights given (pass --lpips-weights PATH: torchvision's "
            f"{TORCHVISION_NAMES[net]} ImageNet state dict); they cannot be downloaded here")


class LPIPSDistance:
    """LPIPS between image batches (see the module doc). ``description`` says what backbone."""

    def __init__(self, backbone_weights: str | os.PathLike | None, net: str = "alex", *,
                 random_backbone: bool = False, device: torch.device | str = "cpu", seed: int = 0):
        if net not in NETS:
            raise ValueError(f"LPIPSDistance: net: expected one of {', '.join(NETS)}, got {net!r}")
        if backbone_weights is None and not random_backbone:
            raise LPIPSUnavailable(_no_weights(net))
        if backbone_weights is not None and random_backbone:
            raise ValueError("LPIPSDistance: give backbone_weights or random_backbone=True, not both")
        self.net_name = net
        self.model = _build(net, seed)
        if backbone_weights is not None:
            path = Path(backbone_weights).expanduser()
            if not path.is_file():
                raise LPIPSUnavailable(f"lpips weights: {path} does not exist or is not a file")
            self.model.net.load_state_dict(_backbone_state(path, self.model.net), strict=True)
            self.description = f"LPIPS v0.1 ({net}), backbone from {path}"
        else:
            self.description = (f"LPIPS v0.1 ({net}) with a RANDOM backbone (seed {seed}): "
                                f"mechanics only, not comparable with published LPIPS")
        self.model.eval().to(device)
        self.device = torch.device(device)

    @torch.no_grad()
    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Distances (N,) float32 between images a, b (N, 3, H, W) in [-1, 1]."""
        if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
            raise TypeError("LPIPSDistance: a, b: expected tensors")
        if a.shape != b.shape or a.dim() != 4 or a.shape[1] != 3:
            raise ValueError(
                f"LPIPSDistance: a, b: expected the same shape (N, 3, H, W), got "
                f"{tuple(a.shape)} and {tuple(b.shape)}"
            )
        low = MIN_SIZE[self.net_name]
        if min(a.shape[-2:]) < low:
            raise ValueError(
                f"LPIPSDistance: images: expected H, W >= {low} for the {self.net_name} backbone, "
                f"got {tuple(a.shape[-2:])}"
            )
        a = a.to(self.device, torch.float32)
        b = b.to(self.device, torch.float32)
        return self.model(a, b).flatten().float()


def lpips_or_reason(
    backbone_weights: str | os.PathLike | None, net: str = "alex",
    device: torch.device | str = "cpu",
) -> tuple[LPIPSDistance | None, str]:
    """(distance, description), or (None, why LPIPS is unavailable) when no weights file is
    given. A file that is given but cannot be used raises ``LPIPSUnavailable`` (a user error,
    not a reason to leave the figure out silently)."""
    if net not in NETS:
        raise ValueError(f"lpips: net: expected one of {', '.join(NETS)}, got {net!r}")
    if backbone_weights is None:
        return None, f"unavailable: {_no_weights(net)}"
    distance = LPIPSDistance(backbone_weights, net, device=device)
    return distance, distance.description
