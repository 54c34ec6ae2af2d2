"""The global random generators of a process: seeding, and their state in a checkpoint.

A run draws random numbers from torch's CPU generator, the generator of its CUDA device, numpy's
global generator and Python's ``random``. ``capture`` returns their states as tensors, ints and
floats only, so that a checkpoint holding them loads with ``torch.load(weights_only=True)``;
``restore`` puts them back, and the resumed run draws exactly what the uninterrupted one would.
"""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_all(seed: int) -> None:
    """Seed torch (CPU and every CUDA device), numpy's global generator and ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def process_seed(seed: int, rank: int, step: int = 0) -> int:
    """The seed of the training draws of process `rank` from `step` on (distinct per rank)."""
    words = np.random.SeedSequence([seed, rank, step]).generate_state(1, np.uint64)
    return int(words[0] >> 1)  # < 2**63: a valid torch seed


def capture(device: torch.device) -> dict:
    """This process's generator states (torch CPU, the CUDA device of `device`, numpy, random)."""
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    version, python_state, gauss_next = random.getstate()
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return {
        "torch": torch.get_rng_state(),
        "cuda": cuda,
        "numpy": {
            "name": str(name),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "python": {
            "version": int(version),
            "state": torch.tensor(python_state, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
    }


def restore(state: dict, device: torch.device) -> None:
    """Set this process's generators to a state from ``capture``."""
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["position"],
                         n["has_gauss"], n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss_next"]))
