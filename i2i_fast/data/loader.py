"""ResumableLoader: the endless batch iterator of training, with its position in a checkpoint.

It wraps a ``torch.utils.data.DataLoader`` whose ``batch_sampler`` is a ``StreamSampler``
started at the current position. The position advances when a batch is *handed to the caller*,
not when the DataLoader prefetches it, so ``state_dict()`` is exact with any number of workers:
N steps straight give the same batches as k steps, ``state_dict()``, a new loader with
``load_state_dict()``, and N - k more steps.

Under DDP (``torchrun``) each rank builds its loader with the same dataset and seed; rank and
world size default to those of the initialised process group. The state is the same on every
rank (save it from rank 0).

The loader never draws from the global random generators (a DataLoader draws its workers' base
seed from torch's global generator unless it is given one): the random draws of a training run
are the same whether its loader was created at the start or on resume.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import DataLoader

from .sampling import StreamPosition, StreamSampler

STATE_VERSION = 1


def _distributed_rank_and_size() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class ResumableLoader:
    """Endless iterator of collated batches (dicts of tensors with a leading batch dim).

    Args:
        dataset: a map-style dataset taking (epoch, index) keys (``i2i_fast.data`` datasets).
        batch_size: items per batch on this rank.
        seed: seed of the per-epoch shuffling.
        rank, world_size: this process's shard; None: from torch.distributed (else 0 and 1).
        shuffle: reshuffle every epoch (False: index order, for debugging).
        num_workers, pin_memory, prefetch_factor, collate_fn, multiprocessing_context, timeout:
            passed to the DataLoader.
    """

    def __init__(
        self,
        dataset: torch.utils.data.Dataset,
        batch_size: int,
        *,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        shuffle: bool = True,
        num_workers: int = 0,
        pin_memory: bool = False,
        prefetch_factor: int | None = None,
        collate_fn: Callable | None = None,
        multiprocessing_context: Any = None,
        timeout: float = 0,
    ):
        default_rank, default_size = _distributed_rank_and_size()
        self.dataset = dataset
        self.sampler = StreamSampler(
            len(dataset), batch_size, seed=seed,
            rank=default_rank if rank is None else rank,
            world_size=default_size if world_size is None else world_size,
            shuffle=shuffle,
        )
        self._loader_args = dict(
            num_workers=num_workers, pin_memory=pin_memory, prefetch_factor=prefetch_factor,
            collate_fn=collate_fn, multiprocessing_context=multiprocessing_context,
            timeout=timeout,
        )
        self._position = StreamPosition()
        self._iterator = None

    @property
    def position(self) -> StreamPosition:
        """Position of the next batch to be returned."""
        return self._position

    @property
    def epoch(self) -> int:
        """Epoch of the first item of the next batch."""
        return self._position.epoch

    @property
    def steps_per_epoch(self) -> float:
        """Steps (of all ranks together) per pass over the dataset (a fraction if not exact)."""
        return self.sampler.length / self.sampler.items_per_step

    def __iter__(self) -> ResumableLoader:
        return self

    def __next__(self) -> Any:
        if self._iterator is None:
            self.sampler.start = self._position
            # A private generator for the workers' base seed (items are seeded by their keys, so
            # the seed does not change the data), keeping the global torch RNG untouched.
            generator = torch.Generator().manual_seed(self.sampler.seed)
            loader = DataLoader(self.dataset, batch_sampler=self.sampler, generator=generator,
                                **self._loader_args)
            self._iterator = iter(loader)
        batch = next(self._iterator)
        self._position = self.sampler.advance(self._position)
        return batch

    def state_dict(self) -> dict[str, int | bool]:
        """Plain ints and bools (fits a ``torch.load(weights_only=True)`` checkpoint)."""
        return {
            "version": STATE_VERSION,
            "epoch": self._position.epoch,
            "offset": self._position.offset,
            "seed": self.sampler.seed,
            "dataset_length": self.sampler.length,
            "shuffle": self.sampler.shuffle,
            "batch_size": self.sampler.batch_size,
            "world_size": self.sampler.world_size,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a saved position. The seed, dataset length and shuffling must match (a
        different dataset or seed would not continue the same stream); batch size and world size
        may differ (the stream of items continues where it stopped)."""
        if not isinstance(state, dict):
            raise TypeError(f"ResumableLoader.load_state_dict: state: expected a dict, got {type(state).__name__}")
        missing = [k for k in ("epoch", "offset", "seed", "dataset_length", "shuffle") if k not in state]
        if missing:
            raise ValueError(f"ResumableLoader.load_state_dict: state: missing keys {missing}")
        for key, mine in (
            ("seed", self.sampler.seed),
            ("dataset_length", self.sampler.length),
            ("shuffle", self.sampler.shuffle),
        ):
            if state[key] != mine:
                raise ValueError(
                    f"ResumableLoader.load_state_dict: {key}: the saved stream has {state[key]!r}, "
                    f"this loader has {mine!r}; resuming would not continue the same data sequence"
                )
        position = StreamPosition(int(state["epoch"]), int(state["offset"]))
        self._position = self.sampler.check_position(position)
        self.close()

    def close(self) -> None:
        """Stop the workers of the current iteration (a later ``next`` starts new ones)."""
        self._iterator = None

    def __repr__(self) -> str:
        return (
            f"ResumableLoader({type(self.dataset).__name__} of {self.sampler.length}, "
            f"batch_size={self.sampler.batch_size}, rank={self.sampler.rank}/"
            f"{self.sampler.world_size}, position={self._position})"
        )
