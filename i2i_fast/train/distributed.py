"""One process of a run: its rank, world size and device, from torchrun's environment.

``torchrun --nproc_per_node G -m i2i_fast.cli train ...`` (or across nodes with ``--nnodes``)
starts G processes with ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT`` set. ``Distributed.from_environment`` starts the process group (NCCL on CUDA
devices, gloo on the CPU) and gives each process its device (``cuda:LOCAL_RANK``). Without those
variables the run is a single process and no process group is started.

Every process reads the checkpoint it resumes from and rank 0 writes the run folder: across
nodes, the run folder must be on a file system they share.

Only rank 0 writes files and logs; the collectives here (``gather``, ``broadcast``, ``mean``) are
how the other ranks contribute (their random generator states to a checkpoint, their losses to
the logged means) and learn what rank 0 decided (which checkpoint to resume).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import torch
import torch.distributed as torch_dist

from .errors import TrainError

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


def _environment_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise TrainError(f"environment variable {name}: expected an integer, got {text!r}") from None


def parse_device(device: str, local_rank: int, world_size: int) -> torch.device:
    """The device of this process for ``--device`` (auto: the local GPU if there is one)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise TrainError(f"--device {device}: CUDA is not available here "
                             f"(torch {torch.__version__}, torch.cuda.is_available() is False)")
        if device == "cuda":
            return torch.device("cuda", local_rank)
        if world_size > 1:
            raise TrainError(f"--device {device}: with several processes each one uses "
                             f"cuda:LOCAL_RANK; pass --device cuda (or auto)")
        try:
            chosen = torch.device(device)
        except RuntimeError:
            raise TrainError(f"--device: expected {DEVICE_CHOICES}, got {device!r}") from None
        if chosen.index is None or chosen.index >= torch.cuda.device_count():
            raise TrainError(f"--device {device}: expected an index below "
                             f"{torch.cuda.device_count()} (the number of CUDA devices)")
        return chosen
    raise TrainError(f"--device: expected {DEVICE_CHOICES}, got {device!r}")


@dataclasses.dataclass
class Distributed:
    """This process's place in the run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))
    owns_group: bool = False  # this object started the process group (and ends it in close())

    @classmethod
    def from_environment(cls, device: str = "auto") -> Distributed:
        """Read torchrun's variables; start the process group when there are several processes."""
        world_size = _environment_int("WORLD_SIZE", 1)
        rank = _environment_int("RANK", 0)
        local_rank = _environment_int("LOCAL_RANK", 0)
        chosen = parse_device(device, local_rank, world_size)
        if world_size <= 1:
            return cls(0, 1, 0, chosen, owns_group=False)
        if chosen.type == "cuda":
            torch.cuda.set_device(chosen)
        owns = not torch_dist.is_initialized()
        if owns:
            backend = "nccl" if chosen.type == "cuda" else "gloo"
            torch_dist.init_process_group(backend, init_method="env://", rank=rank,
                                          world_size=world_size)
        return cls(rank, world_size, local_rank, chosen, owns_group=owns)

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and logs."""
        return self.rank == 0

    @property
    def _collective_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")

    def gather(self, obj: Any) -> list[Any]:
        """[obj of rank 0, obj of rank 1, ...] on every rank (picklable objects)."""
        if self.world_size == 1:
            return [obj]
        gathered: list[Any] = [None] * self.world_size
        torch_dist.all_gather_object(gathered, obj)
        return gathered

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's obj, on every rank."""
        if self.world_size == 1:
            return obj
        box = [obj]
        torch_dist.broadcast_object_list(box, src=0)
        return box[0]

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """The mean over ranks of each value (every rank passes the same keys)."""
        if self.world_size == 1 or not values:
            return dict(values)
        names = sorted(values)
        tensor = torch.tensor([float(values[n]) for n in names], dtype=torch.float64,
                              device=self._collective_device)
        torch_dist.all_reduce(tensor)
        tensor /= self.world_size
        return dict(zip(names, tensor.tolist()))

    def close(self) -> None:
        """End the process group if this object started it."""
        if self.owns_group and torch_dist.is_initialized():
            torch_dist.destroy_process_group()
            self.owns_group = False
