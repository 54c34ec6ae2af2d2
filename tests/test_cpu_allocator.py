"""The caching CPU allocator (i2i_fast.cpu_allocator): reuse, the bound, correctness, threads,
fork, install/uninstall."""

from __future__ import annotations

import multiprocessing
import threading

import pytest
import torch

from i2i_fast import cpu_allocator
from i2i_fast.bench import allocation

MiB = 1 << 20


@pytest.fixture(autouse=True)
def restore():
    before = cpu_allocator.stats()
    yield
    if before.installed:
        cpu_allocator.install(before.max_cached_bytes, before.huge_pages)
    else:
        cpu_allocator.uninstall()


def large(mib: float) -> torch.Tensor:
    return torch.empty(int(mib * MiB) // 4, dtype=torch.float32)


def test_a_freed_large_block_is_served_again():
    cpu_allocator.install(64 * MiB)
    cpu_allocator.empty_cache()
    first = large(8)
    address = first.data_ptr()
    s0 = cpu_allocator.stats()
    assert s0.installed and s0.in_use_bytes >= 8 * MiB
    del first
    s1 = cpu_allocator.stats()
    assert s1.cached_bytes >= 8 * MiB and s1.in_use_bytes == s0.in_use_bytes - 8 * MiB
    second = large(7.5)  # rounds up to the same 8 MiB block
    assert second.data_ptr() == address
    assert cpu_allocator.stats().hits == s1.hits + 1
    small = torch.empty(1000)  # below 1 MiB: torch's allocator, not counted
    assert cpu_allocator.stats().in_use_bytes == s0.in_use_bytes - 8 * MiB + int(7.5 * MiB)
    del small, second


def test_the_idle_cache_is_bounded():
    cpu_allocator.install(8 * MiB)
    cpu_allocator.empty_cache()
    before = cpu_allocator.stats().evicted_bytes
    blocks = [large(4) for _ in range(4)]
    del blocks
    s = cpu_allocator.stats()
    assert s.cached_bytes <= 8 * MiB
    assert s.evicted_bytes - before >= 8 * MiB
    cpu_allocator.empty_cache()
    assert cpu_allocator.stats().cached_bytes == 0


def test_results_are_the_same_under_either_allocator():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 64, 64, 64, generator=g)
    w = torch.randn(32, 64, 3, 3, generator=g)
    with cpu_allocator.setting("default"):
        expected = torch.nn.functional.conv2d(x, w, padding=1).relu().sum(dim=1)
    with cpu_allocator.setting("caching"):
        for _ in range(3):  # reused blocks hold old data: results must not depend on it
            got = torch.nn.functional.conv2d(x, w, padding=1).relu().sum(dim=1)
            assert torch.equal(got, expected)
            del got


def test_tensors_outlive_an_uninstall():
    cpu_allocator.install(64 * MiB)
    kept = large(4).fill_(3.0)
    cpu_allocator.uninstall()
    assert not cpu_allocator.stats().installed
    assert float(kept.sum()) == 3.0 * kept.numel()
    del kept  # freed into the allocator that served it, which is still alive


def test_threads_allocate_and_free_concurrently():
    cpu_allocator.install(32 * MiB)
    errors = []

    def work(seed):
        try:
            for i in range(50):
                t = torch.full((int((1 + (seed + i) % 3) * MiB) // 4,), float(seed))
                assert float(t[-1]) == seed
                del t
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    s = cpu_allocator.stats()
    assert s.hits > 0 and s.cached_bytes <= 32 * MiB


def _child(queue):
    # (no parallel kernel: libgomp's thread pool is not usable after fork, whatever allocator)
    t = torch.empty(4 * MiB // 4)
    t[-1] = 7.0
    queue.put(float(t[-1]))


def test_a_forked_child_allocates():
    cpu_allocator.install(64 * MiB)
    keep = large(4)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(queue,))
    child.start()
    child.join(timeout=120)
    assert child.exitcode == 0
    assert queue.get(timeout=5) == 7.0
    del keep


def test_bad_arguments():
    with pytest.raises(ValueError, match="max_cached_bytes: expected an int >= 0, got -1"):
        cpu_allocator.install(-1)
    with pytest.raises(ValueError, match="name: expected one of"):
        with cpu_allocator.setting("jemalloc"):
            pass


def test_the_operator_benchmark_runs_every_provider_under_each_setting():
    from i2i_fast.bench import ops_bench

    case = ops_bench.Case("adain", (1, 2, 8, 8), "relu", "test")
    records = ops_bench.run([case], torch.float32, "cpu", [False], ["forward"],
                            ["eager", "fused"], repeats=2, log=lambda line: None,
                            allocators=("default", "caching"), after_churn=True)
    assert sorted({(r["allocator"], r["provider"]) for r in records}) == [
        ("caching", "eager"), ("caching", "fused"), ("default", "eager"), ("default", "fused")]
    # each setting measured fresh (round 0) before any churn, then after churn (round 1)
    assert sorted((r["round"], r["after_churn"]) for r in records) == \
        [(0, False)] * 4 + [(1, True)] * 4
    table = ops_bench.markdown_table(records)
    assert "| caching | adain |" in table and "| caching (fresh) | adain |" in table
    lines = allocation.check_stability(records, ops_bench.STABILITY_KEYS)
    assert len(lines) == 2 and all(" stable adain " in line for line in lines)
    assert "[allocator caching, after churn]" in "".join(lines)


def _timing(allocator, round_number, median, p20, p80):
    return {"op": "adain", "shape": "8x256x64x64", "provider": "fused", "allocator": allocator,
            "round": round_number, "after_churn": round_number > 0,
            "median_ms": median, "p20_ms": p20, "p80_ms": p80}


def test_the_after_churn_check_holds_the_fused_speed_to_the_fresh_one():
    keys = ("op", "shape")
    fresh = _timing("default", 0, 4.0, 3.9, 4.1)
    lines = allocation.check_stability(
        [fresh, _timing("default", 1, 4.6, 4.5, 4.7), _timing("default", 2, 5.0, 4.9, 5.1),
         _timing("default", 3, 4.2, 3.0, 4.5)], keys)
    assert [line.split()[0] for line in lines] == ["PASS", "FAIL", "FAIL"]
    assert "+15%" in lines[0] and "round 2" in lines[1] and "+25%" in lines[1]
    assert "p80/p20 1.50 (at most 1.3)" in lines[2]
    # a run made without --after-churn has nothing to judge
    assert allocation.check_stability([_timing("default", 1, 4.0, 3.9, 4.1) | {
        "after_churn": False}], keys) == []


def test_every_cpu_benchmark_measures_each_allocator_setting(capsys):
    from i2i_fast import cli
    from i2i_fast.bench import loss_bench, resampling_bench

    case = next(c for c in loss_bench.CASES if c.name == "munit_g")
    records = loss_bench.run([case], torch.float32, "cpu", ["forward"], ["eager", "fused"],
                             repeats=2, log=lambda line: None,
                             allocators=("default", "caching"))
    assert {r["allocator"] for r in records} == {"default", "caching"}
    assert "| caching | munit_g | forward | fused |" in loss_bench.markdown_table(records)
    records = resampling_bench.run(resampling_bench.CASES[:1], [False], ["forward"],
                                   ["eager", "fused"], 2, allocators=("default", "caching"))
    assert {r["allocator"] for r in records} == {"default", "caching"}
    threads = torch.get_num_threads()
    try:
        status = cli.main(["bench", "method", "munit", "--config", "tiny", "--providers",
                           "fused,eager_reference", "--iterations", "1", "--warmup", "0",
                           "--threads", "1", "--no-save"])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert status == 0
    assert "# allocator default" in out and "# allocator caching" in out
    assert out.count("fused               fp32") == 2


def test_the_training_commands_install_it_unless_told_not_to(tmp_path, monkeypatch, capsys):
    from i2i_fast import cli

    def train(run: str) -> int:
        return cli.main(["train", "munit", "--config", "tiny", "--data", "synthetic:shapes",
                         "--set", "max_iter=1", "--device", "cpu", "--workers", "0",
                         "--no-progress", "--run-dir", str(tmp_path / run)])

    threads = torch.get_num_threads()
    try:
        cpu_allocator.uninstall()
        assert train("default") == 0 and cpu_allocator.stats().installed
        cpu_allocator.uninstall()
        monkeypatch.setenv(cpu_allocator.ENV, "0")
        assert train("off") == 0 and not cpu_allocator.stats().installed
        monkeypatch.setenv(cpu_allocator.ENV, "lots")
        capsys.readouterr()
        assert train("bad") == 2
        assert capsys.readouterr().err.strip() == (
            "i2i-fast train: error: I2I_FAST_CPU_CACHE: expected 0 (off) or a bound in MiB, "
            "got 'lots'")
    finally:
        torch.set_num_threads(threads)
