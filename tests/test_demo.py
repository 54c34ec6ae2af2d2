"""`i2i-fast demo` (the README's main job) end to end, shortened: trains MUNIT's demo config on
synthetic:shapes through the regular trainer, writes the grid and prints the speed line."""

from __future__ import annotations

import re

import torch
from PIL import Image

from i2i_fast import cli


def test_demo_trains_writes_the_grid_and_prints_the_speed(tmp_path, capsys):
    threads = torch.get_num_threads()
    try:
        status = cli.main(["demo", "--steps", "2", "--run-dir", str(tmp_path / "demo"),
                           "--n-inputs", "2", "--n-styles", "3", "--eval-inputs", "0",
                           "--speed-iterations", "1", "--threads", "1"])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert status == 0, out
    assert "trained 2 iterations" in out
    grid = tmp_path / "demo" / "demo_grid.png"
    assert grid.is_file()
    # 2 inputs per direction = 4 rows; each row: the input, a gap, 3 styles = 5 tiles of 64 px.
    width, height = Image.open(grid).size
    assert width > 5 * 64 and height > 4 * 64
    assert (tmp_path / "demo" / "checkpoints" / "step_000000002.pt").is_file()
    assert re.search(r"fused / reference: x\d+\.\d\d", out)
