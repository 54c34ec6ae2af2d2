"""Run by tests/test_drit.py under torchrun (2 gloo processes): DRIT tiny trained for 4
iterations (content-only and full ones) on each rank's own batches. Writes OUT/drit_rank<R>.pt
(parameters and losses) so that the test can check the replicas stayed identical: the G-alone
gradients, taken by autograd.grad, which DistributedDataParallel does not see, must be averaged
by the method itself."""

import sys
from pathlib import Path

import torch
import torch.distributed as dist

from i2i_fast.methods import RunContext, resolve_config
from i2i_fast.methods.drit import DRIT
from i2i_fast.testing import random_batch


def main(out: Path) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    config = resolve_config(DRIT, "tiny", {"d_iter": 2})
    torch.manual_seed(0)  # the same networks on every rank
    method = DRIT(config, RunContext(world_size=world, rank=rank))
    torch.manual_seed(100 + rank)  # each rank its own draws, as the trainer seeds them
    losses = []
    for step in range(4):
        batch = random_batch("unpaired", config, config.batch_size, seed=10 * rank + step)
        losses.append({k: float(v) for k, v in method.train_step(batch, step).items()})
    torch.save({"state": method.state_dict(), "losses": losses}, out / f"drit_rank{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
