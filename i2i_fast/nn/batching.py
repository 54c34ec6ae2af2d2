"""Several calls of one network as one call on the concatenated batch.

For a network whose output for a sample depends on that sample alone (convolutions, instance or
layer norm per sample, pooling; not batch norm, not a minibatch statistic), ``network(x)`` and
``network(y)`` equal ``network(cat[x, y])`` split at ``len(x)``, up to rounding. One call of the
larger batch costs less than two small ones on the CPU (a batch-1 convolution leaves most of the
vector units and threads idle) and launches half the kernels on a GPU.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


def _part(output: Any, start: int, size: int) -> Any:
    """Rows start..start + size of every tensor of `output` (a tensor, None, or a list or tuple
    of those, nested), in the same structure."""
    if output is None:
        return None
    if isinstance(output, torch.Tensor):
        return output.narrow(0, start, size)
    if isinstance(output, (list, tuple)):
        return type(output)(_part(o, start, size) for o in output)
    raise TypeError(f"in_one_batch: network output: expected tensors, None, or lists or tuples "
                    f"of those, got {type(output).__name__}")


def in_one_batch(network: Callable[..., Any], *calls: torch.Tensor | tuple[torch.Tensor, ...]
                 ) -> list[Any]:
    """``[network(*call) for call in calls]`` computed as one call of `network` whose i-th
    argument is the concatenation (along dim 0) of the calls' i-th arguments.

    calls: each a tensor (one argument) or a tuple of tensors (the arguments of one call), every
    argument of a call with the same batch size. The outputs (tensors, None, or lists or tuples
    of those, each with the batch first) are split back, one per call, as views. Only exact for
    networks that treat every sample on its own (see the module docstring); the caller knows.
    """
    if not calls:
        raise ValueError("in_one_batch: calls: expected at least one, got none")
    calls_args = [call if isinstance(call, tuple) else (call,) for call in calls]
    arity = len(calls_args[0])
    sizes = []
    for i, args in enumerate(calls_args):
        if len(args) != arity or not args:
            raise ValueError(f"in_one_batch: calls[{i}]: expected {arity} argument(s) like "
                             f"calls[0], got {len(args)}")
        batch = {int(a.shape[0]) for a in args}
        if len(batch) != 1:
            raise ValueError(f"in_one_batch: calls[{i}]: expected arguments with one batch size, "
                             f"got batch sizes {sorted(batch)}")
        sizes.append(batch.pop())
    if len(calls_args) == 1:
        return [network(*calls_args[0])]
    merged = [torch.cat([args[k] for args in calls_args]) for k in range(arity)]
    output = network(*merged)
    parts, start = [], 0
    for size in sizes:
        parts.append(_part(output, start, size))
        start += size
    return parts
