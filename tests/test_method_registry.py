"""The method registry: built-ins and real third-party plugin distributions (tests/plugins)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch

from i2i_fast.methods import registry

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = Path(__file__).resolve().parent / "plugins"


def run(code: str, *plugin_dirs: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run Python code with the given plugin distributions on sys.path (as if pip-installed)."""
    full_env = dict(os.environ)
    paths = [str(PLUGINS / d) for d in plugin_dirs]
    full_env["PYTHONPATH"] = os.pathsep.join(paths + [full_env.get("PYTHONPATH", "")])
    full_env.pop(registry.DISABLE_ENV, None)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True,
                          text=True, timeout=600, cwd=ROOT)


def builtin_names() -> list[str]:
    """The built-ins of this environment: the entry points of the installed i2i-fast (those of
    pyproject.toml once it is reinstalled), or SOURCE_TREE_BUILTINS for an uninstalled tree."""
    return sorted(i.name for i in registry.list_methods() if i.builtin)


def cli(*args: str, plugin_dirs: tuple[str, ...] = (), env: dict | None = None):
    return run("import sys; from i2i_fast.cli import main; sys.exit(main(sys.argv[1:]))"
               .replace("sys.argv[1:]", repr(list(args))), *plugin_dirs, env=env)


def test_builtins_are_entry_points_of_the_package():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"][
        registry.GROUP]
    assert declared == registry.SOURCE_TREE_BUILTINS
    infos = {i.name: i for i in registry.list_methods()}
    assert infos["munit"].builtin and infos["munit"].value == declared["munit"]


def test_listing_does_not_import_methods():
    result = run("import sys, i2i_fast.methods as m; infos = m.list_methods(); "
                 "print(sorted(i.name for i in infos)); "
                 "print('i2i_fast.methods.munit' in sys.modules, 'i2i_fast_toy' in sys.modules, "
                 "'i2i_fast.ops' in sys.modules)", "good")
    assert result.returncode == 0, result.stderr
    names, imported = result.stdout.strip().splitlines()
    assert {"munit", "stargan_v2"} <= set(builtin_names())
    assert names == str(sorted(builtin_names() + ["toy"]))
    assert imported == "False False False"


def test_a_plugin_is_listed_created_and_trained_for_a_step():
    code = """
import torch, i2i_fast.methods as m
info = {i.name: i for i in m.list_methods(check=True)}["toy"]
print(info.distribution, info.version, info.status, info.builtin)
method = m.create_method("toy", overrides=["dim=4"])
batch = {"a": torch.rand(2, 3, 16, 16) * 2 - 1, "b": torch.rand(2, 3, 16, 16) * 2 - 1}
before = [p.detach().clone() for p in method.parameters()]
torch.manual_seed(0)
losses = method.train_step(batch, 0)
changed = any(not torch.equal(b, p) for b, p in zip(before, method.parameters()))
print(sorted(losses), changed, method.config.dim, tuple(method.translate(batch["a"], n_styles=3).shape))
print(m.create_method("toy", config="wide").config.dim, m.create_method("toy", config="toy.wide").config.dim)
"""
    result = run(code, "good")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "i2i-fast-toy-plugin 0.1.0 ok False"
    assert lines[1] == "['d', 'g'] True 4 (2, 3, 3, 16, 16)"
    assert lines[2] == "16 16"


def test_broken_plugin_is_reported_and_never_hides_the_others():
    code = """
import i2i_fast, i2i_fast.methods as m
infos = {i.name: i for i in m.list_methods(check=True)}
print(infos["broken"].status, infos["broken"].distribution, infos["broken"].version)
print("i2i_fast_dependency_that_is_not_installed" in infos["broken"].error)
print(infos["toy"].status, infos["munit"].status)
try:
    m.create_method("broken")
except m.MethodImportError as e:
    print("raised:", str(e).split(" failed to import")[0], "| chained:", type(e.__cause__).__name__)
print(type(m.create_method("toy")).__name__)
"""
    result = run(code, "good", "broken")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "broken i2i-fast-broken-plugin 0.2.0"
    assert lines[1] == "True"
    assert lines[2] == "ok ok"
    assert lines[3] == ("raised: method 'broken' from i2i-fast-broken-plugin 0.2.0 "
                        "(i2i_fast_broken:BrokenMethod) | chained: ModuleNotFoundError")
    assert lines[4] == "ToyTranslator"


def test_a_plugin_declaring_a_builtin_name_never_disables_the_builtin(tmp_path):
    code = """
import warnings
import i2i_fast.methods as m
infos = [i for i in m.list_methods(check=True) if i.name == "munit"]
print([(i.reachable_as, i.status, i.builtin) for i in infos])
print(infos[0].clash == infos[1].clash, infos[0].clash)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    print(m.get_method_class("munit").__name__, m.create_method("munit", "demo").name)
    m.get_method_class("munit")
print(len(caught), caught[0].message)
print(m.get_method_class("i2i-fast-duplicate-plugin:munit").__name__,
      m.get_method_class("I2I_Fast_Duplicate_Plugin:munit").__name__,
      m.get_method_class("i2i-fast:munit").__name__)
print(m.method_names())
"""
    result = run(code, "duplicate")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == ("[('munit', 'ok', True), "
                        "('i2i-fast-duplicate-plugin:munit', 'ok', False)]")
    assert lines[1].startswith("True method name 'munit' is declared by 2 distributions: i2i-fast ")
    assert "as 'munit'; i2i-fast-duplicate-plugin 0.3.0 (i2i_fast_dup:OtherMUNIT) as " \
           "'i2i-fast-duplicate-plugin:munit'" in lines[1]
    assert lines[2] == "MUNIT munit"  # the built-in, under its own name
    assert lines[3].startswith("1 method name 'munit' is declared by 2 distributions")  # once
    assert lines[3].endswith("using 'munit'")
    assert lines[4] == "OtherMUNIT OtherMUNIT MUNIT"
    names = ast.literal_eval(lines[5])  # every built-in the checkout registers, plus the plugin's
    assert names == sorted(names) and names.count("munit") == 1
    assert "i2i-fast-duplicate-plugin:munit" in names and "stargan_v2" in names
    # the command line: the built-in trains, the clash is one warning line naming both sources
    out = tmp_path / "run"
    result = cli("train", "munit", "--config", "demo", "--data", "synthetic:shapes",
                 "--set", "image_size=16", "--set", "max_iter=1", "--set", "batch_size=1",
                 "--device", "cpu", "--workers", "0", "--no-progress", "--run-dir", str(out),
                 plugin_dirs=("duplicate",))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    warning = [line for line in result.stderr.splitlines() if "declared by 2" in line]
    assert len(warning) == 1 and warning[0].startswith("i2i-fast: warning: method name 'munit'")
    assert torch.load(out / "checkpoints" / "step_000000001.pt",
                      weights_only=True)["method"] == "munit"
    listing = cli("methods", plugin_dirs=("duplicate",)).stdout
    assert "i2i-fast-duplicate-plugin:munit" in listing and "declared by 2" in listing


def test_a_plugin_reached_by_its_qualified_name_keeps_it_in_checkpoints(tmp_path):
    out = tmp_path / "run"
    args = ("train", "i2i-fast-duplicate-plugin:munit", "--config", "demo", "--data",
            "synthetic:shapes", "--set", "image_size=16", "--set", "max_iter=1", "--set",
            "batch_size=1", "--device", "cpu", "--workers", "0", "--no-progress", "--run-dir",
            str(out))
    result = cli(*args, plugin_dirs=("duplicate",))
    assert result.returncode == 0, result.stderr
    path = out / "checkpoints" / "step_000000001.pt"
    assert torch.load(path, weights_only=True)["method"] == "i2i-fast-duplicate-plugin:munit"
    code = f"""
import warnings
warnings.simplefilter("ignore")
from i2i_fast.train import load_method
print(type(load_method({str(path)!r})).__name__)
"""
    result = run(code, "duplicate")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "OtherMUNIT"
    # resuming it under the built-in's name would mix two methods
    result = cli(*args[:1], "munit", *args[2:], "--resume", "auto", "--set", "max_iter=2",
                 plugin_dirs=("duplicate",))
    assert result.returncode == 2
    assert "trained method 'i2i-fast-duplicate-plugin:munit', not 'munit'" in result.stderr


def test_two_plugins_declaring_one_name_are_reached_by_qualified_names_only():
    code = """
import warnings
warnings.simplefilter("ignore")
import i2i_fast.methods as m
print(sorted(i.reachable_as for i in m.list_methods() if i.name == "toy"))
try:
    m.get_method_class("toy")
except m.DuplicateMethodError as e:
    print(e)
print(m.get_method_class("i2i-fast-clash-plugin:toy").__name__,
      m.get_method_class("i2i-fast-toy-plugin:toy").__name__)
"""
    result = run(code, "good", "clash")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "['i2i-fast-clash-plugin:toy', 'i2i-fast-toy-plugin:toy']"
    assert "method name 'toy' is declared by 2 distributions" in lines[1]
    assert "i2i-fast-toy-plugin 0.1.0 (i2i_fast_toy:ToyTranslator)" in lines[1]
    assert "i2i-fast-clash-plugin 0.4.0 (i2i_fast_clash:OtherToy)" in lines[1]
    assert "the plain name 'toy' reaches none of them" in lines[1]
    assert lines[2] == "OtherToy ToyTranslator"


def test_disable_plugins_lists_builtins_only():
    result = run("import i2i_fast.methods as m; print(sorted(i.name for i in m.list_methods()))",
                 "good", "broken", env={registry.DISABLE_ENV: "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(builtin_names())


def test_cli_methods_shows_sources_and_broken_plugins():
    result = cli("methods", plugin_dirs=("good", "broken"))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "munit" in out and "built-in" in out and "i2i-fast " in out
    assert "toy" in out and "i2i-fast-toy-plugin 0.1.0" in out
    broken_line = next(line for line in out.splitlines() if line.startswith("broken"))
    assert "broken" in broken_line.split()[1] and "i2i-fast-broken-plugin 0.2.0" in broken_line
    assert "ModuleNotFoundError" in out  # the traceback is shown


def test_unknown_method_lists_the_registered_ones():
    with pytest.raises(registry.UnknownMethodError, match=r"unknown method 'nope'; registered: .*munit"):
        registry.get_method_class("nope")


def test_config_resolution_errors_name_the_key():
    cls = registry.get_method_class("munit")
    with pytest.raises(Exception, match=r"gen.dimm: unknown key"):
        registry.resolve_config(cls, overrides=["gen.dimm=3"])
    with pytest.raises(Exception, match=r"gen.dim: expected an int, got 'wide'"):
        registry.resolve_config(cls, overrides=["gen.dim=wide"])
    with pytest.raises(registry.MethodError, match=r"'nope' is neither a named configuration of "
                                                  r"munit \(munit.edges2shoes"):
        registry.resolve_config(cls, "nope")
    assert registry.resolve_config(cls, "munit.summer2winter").recon_x_cyc_w == 10.0
