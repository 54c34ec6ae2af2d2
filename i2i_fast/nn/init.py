"""Weight initialisations of the official implementations."""

from __future__ import annotations

import math

from torch import nn

INITS = ("gaussian", "xavier", "kaiming", "orthogonal")


def init_weights(module: nn.Module, kind: str, gain: float | None = None, *, linear: bool = True,
                 zero_bias: bool = True) -> nn.Module:
    """Initialise every Conv*/Linear weight of `module` and set their biases to 0.

    gaussian: N(0, 0.02) (MUNIT/DRIT discriminators); kaiming: kaiming_normal_(a=0, fan_in)
    (MUNIT generators; StarGAN v2's "He init"); xavier: xavier_normal_(gain sqrt 2);
    orthogonal: orthogonal_(gain sqrt 2). `gain` replaces the standard deviation of gaussian and
    the gain of xavier and orthogonal (BicycleGAN: xavier with gain 0.02); kaiming takes none.
    Other layers (norms) keep their own init.

    linear=False leaves the Linear layers as PyTorch initialised them, zero_bias=False every bias:
    DRIT's gaussian_weights_init touches only the weights of the Conv* layers
    (``init_weights(net, "gaussian", linear=False, zero_bias=False)``).
    """
    if kind not in INITS:
        raise ValueError(f"init: expected one of {', '.join(INITS)}, got {kind!r}")
    if gain is not None and kind == "kaiming":
        raise ValueError(f"init: gain: kaiming init takes no gain, got {gain!r}")
    layers = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d) + ((nn.Linear,) if linear
                                                                       else ())
    for m in module.modules():
        if isinstance(m, layers):
            if kind == "gaussian":
                nn.init.normal_(m.weight, 0.0, 0.02 if gain is None else gain)
            elif kind == "xavier":
                nn.init.xavier_normal_(m.weight, gain=math.sqrt(2) if gain is None else gain)
            elif kind == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            else:
                nn.init.orthogonal_(m.weight, gain=math.sqrt(2) if gain is None else gain)
            if zero_bias and m.bias is not None:
                nn.init.zeros_(m.bias)
    return module
