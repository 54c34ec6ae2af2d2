"""MoCo's contrastive loss over a queue of keys (He et al., CVPR 2020), as TUNIT uses it for its
guiding network's style head and for the generator's style term (tools/ops.py:
calc_contrastive_loss, queue_data, dequeue_data, initialize_queue).

Plain PyTorch: these are the reference definitions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def moco_loss(query: torch.Tensor, key: torch.Tensor, queue: torch.Tensor,
              temperature: float = 0.07) -> torch.Tensor:
    """Cross-entropy of [q·k, q·queue_0, ..., q·queue_{M-1}] / temperature with the positive
    (column 0) as the target, averaged over the batch.

    query, key: (N, D); queue: (M, D) negatives (M may be 0). The key is detached (no gradient
    reaches it, as in MoCo). TUNIT uses raw, unnormalised vectors and temperature 0.07.
    """
    if not (isinstance(query, torch.Tensor) and query.dim() == 2 and query.is_floating_point()):
        raise ValueError(f"moco_loss: query: expected a floating point tensor (N, D), got "
                         f"{_describe(query)}")
    if not isinstance(key, torch.Tensor) or key.shape != query.shape:
        raise ValueError(f"moco_loss: key: expected the shape of query {tuple(query.shape)}, got "
                         f"{_describe(key)}")
    if not isinstance(queue, torch.Tensor) or queue.dim() != 2 \
            or queue.shape[1] != query.shape[1]:
        raise ValueError(f"moco_loss: queue: expected a tensor (M, {query.shape[1]}), got "
                         f"{_describe(queue)}")
    if not temperature > 0:
        raise ValueError(f"moco_loss: temperature: expected a value > 0, got {temperature!r}")
    key = key.detach()
    positive = (query * key).sum(dim=1, keepdim=True)
    negative = query @ queue.t()
    logits = torch.cat([positive, negative], dim=1) / temperature
    target = torch.zeros(query.shape[0], dtype=torch.int64, device=query.device)
    return F.cross_entropy(logits, target)


def _describe(x: object) -> str:
    if isinstance(x, torch.Tensor):
        return f"{x.dtype} of shape {tuple(x.shape)}"
    return type(x).__name__


class KeyQueue(nn.Module):
    """The MoCo queue: the last ``size`` keys enqueued, oldest first, as module buffers (so it is
    saved and resumed with the method's state).

    ``keys()`` is the queue (length (M, dim), M <= size); ``enqueue(k)`` appends the rows of k and
    keeps the last ``size`` rows (the official queue_data + dequeue_data); ``clear()`` empties it.
    """

    def __init__(self, size: int, dim: int):
        super().__init__()
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"KeyQueue: size: expected an int >= 1, got {size!r}")
        self.size, self.dim = size, dim
        self.register_buffer("buffer", torch.zeros(size, dim))
        self.register_buffer("length", torch.zeros((), dtype=torch.int64))

    def __len__(self) -> int:
        return int(self.length)

    def keys(self) -> torch.Tensor:
        return self.buffer[:len(self)]

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        if keys.dim() != 2 or keys.shape[1] != self.dim:
            raise ValueError(f"KeyQueue.enqueue: keys: expected a tensor (N, {self.dim}), got "
                             f"{_describe(keys)}")
        kept = torch.cat([self.keys(), keys.detach().to(self.buffer.dtype)])[-self.size:]
        self.buffer[:kept.shape[0]] = kept
        self.length.fill_(kept.shape[0])

    def clear(self) -> None:
        self.length.zero_()

    def extra_repr(self) -> str:
        return f"size={self.size}, dim={self.dim}"
