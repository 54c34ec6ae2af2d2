"""How the extension decides to build the CUDA kernels, and what a failed CUDA build does.

Fast: a fake toolkit (a shell script answering `nvcc --version`) stands in for nvcc, and the
build step itself is replaced where a test is about the decision around it.
"""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

import pytest
import torch

from i2i_fast import extension


def fake_toolkit(root: Path, release: str) -> Path:
    """A directory that looks like a CUDA toolkit whose nvcc reports `release`."""
    (root / "bin").mkdir(parents=True)
    (root / "include").mkdir()
    (root / "include" / "cuda_runtime.h").write_text("// fake\n")
    nvcc = root / "bin" / "nvcc"
    nvcc.write_text(f"#!/bin/sh\necho 'Cuda compilation tools, release {release}, V{release}.0'\n")
    nvcc.chmod(nvcc.stat().st_mode | stat.S_IXUSR)
    return root


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("CUDA_HOME", "CUDA_PATH", extension.BUILD_CUDA_ENV, extension.ARCH_LIST_ENV):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_no_cuda_build_without_gpu_unless_asked(clean_env):
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: the kernels are built for it")
    plan = extension.cuda_plan()
    assert not plan.wanted and not plan.build
    assert plan.reason == f"no CUDA device visible and {extension.BUILD_CUDA_ENV} is not 1"


def test_build_cuda_zero_disables(clean_env):
    clean_env.setenv(extension.BUILD_CUDA_ENV, "0")
    plan = extension.cuda_plan()
    assert not plan.wanted and not plan.build and plan.reason == "I2I_FAST_BUILD_CUDA=0"


def test_asked_for_with_a_matching_toolkit(clean_env, tmp_path):
    if torch.version.cuda is None:
        pytest.skip("CPU-only torch")
    home = fake_toolkit(tmp_path / "cuda", torch.version.cuda)
    clean_env.setenv("CUDA_HOME", str(home))
    clean_env.setenv(extension.BUILD_CUDA_ENV, "1")
    plan = extension.cuda_plan()
    assert plan.build and plan.toolkit == extension.CudaToolkit(str(home), torch.version.cuda)
    if not torch.cuda.is_available():
        assert plan.arch_list == extension.DEFAULT_CUDA_ARCH_LIST == "8.0;9.0"
    clean_env.setenv(extension.ARCH_LIST_ENV, "9.0")
    assert extension.cuda_plan().arch_list == "9.0"


def test_toolkit_of_another_major_version_is_refused(clean_env, tmp_path):
    if torch.version.cuda is None:
        pytest.skip("CPU-only torch")
    major = int(torch.version.cuda.split(".")[0])
    home = fake_toolkit(tmp_path / "cuda", f"{major - 1}.8")
    clean_env.setenv("CUDA_HOME", str(home))
    toolkit, why = extension.find_cuda_toolkit()
    assert toolkit is None
    assert f"nvcc {major - 1}.8, but torch was built with CUDA {torch.version.cuda}" in why


def test_explicit_cuda_home_is_not_bypassed(clean_env, tmp_path):
    clean_env.setenv("CUDA_HOME", str(tmp_path / "missing"))
    toolkit, why = extension.find_cuda_toolkit()
    assert toolkit is None
    assert why == f"no usable CUDA toolkit: {tmp_path / 'missing'} ($CUDA_HOME): no bin/nvcc"
    (tmp_path / "headerless" / "bin").mkdir(parents=True)
    nvcc = tmp_path / "headerless" / "bin" / "nvcc"
    nvcc.write_text("#!/bin/sh\n")
    nvcc.chmod(0o755)
    clean_env.setenv("CUDA_HOME", str(tmp_path / "headerless"))
    assert "no include/cuda_runtime.h" in extension.find_cuda_toolkit()[1]


def test_cache_key_separates_cpu_and_cuda_builds_and_architectures(tmp_path):
    root = extension.source_dir()
    toolkit = extension.CudaToolkit(str(tmp_path), "13.2")
    cpu = extension.CudaPlan(False, None, None, "no")
    a = extension.CudaPlan(True, toolkit, "8.0;9.0", "")
    b = extension.CudaPlan(True, toolkit, "9.0", "")
    c = extension.CudaPlan(True, extension.CudaToolkit(str(tmp_path), "13.0"), "9.0", "")
    keys = {extension.build_key(root, plan) for plan in (cpu, a, b, c)}
    assert len(keys) == 4
    assert extension.build_key(root, cpu) == extension.build_key(root)


def test_sources_include_cu_files_only_with_cuda():
    root = extension.source_dir()
    cpu = extension.kernel_sources(root)
    cuda = extension.kernel_sources(root, with_cuda=True)
    assert all(p.suffix == ".cpp" for p in cpu)
    assert root / "normalization" / "normalization_cuda.cu" in cuda
    assert set(cuda) - set(cpu) == {p for p in cuda if p.suffix == ".cu"}


@pytest.fixture
def fresh_state(monkeypatch):
    """Run extension.load() from scratch without touching this process's loaded state."""
    monkeypatch.setattr(extension, "_state", None)
    return monkeypatch


def _fail_cuda_then_build_cpu(calls):
    def fake_build_and_load(state, plan):
        calls.append(plan.build)
        if plan.build:
            raise RuntimeError("nvcc: error: normalization_cuda.cu(1): error: something broke")
        state.loaded = True
        state.cuda_built = False

    return fake_build_and_load


def test_failed_cuda_build_warns_and_falls_back_to_cpu_only(fresh_state, clean_env, tmp_path):
    if torch.version.cuda is None:
        pytest.skip("CPU-only torch")
    clean_env.setenv("CUDA_HOME", str(fake_toolkit(tmp_path / "cuda", torch.version.cuda)))
    clean_env.setenv(extension.BUILD_CUDA_ENV, "1")
    clean_env.delenv(extension.REQUIRE_ENV, raising=False)
    calls = []
    fresh_state.setattr(extension, "_build_and_load", _fail_cuda_then_build_cpu(calls))
    with pytest.warns(RuntimeWarning, match="the CUDA kernels failed to build"):
        st = extension.load()
    assert calls == [True, False]
    assert st.loaded and not st.cuda_built
    assert st.cuda_reason.startswith("the CUDA build failed: ")
    assert "something broke" in st.cuda_reason


def test_failed_cuda_build_is_an_error_when_required(fresh_state, clean_env, tmp_path):
    if torch.version.cuda is None:
        pytest.skip("CPU-only torch")
    clean_env.setenv("CUDA_HOME", str(fake_toolkit(tmp_path / "cuda", torch.version.cuda)))
    clean_env.setenv(extension.BUILD_CUDA_ENV, "1")
    clean_env.setenv(extension.REQUIRE_ENV, "1")
    calls = []
    fresh_state.setattr(extension, "_build_and_load", _fail_cuda_then_build_cpu(calls))
    with pytest.raises(extension.ExtensionBuildError, match="something broke"):
        extension.load()
    assert calls == [True]


def test_cuda_asked_for_without_toolkit(fresh_state, clean_env, tmp_path):
    clean_env.setenv("CUDA_HOME", str(tmp_path / "missing"))
    clean_env.setenv(extension.BUILD_CUDA_ENV, "1")
    clean_env.delenv(extension.REQUIRE_ENV, raising=False)
    calls = []
    fresh_state.setattr(extension, "_build_and_load", _fail_cuda_then_build_cpu(calls))
    with pytest.warns(RuntimeWarning, match="the CUDA kernels are NOT built"):
        st = extension.load()
    assert calls == [False] and st.loaded and not st.cuda_built
    assert "no bin/nvcc" in st.cuda_reason or "CPU-only" in st.cuda_reason
    fresh_state.setattr(extension, "_state", None)
    clean_env.setenv(extension.REQUIRE_ENV, "1")
    with pytest.raises(extension.ExtensionBuildError, match="CUDA kernels cannot be built"):
        extension.load()


def test_no_cuda_wanted_builds_cpu_only_silently(fresh_state, clean_env):
    clean_env.setenv(extension.BUILD_CUDA_ENV, "0")
    calls = []
    fresh_state.setattr(extension, "_build_and_load", _fail_cuda_then_build_cpu(calls))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        st = extension.load()
    assert calls == [False] and st.loaded and st.cuda_reason == "I2I_FAST_BUILD_CUDA=0"


def test_environment_is_restored_after_a_cuda_compile(monkeypatch, tmp_path):
    """_compile sets TORCH_CUDA_ARCH_LIST and cpp_extension.CUDA_HOME only for the build."""
    from torch.utils import cpp_extension

    seen = {}

    def fake_load(**kwargs):
        seen["archs"] = os.environ.get(extension.ARCH_LIST_ENV)
        seen["home"] = cpp_extension.CUDA_HOME
        seen["with_cuda"] = kwargs["with_cuda"]
        seen["nvcc_flags"] = kwargs.get("extra_cuda_cflags")

    monkeypatch.setattr(cpp_extension, "load", fake_load)
    monkeypatch.setenv(extension.ARCH_LIST_ENV, "7.5")
    before_home = cpp_extension.CUDA_HOME
    plan = extension.CudaPlan(True, extension.CudaToolkit(str(tmp_path), "13.2"), "9.0", "")
    extension._compile(extension.source_dir(), [], tmp_path, plan)
    assert seen == {"archs": "9.0", "home": str(tmp_path), "with_cuda": True,
                    "nvcc_flags": extension.NVCC_FLAGS}
    assert os.environ[extension.ARCH_LIST_ENV] == "7.5"
    assert cpp_extension.CUDA_HOME == before_home
