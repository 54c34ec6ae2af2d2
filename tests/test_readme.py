"""The README opens with the two commands that work on a fresh machine; CI runs the second."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return [block.strip() for block in re.findall(r"```\n(.*?)```", text, flags=re.S)][:2]


def test_readme_starts_with_a_main_job_and_a_test_command():
    main_job, tests = readme_commands()
    assert main_job.startswith("python3 -m venv .venv && .venv/bin/pip install -e .")
    assert ".venv/bin/i2i-fast" in main_job
    assert tests.startswith('python3 -m venv .venv && .venv/bin/pip install -e ".[test]"')
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command_with_the_extension_required():
    _, tests = readme_commands()
    ci = (ROOT / ".ci" / "run").read_text()
    assert tests in ci.splitlines()
    assert "export I2I_FAST_REQUIRE_EXT=1" in ci


def test_writing_a_method_shows_the_tested_plugin_verbatim():
    """The README's complete example is the plugin the registry tests install, list, create and
    train (tests/test_method_registry.py), so the example cannot go stale."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Writing a method", 1)[1]
    example = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    plugin = ROOT / "tests" / "plugins" / "good" / "i2i_fast_toy" / "__init__.py"
    assert example.strip() == plugin.read_text().strip()
    entry_points = (plugin.parents[1] / "i2i_fast_toy_plugin-0.1.0.dist-info"
                    / "entry_points.txt").read_text()
    assert "toy = i2i_fast_toy:ToyTranslator" in entry_points
    assert 'toy = "i2i_fast_toy:ToyTranslator"' in section


def test_the_run_folder_is_described_as_the_trainer_writes_it():
    from i2i_fast.train.run_dir import RunDir

    text = (ROOT / "README.md").read_text()
    bullet = text.split("- **Run folder**", 1)[1].split("\n- **", 1)[0]
    run = RunDir("run")
    written = {run.checkpoint_dir.name, run.sample_dir.name, run.tensorboard_dir.name}
    assert f"`{run.config_path.name}`" in bullet
    contents = bullet.split(f"`{run.config_path.name}`", 1)[1]  # after the --run-dir default
    named = set(re.findall(r"`([A-Za-z_]+)/", contents))
    assert named == written, bullet


def test_the_readme_says_which_listing_imports_the_methods():
    text = " ".join((ROOT / "README.md").read_text().split())
    assert "`list_methods()` reads entry-point metadata only and imports nothing" in text
    assert "`i2i-fast methods` (like `list_methods(check=True)`) also imports every method" in text
