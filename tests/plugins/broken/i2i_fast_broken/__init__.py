"""Fails at import time, as a plugin with a missing dependency would."""

import i2i_fast_dependency_that_is_not_installed  # noqa: F401
