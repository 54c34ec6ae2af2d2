"""`i2i-fast compare`, shortened: trains, evaluates, times and translates each chosen method,
writes the CSV, JSON, Markdown table and labelled picture, and skips what is done on re-run."""

from __future__ import annotations

import csv
import json

import torch
from PIL import Image

from i2i_fast import cli


def compare(tmp_path, metrics_cache, *extra):
    threads = torch.get_num_threads()
    try:
        return cli.main(["compare", "--methods", "munit", "--iterations", "2", "--eval-inputs",
                         "2", "--n-styles", "2", "--speed-iterations", "1", "--threads", "1",
                         "--run-dir", str(tmp_path / "cmp"), "--cache-dir",
                         str(metrics_cache), *extra])
    finally:
        torch.set_num_threads(threads)


def test_compare_writes_every_figure_and_resumes(tmp_path, metrics_cache, capsys):
    assert compare(tmp_path, metrics_cache) == 0
    out = capsys.readouterr().out
    root = tmp_path / "cmp"
    rows = list(csv.DictReader((root / "compare.csv").open()))
    assert [r["method"] for r in rows] == ["munit"]
    row = rows[0]
    assert (row["config"], row["data"], row["iterations"]) == ("demo", "synthetic:shapes", "2")
    for key in ("content_iou", "target_accuracy", "diversity_l1", "fused_ms", "reference_ms",
                "speedup"):
        assert float(row[key]) >= 0, key
    assert row["diversity_lpips"] == ""  # LPIPS unavailable without weights
    data = json.loads((root / "compare.json").read_text())
    assert data["results"][0]["row"]["method"] == "munit"
    table = (root / "compare.md").read_text()
    assert "| `munit` | demo, synthetic:shapes | 2 |" in table
    width, height = Image.open(root / "compare.png").size
    assert height > 3 * 64 and width > 3 * 64  # 3 inputs; the input and 2 styles, labelled
    assert (root / "munit" / "checkpoints" / "step_000000002.pt").is_file()
    assert "[munit] training demo" in out
    # a second run with the same settings skips the method and rewrites the summary
    assert compare(tmp_path, metrics_cache) == 0
    assert "[munit] done already" in capsys.readouterr().out


def test_compare_refuses_bad_arguments_in_one_line(tmp_path, metrics_cache, capsys):
    assert cli.main(["compare", "--methods", "nope", "--run-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("i2i-fast compare: error: --methods: unknown method 'nope'")
    assert len(err.strip().splitlines()) == 1
    assert cli.main(["compare", "--iterations", "0", "--run-dir", str(tmp_path)]) == 2
    assert "--iterations: expected an int >= 1, got 0" in capsys.readouterr().err
