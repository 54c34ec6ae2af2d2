"""Fixed (not learned) filters."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class HighPass(nn.Module):
    """StarGAN v2's high-pass filter: a depthwise 3x3 convolution (zero padding 1) with the
    Laplacian-like kernel [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]] / w_hpf on every channel.

    The kernel is the buffer ``filter`` (not a parameter), persistent as in the official code, so
    state dicts have the official key (``hpf.filter``) and an official generator loads strictly.
    Loading checks that a stored filter is the kernel of this w_hpf; a state dict without it
    (written by i2i_fast before the buffer was persistent) loads too, with the kernel computed
    from w_hpf, which is all the buffer ever holds. forward: (N, C, H, W) → (N, C, H, W).
    """

    def __init__(self, w_hpf: float):
        super().__init__()
        if not w_hpf > 0:
            raise ValueError(f"HighPass: w_hpf: expected a positive weight, got {w_hpf}")
        self.w_hpf = float(w_hpf)
        self.register_buffer("filter", self.expected_filter())
        self.register_load_state_dict_pre_hook(_fill_or_check_filter)

    def expected_filter(self) -> torch.Tensor:
        """The (3, 3) float32 kernel / w_hpf."""
        kernel = torch.tensor([[-1.0, -1.0, -1.0], [-1.0, 8.0, -1.0], [-1.0, -1.0, -1.0]])
        return kernel / self.w_hpf

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        weight = self.filter.to(x.dtype).expand(channels, 1, 3, 3)
        return F.conv2d(x, weight, padding=1, groups=channels)

    def extra_repr(self) -> str:
        return f"w_hpf={self.w_hpf}"


def _fill_or_check_filter(module: HighPass, state_dict: dict, prefix: str, local_metadata: dict,
                          strict: bool, missing_keys: list, unexpected_keys: list,
                          error_msgs: list) -> None:
    """load_state_dict pre-hook of HighPass: a missing ``filter`` (older i2i_fast state dicts)
    is the kernel of this w_hpf; a stored one must be it (a filter made for another w_hpf means
    the state dict belongs to another configuration)."""
    key = prefix + "filter"
    if key not in state_dict:
        state_dict[key] = module.expected_filter()
        return
    stored = state_dict[key]
    expected = module.expected_filter()
    if not isinstance(stored, torch.Tensor) or stored.shape != expected.shape \
            or stored.device.type == "meta":
        return  # a shape or type mismatch is reported by load_state_dict itself
    if not torch.allclose(stored.float().cpu(), expected, rtol=1e-3, atol=0.0):
        centre = float(stored[1, 1])
        made_for = f"w_hpf = {8.0 / centre:g}" if centre != 0 else "no w_hpf"
        error_msgs.append(f"{key}: expected the high-pass kernel / w_hpf for w_hpf = "
                          f"{module.w_hpf:g}, got a filter for {made_for}")
