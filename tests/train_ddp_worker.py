"""Run by tests/test_train_ddp.py under torchrun (2 gloo processes): two Trainer runs of the toy
method in one process group, then this rank's parameters and losses saved for the test.

    python -m torch.distributed.run --standalone --nproc_per_node 2 train_ddp_worker.py OUT

Run "straight": 4 steps, checkpoints at 2 and 4. Run "resumed": from the straight run's step-2
checkpoint, in another run folder, to step 4. Writes OUT/<run>_rank<R>.pt with the method's
state_dict and the losses of every step.
"""

import sys
from pathlib import Path

import torch
import torch.distributed as dist

from i2i_fast.train import TrainOptions, Trainer


def main(out: Path) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo")  # the trainers use this group (and leave it open)
    rank = dist.get_rank()
    common = dict(data="synthetic:shapes", device="cpu", workers=0, log_every=2, sample_every=2,
                  checkpoint_every=2, n_samples=2, progress=False, overrides=["max_iter=4"])
    runs = {
        "straight": TrainOptions("toygan", run_dir=str(out / "straight"), **common),
        "resumed": TrainOptions("toygan", run_dir=str(out / "resumed"),
                                resume=str(out / "straight" / "checkpoints" / "step_000000002.pt"),
                                **common),
    }
    for name, options in runs.items():
        # every rank draws differently before the run: only the restored state may count
        torch.manual_seed(100 + rank)
        losses = {}
        trainer = Trainer(options, on_step=lambda step, values: losses.__setitem__(step, values))
        trainer.run()
        state = {k: v.detach().clone() for k, v in trainer.method.state_dict().items()}
        torch.save({"state": state, "losses": losses}, out / f"{name}_rank{rank}.pt")
        dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
