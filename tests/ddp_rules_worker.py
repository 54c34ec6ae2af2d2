"""Run by tests/test_train_ddp.py under torchrun (2 gloo processes): how DistributedDataParallel
behaves when a wrapped network is called several times before one backward (the rules in the
RunContext docstring). Writes OUT/rules_rank<R>.json:

- several_calls: an encoder called on x and on the decoder's output before one backward, wrapped
  as RunContext.wrap does: are the averaged gradients those of the whole batch in one process?
- bypass: the same through ``unwrap(net).encode``: are the gradients still the same on every rank?
- find_unused: several calls with find_unused_parameters=True where the last call does not reach
  every parameter: the error DDP raises.
"""

import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from i2i_fast.methods import RunContext, unwrap


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = torch.nn.Linear(4, 3)
        self.dec = torch.nn.Linear(3, 4)

    def forward(self, x, mode="encode"):
        return self.enc(x) if mode == "encode" else self.dec(x)

    def encode(self, x):
        return self.enc(x)


def loss_of(net, x, call):
    content = call(net, x, "encode")
    y = call(net, content, "decode")
    again = call(net, y, "encode")  # the same network again, before the backward
    return (y - x).abs().mean() + (again - content).abs().mean()


def grads(module):
    return [p.grad.clone() for p in module.parameters()]


def main(out: Path) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    x = torch.randn(2 * world, 4, generator=torch.Generator().manual_seed(0))
    mine = x[2 * rank:2 * rank + 2]
    torch.manual_seed(0)
    reference = Net()
    loss_of(reference, x, lambda n, v, mode: n(v, mode)).backward()  # one process, whole batch
    results = {}

    net = Net()
    net.load_state_dict(reference.state_dict())
    wrapped = RunContext(world_size=world, rank=rank).wrap(net)
    for _ in range(2):  # twice: DDP's first iteration is special (bucket rebuild)
        net.zero_grad()
        loss_of(wrapped, mine, lambda n, v, mode: n(v, mode)).backward()
    results["several_calls"] = all(torch.allclose(a, b, atol=1e-6)
                                   for a, b in zip(grads(net), grads(reference)))

    net = Net()
    net.load_state_dict(reference.state_dict())
    wrapped = RunContext(world_size=world, rank=rank).wrap(net)
    net.zero_grad()
    loss_of(wrapped, mine,
            lambda n, v, mode: unwrap(n).encode(v) if mode == "encode" else unwrap(n).dec(v)
            ).backward()
    gathered = [None] * world
    dist.all_gather_object(gathered, grads(net))
    results["bypass_same_on_every_rank"] = all(
        torch.equal(a, b) for a, b in zip(gathered[0], gathered[1]))

    net = Net()
    wrapped = DistributedDataParallel(net, find_unused_parameters=True)
    try:
        content = wrapped(mine, "encode")
        y = wrapped(mine[:, :3], "decode")  # the last call does not reach the encoder
        ((y - mine).abs().mean() + content.abs().mean()).backward()
        results["find_unused"] = "no error"
    except RuntimeError as error:
        results["find_unused"] = str(error).splitlines()[0]
    (out / f"rules_rank{rank}.json").write_text(json.dumps(results))
    sys.stdout.flush()
    # the failed reduction leaves DDP's reducer in a state whose destructor aborts the process:
    # the results are written, leave without running destructors
    os._exit(0)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
