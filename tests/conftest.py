import os
import sys

# Tests import their helpers as plain modules.
sys.path.insert(0, os.path.dirname(__file__))


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


# Without a GPU the Triton kernels are tested in the Triton interpreter (CPU tensors). Triton reads
# TRITON_INTERPRET when a kernel is defined, i.e. when a test module first imports i2i_fast.ops, so
# it is set here, before any test module is imported. An explicit setting is kept. The interpreter
# does not change which backend runs CPU tensors by default (the triton backend takes them only
# when forced).
if "TRITON_INTERPRET" not in os.environ and not _cuda_available():
    os.environ["TRITON_INTERPRET"] = "1"

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def metrics_cache(tmp_path_factory):
    """One disk cache of the trained metric networks (i2i_fast.metrics) for the whole session,
    so each (set, resolution) is trained once per test run."""
    return tmp_path_factory.mktemp("metrics_cache")


@pytest.fixture
def one_thread():
    """torch on one thread for the test (the tests that train or compare runs use it: faster on
    the 2-core CI machine, and the same numbers whatever the core count)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
