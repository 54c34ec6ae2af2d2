"""The training stream: epochs, sharding, resuming, DataLoader workers."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from i2i_fast.data import ResumableLoader, StreamPosition, StreamSampler, open_dataset


def take(iterable, n):
    return list(itertools.islice(iterable, n))


def same_batches(xs, ys) -> bool:
    return len(xs) == len(ys) and all(
        x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x) for x, y in zip(xs, ys)
    )


def test_each_epoch_is_a_fresh_permutation():
    s = StreamSampler(12, 4, seed=5)
    batches = take(s, 9)  # 3 epochs of 3 batches
    for e in range(3):
        keys = [k for b in batches[3 * e : 3 * e + 3] for k in b]
        assert {epoch for epoch, _ in keys} == {e}
        assert sorted(i for _, i in keys) == list(range(12))
    orders = [[i for b in batches[3 * e : 3 * e + 3] for _, i in b] for e in range(3)]
    assert orders[0] != orders[1] != orders[2]
    assert take(StreamSampler(12, 4, seed=5), 9) == batches
    assert take(StreamSampler(12, 4, seed=6), 3) != batches[:3]
    assert take(StreamSampler(12, 4, shuffle=False), 1) == [[(0, 0), (0, 1), (0, 2), (0, 3)]]


def test_batches_straddle_epochs_without_dropping_items():
    s = StreamSampler(5, 2, seed=0)
    keys = [k for b in take(s, 10) for k in b]  # 20 items = 4 epochs
    for e in range(4):
        assert keys[5 * e : 5 * e + 5] == [(e, int(i)) for i in s.order(e)]
    assert s.advance(StreamPosition(0, 4)) == StreamPosition(1, 1)
    assert s.advance(StreamPosition(0, 0), steps=7) == StreamPosition(2, 4)


@pytest.mark.parametrize("length, batch, world", [(24, 4, 3), (10, 3, 2), (7, 2, 4)])
def test_shards_are_disjoint_and_equal_in_number(length, batch, world):
    samplers = [StreamSampler(length, batch, seed=1, rank=r, world_size=world) for r in range(world)]
    streams = [take(s, 20) for s in samplers]
    for step in range(20):
        keys = [k for st in streams for k in st[step]]
        assert all(len(st[step]) == batch for st in streams)
        assert len(set(keys)) == len(keys)  # no item twice in a step (across ranks)
    # within an epoch the ranks see disjoint items, and together every item once
    everything = sorted(k for st in streams for b in st for k in b)
    epochs_complete = 20 * batch * world // length
    for e in range(epochs_complete):
        assert sorted(i for ep, i in everything if ep == e) == list(range(length))
    # and the ranks together follow the single-process stream with a world_size x larger batch
    single = take(StreamSampler(length, batch * world, seed=1), 20)
    assert [[k for st in streams for k in st[step]] for step in range(20)] == single


def synthetic(kind="unpaired", **kw):
    return open_dataset("synthetic:shapes", kind, resolution=16, size=13, **kw)


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_continues_the_same_batches(workers):
    ds = synthetic()
    straight = take(ResumableLoader(ds, 4, seed=3, num_workers=workers), 9)
    first = ResumableLoader(ds, 4, seed=3, num_workers=workers)
    head = take(first, 4)
    state = first.state_dict()
    assert state["epoch"] == 1 and state["offset"] == 3  # 16 items of 13
    assert all(type(v) in (int, bool) for v in state.values())
    second = ResumableLoader(ds, 4, seed=3, num_workers=workers)
    second.load_state_dict(state)
    tail = take(second, 5)
    assert same_batches(straight, head + tail)


def test_state_is_the_consumed_position_not_the_prefetched_one():
    ds = synthetic()
    loader = ResumableLoader(ds, 2, num_workers=2, prefetch_factor=4)
    take(loader, 3)  # the workers have fetched several batches ahead by now
    assert loader.position == StreamPosition(0, 6)
    assert loader.state_dict()["offset"] == 6


def test_workers_do_not_change_the_sequence(tmp_path: Path):
    for kind in ("unpaired", "reference"):
        ds = synthetic(kind)
        runs = [take(ResumableLoader(ds, 3, seed=1, num_workers=w), 6) for w in (0, 1, 2)]
        assert same_batches(runs[0], runs[1]) and same_batches(runs[0], runs[2])
    # folder data with random augmentation as well
    rng = np.random.default_rng(0)
    for side in "AB":
        (tmp_path / f"train{side}").mkdir()
        for i in range(5):
            pixels = rng.integers(0, 256, size=(20, 28, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / f"train{side}" / f"{i}.png")
    ds = open_dataset(tmp_path, "unpaired", resolution=16)
    runs = [take(ResumableLoader(ds, 2, num_workers=w), 8) for w in (0, 2)]
    assert same_batches(*runs)


@pytest.mark.parametrize("workers", [0, 1])
def test_the_loader_leaves_the_global_rng_alone(workers):
    # A resumed training run creates its DataLoader iterator at another point of the run than the
    # straight run did: that must not shift the random draws of training.
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    loader = ResumableLoader(synthetic(), 2, num_workers=workers)
    take(loader, 2)
    loader.load_state_dict(loader.state_dict())  # a new iterator on the next batch
    take(loader, 1)
    assert torch.equal(torch.rand(3), expected)


def test_collated_batches():
    batch = next(ResumableLoader(synthetic("multi_domain"), 5))
    assert batch["image"].shape == (5, 3, 16, 16) and batch["mask"].shape == (5, 1, 16, 16)
    assert batch["domain"].shape == (5,) and batch["domain"].dtype == torch.int64


def test_resume_with_another_world_size_continues_the_stream():
    ds = synthetic()
    straight = take(ResumableLoader(ds, 4, seed=2), 5)
    before = ResumableLoader(ds, 4, seed=2)
    take(before, 3)
    state = before.state_dict()
    halves = []
    for rank in range(2):
        loader = ResumableLoader(ds, 2, seed=2, rank=rank, world_size=2)
        loader.load_state_dict(state)
        halves.append(take(loader, 2))
    for step in range(2):
        joined = {k: torch.cat([halves[0][step][k], halves[1][step][k]]) for k in straight[0]}
        assert same_batches([joined], [straight[3 + step]])


def test_bad_arguments_and_states():
    ds = synthetic()
    with pytest.raises(ValueError, match=r"rank: expected in \[0, world_size=2\), got 2"):
        StreamSampler(10, 2, rank=2, world_size=2)
    with pytest.raises(ValueError, match=r"batch_size: expected an int >= 1, got 0"):
        StreamSampler(10, 0)
    with pytest.raises(ValueError, match=r"length \(of the dataset\): expected an int >= 1, got 0"):
        StreamSampler(0, 2)
    state = ResumableLoader(ds, 2, seed=1).state_dict()
    with pytest.raises(ValueError, match=r"seed: the saved stream has 1, this loader has 2; resuming "
                       r"would not continue the same data sequence"):
        ResumableLoader(ds, 2, seed=2).load_state_dict(state)
    other = open_dataset("synthetic:shapes", "unpaired", resolution=16, size=14)
    with pytest.raises(ValueError, match=r"dataset_length: the saved stream has 13, this loader has 14"):
        ResumableLoader(other, 2, seed=1).load_state_dict(state)
    with pytest.raises(ValueError, match=r"position: expected epoch >= 0 and 0 <= offset < 13 .* "
                       r"got epoch=0, offset=13"):
        ResumableLoader(ds, 2, seed=1).load_state_dict({**state, "offset": 13})
    with pytest.raises(ValueError, match=r"state: missing keys \['offset'\]"):
        ResumableLoader(ds, 2, seed=1).load_state_dict({k: v for k, v in state.items() if k != "offset"})
