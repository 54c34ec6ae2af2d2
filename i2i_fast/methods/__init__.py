"""Methods (MUNIT, ...) and the registry through which built-ins and plugins are found.

Importing this package imports no method: each is imported when it is asked for.
"""

from .base import DATA_KINDS, PRECISIONS, Method, RunContext, unwrap
from .errors import MethodUsageError
from .registry import (
    DISABLE_ENV,
    GROUP,
    DuplicateMethodError,
    MethodError,
    MethodImportError,
    MethodInfo,
    UnknownMethodError,
    create_method,
    get_method_class,
    list_methods,
    method_names,
    resolve_config,
)

__all__ = [
    "DATA_KINDS",
    "DISABLE_ENV",
    "GROUP",
    "PRECISIONS",
    "DuplicateMethodError",
    "Method",
    "MethodError",
    "MethodImportError",
    "MethodInfo",
    "MethodUsageError",
    "RunContext",
    "UnknownMethodError",
    "create_method",
    "get_method_class",
    "list_methods",
    "method_names",
    "resolve_config",
    "unwrap",
]
