"""The training stream: an endless, reshuffled, shardable sequence of item keys.

The stream is the concatenation of per-epoch orders of the dataset: order_e is a permutation of
range(len) drawn from (seed, epoch) (or range(len) itself without shuffling). One training step
takes the next ``world_size * batch_size`` items of the stream; rank r gets the r-th slice of
``batch_size``. So within an epoch the ranks see disjoint items, every rank gets a batch at every
step, no item is dropped, and a batch may straddle two epochs (each key carries its own epoch).

The position in the stream (``StreamPosition``: epoch and items of that epoch already consumed by
all ranks together) is all the state there is; it does not depend on the rank, and a run resumed
from it with another batch size or world size continues the same stream of items.

Keys are (epoch, index) pairs, the keys ``datasets.Dataset`` takes: item augmentation is seeded by
them, so a batch is the same with any number of DataLoader workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from . import checks, seeding


@dataclass(frozen=True)
class StreamPosition:
    """Where the stream stands: `offset` items of epoch `epoch`'s order are consumed."""

    epoch: int = 0
    offset: int = 0


class StreamSampler:
    """Batches of (epoch, index) keys for one rank, endless, from a start position.

    Usable as a DataLoader ``batch_sampler``. ``batch(position)`` and ``advance(position)`` are
    the pure functions behind the iteration.
    """

    def __init__(
        self,
        length: int,
        batch_size: int,
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
        start: StreamPosition = StreamPosition(),
    ):
        owner = "StreamSampler"
        self.length = checks.integer(owner, "length (of the dataset)", length, 1)
        self.batch_size = checks.integer(owner, "batch_size", batch_size, 1)
        self.seed = checks.integer(owner, "seed", seed, 0)
        self.world_size = checks.integer(owner, "world_size", world_size, 1)
        self.rank = checks.integer(owner, "rank", rank, 0)
        if self.rank >= self.world_size:
            raise ValueError(
                f"StreamSampler: rank: expected in [0, world_size={self.world_size}), got {rank}"
            )
        self.shuffle = bool(shuffle)
        self.start = self.check_position(start)
        self._orders: dict[int, np.ndarray] = {}

    def check_position(self, position: StreamPosition) -> StreamPosition:
        if not isinstance(position, StreamPosition):
            raise TypeError(
                f"StreamSampler: position: expected a StreamPosition, got {type(position).__name__}"
            )
        epoch, offset = position.epoch, position.offset
        if not (isinstance(epoch, int) and epoch >= 0 and isinstance(offset, int)
                and 0 <= offset < self.length):
            raise ValueError(
                f"StreamSampler: position: expected epoch >= 0 and 0 <= offset < {self.length} "
                f"(the dataset length), got epoch={epoch!r}, offset={offset!r}"
            )
        return position

    @property
    def items_per_step(self) -> int:
        return self.batch_size * self.world_size

    def order(self, epoch: int) -> np.ndarray:
        """The order of the dataset's indices in `epoch` (int64, a permutation of range(len))."""
        order = self._orders.get(epoch)
        if order is None:
            if self.shuffle:
                order = seeding.permutation(self.length, self.seed, "stream", epoch)
            else:
                order = np.arange(self.length, dtype=np.int64)
            if len(self._orders) >= 4:
                self._orders.pop(min(self._orders))
            self._orders[epoch] = order
        return order

    def batch(self, position: StreamPosition) -> list[tuple[int, int]]:
        """This rank's keys for the step that starts at `position`."""
        first = position.offset + self.rank * self.batch_size
        keys = []
        for g in range(first, first + self.batch_size):
            epoch = position.epoch + g // self.length
            keys.append((epoch, int(self.order(epoch)[g % self.length])))
        return keys

    def advance(self, position: StreamPosition, steps: int = 1) -> StreamPosition:
        """The position after `steps` steps of all ranks."""
        total = position.offset + steps * self.items_per_step
        return StreamPosition(position.epoch + total // self.length, total % self.length)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        position = self.start
        while True:
            yield self.batch(position)
            position = self.advance(position)

    def __repr__(self) -> str:
        return (
            f"StreamSampler(length={self.length}, batch_size={self.batch_size}, seed={self.seed}, "
            f"rank={self.rank}, world_size={self.world_size}, shuffle={self.shuffle}, "
            f"start={self.start})"
        )
