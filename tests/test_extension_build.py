"""The kernel build: fallback on failure, the strict mode, concurrent first use, cache keys."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from i2i_fast import extension

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str, env_extra: dict, timeout: float = 900) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("I2I_FAST_REQUIRE_EXT", None)
    env.pop("I2I_FAST_BACKEND", None)
    env.update(env_extra)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


FALLBACK_PROBE = """
import warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import torch, i2i_fast.ops as ops
    x = torch.randn(2, 3, 4, 4); w = torch.rand(2, 3); b = torch.randn(2, 3)
    y = ops.adain(x, w, b, activation="relu")
    y2 = ops.adain(x, w, b, activation="relu")
loud = [w for w in caught if "NOT available" in str(w.message)]
print("backend", ops.chosen_backend("adain", x))
print("warnings", len(loud))
print("matches_reference", bool(torch.equal(y, ops.reference.adain(x, w, b, activation="relu"))))
print("message", str(loud[0].message).replace(chr(10), " | ") if loud else "")
"""


def test_failed_build_warns_once_and_falls_back_to_the_reference(tmp_path):
    # A compiler that always fails: the build breaks the way a broken toolchain would.
    result = _run(FALLBACK_PROBE, {"I2I_FAST_CACHE_DIR": str(tmp_path), "CXX": "/bin/false"})
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.strip().splitlines())
    assert lines["backend"] == "reference"
    assert lines["warnings"] == "1"
    assert lines["matches_reference"] == "True"
    assert "falls back" in lines["message"] and "I2I_FAST_REQUIRE_EXT=1" in lines["message"]
    # Nothing half-built was published to the cache.
    assert not list(tmp_path.glob("build-*/*.so"))
    assert not list(tmp_path.glob(".tmp-build-*"))


def test_failed_build_is_an_error_when_the_extension_is_required(tmp_path):
    result = _run("import i2i_fast.ops", {"I2I_FAST_CACHE_DIR": str(tmp_path), "CXX": "/bin/false",
                                          "I2I_FAST_REQUIRE_EXT": "1"})
    assert result.returncode != 0
    assert "ExtensionBuildError" in result.stderr
    assert "I2I_FAST_REQUIRE_EXT=1 forbids the fallback" in result.stderr


def test_info_reports_the_failed_build(tmp_path):
    code = "from i2i_fast import info; print(info.report())"
    result = _run(code, {"I2I_FAST_CACHE_DIR": str(tmp_path), "CXX": "/bin/false"})
    assert result.returncode == 0, result.stderr
    assert "NOT available" in result.stdout
    assert "cpu        unavailable: the compiled extension failed to build or load" in result.stdout
    assert "reference  available" in result.stdout


@pytest.mark.slow
def test_concurrent_first_use_builds_once(tmp_path):
    """Three processes start at once on an empty cache (torchrun): one builds, all load."""
    code = ("from i2i_fast import extension; import i2i_fast.ops; st = extension.state(); "
            "print(st.loaded, st.built_now, st.library_path)")
    env = dict(os.environ, I2I_FAST_CACHE_DIR=str(tmp_path), I2I_FAST_REQUIRE_EXT="1")
    env.pop("I2I_FAST_BACKEND", None)
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT) for _ in range(3)]
    outputs = [p.communicate(timeout=1800) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err
    rows = [out.split() for out, _ in outputs]
    assert all(r[0] == "True" for r in rows)
    assert sorted(r[1] for r in rows) == ["False", "False", "True"]
    assert len({r[2] for r in rows}) == 1
    assert len(list(tmp_path.glob("build-*/*.so"))) == 1
    assert not list(tmp_path.glob(".tmp-build-*"))


def test_build_key_follows_sources_and_torch(tmp_path, monkeypatch):
    src = tmp_path / "csrc"
    shutil.copytree(extension.source_dir(), src)
    key = extension.build_key(src)
    assert extension.build_key(src) == key
    edited_file = src / "normalization" / "normalization_cpu.cpp"
    edited_file.write_text(edited_file.read_text() + "\n// edited\n")
    edited = extension.build_key(src)
    assert edited != key
    monkeypatch.setattr(extension.torch, "__version__", "0.0.0-other")
    assert extension.build_key(src) != edited


def test_kernel_sources_exclude_the_standalone_tools():
    sources = extension.kernel_sources(extension.source_dir())
    names = {p.relative_to(extension.source_dir()).as_posix() for p in sources}
    assert "library.cpp" in names and "normalization/normalization_cpu.cpp" in names
    assert not any(n.startswith("tools/") for n in names)


def test_kernel_sources_need_names_of_their_own(tmp_path):
    """The build compiles the sources where they are and names each object file after its
    source: two sources of the same name (csrc/a/cpu.cpp, csrc/b/cpu.cpp) are refused, naming
    both, before anything is compiled."""
    src = tmp_path / "csrc"
    shutil.copytree(extension.source_dir(), src)
    for family in ("normalization", "gan_loss"):
        (src / family / "cpu.cpp").write_text("// a second cpu.cpp\n")
    with pytest.raises(extension.ExtensionBuildError,
                       match=r"two kernel sources share the name 'cpu': "
                             r"gan_loss/cpu.cpp and normalization/cpu.cpp"):
        extension.kernel_sources(src)
    names = {p.name for p in extension.kernel_sources(extension.source_dir(), with_cuda=True)}
    stems = [n.rsplit(".", 1)[0] for n in names]
    assert len(stems) == len(set(stems))


@pytest.mark.slow
def test_wheel_ships_the_kernel_sources(tmp_path):
    """A non-editable install compiles from the copy of csrc/ inside the package."""
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                             str(tmp_path), str(ROOT)], capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("i2i_fast-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "i2i_fast/csrc/library.cpp" in names
    assert "i2i_fast/csrc/normalization/normalization_cpu.cpp" in names
    assert "i2i_fast/extension.py" in names
