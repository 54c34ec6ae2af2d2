"""`i2i-fast demo` (the README's main job) end to end, shortened: trains MUNIT's demo config on
synthetic:shapes through the regular trainer, writes the grid and prints the speed line."""

from __future__ import annotations

import re

import numpy as np
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
    # 2 inputs per direction = 4 rows; each row: the input and 3 styles = 4 tiles of 64 px,
    # 2 px apart, below a band of column labels and right of a band of row labels
    picture = np.asarray(Image.open(grid).convert("RGB"))
    height, width = picture.shape[:2]
    left, top = width - (4 * 64 + 3 * 2), height - (4 * 64 + 3 * 2)
    assert 0 < left < 120 and 0 < top < 40
    assert (picture[:top, left:] < 128).any() and (picture[top:, :left] < 128).any()  # text
    for column in range(4):  # no blank column: every tile column holds images
        x = left + column * 66
        assert (picture[top:, x:x + 64] != 255).any(axis=2).mean() > 0.5, column
    assert (tmp_path / "demo" / "checkpoints" / "step_000000002.pt").is_file()
    assert re.search(r"fused / reference: x\d+\.\d\d", out)
