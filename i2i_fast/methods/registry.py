"""The method registry: entry points in the group ``i2i_fast.methods``, built-ins included.

A package adds a method by declaring, in its pyproject.toml,

    [project.entry-points."i2i_fast.methods"]
    my_method = "my_package.my_method:MyMethod"

exactly as i2i_fast declares its own. ``list_methods()`` reads that metadata without importing
anything; ``create_method(name)`` imports the one method asked for. A plugin that fails to import
is reported (distribution, version, traceback) by ``list_methods(check=True)`` and by
``i2i-fast methods``, and raised, chained, by ``create_method``; it never breaks
``import i2i_fast`` or the other methods. Two entry points with the same name are an error naming
both sources, raised when that name is asked for and shown when listing.
``I2I_FAST_DISABLE_PLUGINS=1`` lists built-ins only.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib
import importlib.metadata as metadata
import os
import traceback
from pathlib import Path
from typing import Any

from .. import config as config_lib
from .base import Method, RunContext

GROUP = "i2i_fast.methods"
DISABLE_ENV = "I2I_FAST_DISABLE_PLUGINS"
DISTRIBUTION = "i2i-fast"

# Used only when i2i_fast runs from a source tree that was never installed (no metadata to read);
# tests/test_method_registry.py checks it equals the entry points declared in pyproject.toml.
SOURCE_TREE_BUILTINS = {
    "drit": "i2i_fast.methods.drit:DRIT",
    "munit": "i2i_fast.methods.munit:MUNIT",
    "stargan_v2": "i2i_fast.methods.stargan_v2:StarGANv2",
}


class MethodError(LookupError):
    """A method cannot be found, imported or configured."""


class UnknownMethodError(MethodError):
    pass


class DuplicateMethodError(MethodError):
    pass


class MethodImportError(MethodError):
    pass


@dataclasses.dataclass
class MethodInfo:
    """One entry point of the group, as listed."""

    name: str
    value: str  # "module:attribute"
    distribution: str
    version: str
    builtin: bool
    status: str = "unchecked"  # unchecked | ok | broken | duplicate
    error: str | None = None

    @property
    def source(self) -> str:
        return f"{self.distribution} {self.version} ({self.value})"


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _entry_infos() -> list[MethodInfo]:
    infos = []
    for ep in metadata.entry_points(group=GROUP):
        dist = getattr(ep, "dist", None)
        dist_name = dist.metadata["Name"] if dist is not None else "unknown distribution"
        version = dist.version if dist is not None else "?"
        infos.append(MethodInfo(ep.name, ep.value, dist_name, version,
                                builtin=_normalize(dist_name) == DISTRIBUTION))
    if not any(i.builtin for i in infos):
        from .. import __version__

        infos += [MethodInfo(name, value, f"{DISTRIBUTION} (source tree, not installed)",
                             __version__, builtin=True)
                  for name, value in SOURCE_TREE_BUILTINS.items()]
    if os.environ.get(DISABLE_ENV) == "1":
        infos = [i for i in infos if i.builtin]
    # The same distribution can be visible twice (e.g. an editable install and a source tree on
    # sys.path): identical declarations are one entry.
    unique: dict[tuple[str, str, str], MethodInfo] = {}
    for info in infos:
        unique.setdefault((info.name, _normalize(info.distribution), info.value), info)
    infos = list(unique.values())
    by_name: dict[str, list[MethodInfo]] = {}
    for info in infos:
        by_name.setdefault(info.name, []).append(info)
    for name, same in by_name.items():
        if len(same) > 1:
            sources = " and ".join(i.source for i in same)
            for info in same:
                info.status = "duplicate"
                info.error = f"method name {name!r} is declared twice: by {sources}"
    return sorted(infos, key=lambda i: (not i.builtin, i.name, i.distribution))


def _load(info: MethodInfo) -> type[Method]:
    module_name, _, attribute = info.value.partition(":")
    module = importlib.import_module(module_name)
    obj = module
    for part in attribute.split(".") if attribute else []:
        obj = getattr(obj, part)
    if not (isinstance(obj, type) and issubclass(obj, Method)):
        raise TypeError(f"{info.value} is {obj!r}, not a subclass of i2i_fast.methods.Method")
    if obj.name != info.name:
        raise TypeError(f"{info.value}.name is {obj.name!r} but it is registered as {info.name!r}")
    return obj


def list_methods(pattern: str | None = None, check: bool = False) -> list[MethodInfo]:
    """The registered methods (names matching the fnmatch `pattern`, e.g. "star*").

    Reads entry-point metadata only. With check=True, also imports each method and reports
    status "ok" or "broken" (with the traceback in `error`).
    """
    infos = [i for i in _entry_infos() if pattern is None or fnmatch.fnmatch(i.name, pattern)]
    if check:
        for info in infos:
            if info.status == "duplicate":
                continue
            try:
                _load(info)
                info.status = "ok"
            except Exception:  # noqa: BLE001 - a broken plugin is reported, never raised here
                info.status = "broken"
                info.error = traceback.format_exc()
    return infos


def method_names() -> list[str]:
    return sorted({i.name for i in _entry_infos()})


def get_method_class(name: str) -> type[Method]:
    """Import and return the class registered as `name`."""
    infos = [i for i in _entry_infos() if i.name == name]
    if not infos:
        available = ", ".join(method_names()) or "none"
        raise UnknownMethodError(f"unknown method {name!r}; registered: {available}")
    if len(infos) > 1:
        raise DuplicateMethodError(infos[0].error)
    info = infos[0]
    try:
        return _load(info)
    except Exception as error:
        raise MethodImportError(
            f"method {name!r} from {info.source} failed to import: "
            f"{type(error).__name__}: {error}") from error


def resolve_config(cls: type[Method], config: Any = None,
                   overrides: list[str] | dict | None = None) -> Any:
    """The method's Config: defaults, then `config`, then `overrides`.

    config: None (official defaults), a Config instance, a dict of overrides, the name of one of
    the method's named configurations (``cls.configs``), or a path to a YAML file.
    overrides: ["a.b=c", ...] (as given to --set) or a nested dict.
    """
    if isinstance(config, cls.Config):
        resolved = config
    else:
        resolved = cls.Config()
        if isinstance(config, dict):
            resolved = config_lib.merge(resolved, config)
        elif isinstance(config, (str, Path)):
            text = str(config)
            short = text.split(".", 1)[1] if text.startswith(cls.name + ".") else text
            if short in cls.configs:
                resolved = config_lib.merge(resolved, cls.configs[short])
            elif Path(text).is_file():
                resolved = config_lib.merge(resolved, config_lib.load_yaml(text))
            else:
                names = ", ".join(f"{cls.name}.{n}" for n in cls.configs) or "none"
                raise MethodError(f"config: {text!r} is neither a named configuration of "
                                  f"{cls.name} ({names}) nor a YAML file")
        elif config is not None:
            raise TypeError(f"config: expected None, a dict, a name, a path or "
                            f"{cls.Config.__name__}, got {type(config).__name__}")
    if overrides:
        if isinstance(overrides, dict):
            resolved = config_lib.merge(resolved, overrides)
        else:
            resolved = config_lib.merge(resolved, config_lib.parse_overrides(list(overrides)))
    return resolved


def create_method(name: str, config: Any = None, overrides: list[str] | dict | None = None,
                  context: RunContext | None = None) -> Method:
    """Import the method `name` and build it with its resolved configuration."""
    cls = get_method_class(name)
    return cls(resolve_config(cls, config, overrides), context)
