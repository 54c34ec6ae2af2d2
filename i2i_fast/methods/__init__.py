"""Methods (MUNIT, ...) and the registry through which built-ins and plugins are found.

Importing this package imports no method: each is imported when it is asked for.
"""

from .base import DATA_KINDS, PRECISIONS, Method, MethodConfig, RunContext, frozen, unwrap
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
from .roles import NetworkRoles

__all__ = [
    "DATA_KINDS",
    "DISABLE_ENV",
    "GROUP",
    "PRECISIONS",
    "DuplicateMethodError",
    "Method",
    "MethodConfig",
    "MethodError",
    "MethodImportError",
    "MethodInfo",
    "MethodUsageError",
    "NetworkRoles",
    "RunContext",
    "UnknownMethodError",
    "create_method",
    "frozen",
    "get_method_class",
    "list_methods",
    "method_names",
    "resolve_config",
    "unwrap",
]
