import os
import sys

# Tests import their helpers as plain modules.
sys.path.insert(0, os.path.dirname(__file__))

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def metrics_cache(tmp_path_factory):
    """One disk cache of the trained metric networks (i2i_fast.metrics) for the whole session,
    so each (set, resolution) is trained once per test run."""
    return tmp_path_factory.mktemp("metrics_cache")
