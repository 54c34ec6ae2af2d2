"""Packaging: everything is declared in pyproject.toml; this file only ships the kernel sources.

The C++/CUDA kernels are not compiled at install time. They are compiled by ninja on first use
against the torch that is actually imported, and cached under a hash of the sources, torch
version, compiler flags and CPU (see i2i_fast/extension.py and the README). A wheel or sdist
therefore carries csrc/ inside the package as i2i_fast/csrc; an editable install reads the
repository's csrc/ directly.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildPyWithKernelSources(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "i2i_fast" / "csrc"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(
            ROOT / "csrc",
            target,
            ignore=shutil.ignore_patterns("*.o", "*.so", "__pycache__"),
        )


setup(cmdclass={"build_py": BuildPyWithKernelSources})
