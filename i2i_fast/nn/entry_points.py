"""Networks with several entry points that training calls through ``forward``.

DistributedDataParallel averages the gradients of what runs through the wrapped network's
``forward``; a call of any other method of the inner network bypasses it (RunContext's rule 1).
A network whose training calls several methods (MUNIT's generator: encode, decode) subclasses
``EntryPoints`` and lists them: ``net(x, entry="encode")`` runs ``net.encode(x)`` inside
``forward``, and the method's training view (``method.nets.gen_a.encode(x)``, see
i2i_fast.methods.roles) makes that call.
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn


class EntryPoints(nn.Module):
    """Base of a network whose named methods are reached through ``forward(..., entry=name)``."""

    entry_points: ClassVar[tuple[str, ...]] = ()

    def forward(self, *args: Any, entry: str, **kwargs: Any) -> Any:
        if entry not in self.entry_points:
            raise ValueError(f"{type(self).__name__}: entry: expected one of "
                             f"{self.entry_points}, got {entry!r}")
        return getattr(self, entry)(*args, **kwargs)
