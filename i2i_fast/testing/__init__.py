"""Testing tools for method authors: the conformance check every method passes, and the seeded
short runs it is built from.

    from i2i_fast.testing import check_method
    check_method("my_method")   # raises MethodCheckError naming every failed check
"""

from .method_checks import CHECKS, CheckResult, MethodCheckError, check_method
from .runs import (
    FLOAT32_FIRST,
    FLOAT64,
    Tolerance,
    default_dtype,
    float32_tolerances,
    loss_differences,
    random_batch,
    run_steps,
    train_losses,
)

__all__ = ["CHECKS", "FLOAT32_FIRST", "FLOAT64", "CheckResult",
           "MethodCheckError", "Tolerance", "check_method", "default_dtype", "float32_tolerances",
           "loss_differences", "random_batch", "run_steps", "train_losses"]
