"""The method registry: entry points in the group ``i2i_fast.methods``, built-ins included.

A package adds a method by declaring, in its pyproject.toml,

    [project.entry-points."i2i_fast.methods"]
    my_method = "my_package.my_method:MyMethod"

exactly as i2i_fast declares its own. ``list_methods()`` reads that metadata without importing
anything (``i2i-fast methods --no-check`` prints it); ``list_methods(check=True)`` and
``i2i-fast methods`` also import every method to say whether it loads; ``create_method(name)``
imports the one method asked for. A plugin that fails to import is reported (distribution,
version, traceback) by ``list_methods(check=True)`` and by ``i2i-fast methods``, and raised,
chained, by ``create_method``; it never breaks ``import i2i_fast`` or the other methods.

Names. Every method is reachable as ``distribution:name`` (e.g. ``i2i-fast:munit``,
``my-package:my_method``; the distribution's name in any spelling pip accepts). The plain name
reaches it too, unless another distribution declares the same name: a built-in always keeps its
plain name (a plugin never disables or replaces it), and two plugins declaring one name share
none (the plain name is then an error naming both). A clash is reported, naming both sources, by
``list_methods`` (``MethodInfo.clash``), ``i2i-fast methods`` and, once, by a warning when a
clashing name is used. A run trained under a qualified name stores that name in its checkpoints.
``I2I_FAST_DISABLE_PLUGINS=1`` lists built-ins only.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib
import importlib.metadata as metadata
import os
import traceback
import warnings
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
    "bicyclegan": "i2i_fast.methods.bicyclegan:BicycleGAN",
    "drit": "i2i_fast.methods.drit:DRIT",
    "miso": "i2i_fast.methods.miso:MISO",
    "munit": "i2i_fast.methods.munit:MUNIT",
    "stargan_v2": "i2i_fast.methods.stargan_v2:StarGANv2",
    "tunit": "i2i_fast.methods.tunit:TUNIT",
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
    """One entry point of the group, as listed.

    name: the name it declares; reachable_as: the name that reaches it (``name`` or, after a
    clash, ``qualified_name``); clash: None, or the clash with another distribution's entry of
    the same name, naming both sources.
    """

    name: str
    value: str  # "module:attribute"
    distribution: str
    version: str
    builtin: bool
    status: str = "unchecked"  # unchecked | ok | broken
    error: str | None = None
    clash: str | None = None
    plain_name: bool = True  # whether the plain name reaches this entry

    @property
    def source(self) -> str:
        return f"{self.distribution} {self.version} ({self.value})"

    @property
    def qualified_name(self) -> str:
        """distribution:name (the distribution name normalised: lower case, '-')."""
        return f"{_normalize(self.distribution.split(' (')[0])}:{self.name}"

    @property
    def reachable_as(self) -> str:
        return self.name if self.plain_name else self.qualified_name


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
            # a built-in keeps its plain name; plugins sharing a name share no plain name
            builtin = next((i for i in same if i.builtin), None)
            for info in same:
                info.plain_name = info is builtin
            clash = (f"method name {name!r} is declared by {len(same)} distributions: "
                     + "; ".join(f"{i.source} as {i.reachable_as!r}" for i in
                                 sorted(same, key=lambda i: (not i.builtin, i.distribution))))
            for info in same:
                info.clash = clash
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
    infos = [i for i in _entry_infos() if pattern is None or fnmatch.fnmatch(i.name, pattern)
             or fnmatch.fnmatch(i.qualified_name, pattern)]
    if check:
        for info in infos:
            try:
                _load(info)
                info.status = "ok"
            except Exception:  # noqa: BLE001 - a broken plugin is reported, never raised here
                info.status = "broken"
                info.error = traceback.format_exc()
    return infos


def method_names() -> list[str]:
    """The names that reach the registered methods (``MethodInfo.reachable_as``)."""
    return sorted({i.reachable_as for i in _entry_infos()})


_warned_clashes: set[str] = set()


def find_method(name: str) -> MethodInfo:
    """The entry that `name` (plain or ``distribution:name``) reaches, without importing it.

    UnknownMethodError when none does; DuplicateMethodError for a plain name that several
    plugins declare (it names their qualified names). Using a plain name that clashes warns
    once per process, naming both sources.
    """
    infos = _entry_infos()
    if ":" in name:
        distribution, _, short = name.partition(":")
        found = [i for i in infos if i.name == short
                 and i.qualified_name == f"{_normalize(distribution)}:{short}"]
    else:
        same = [i for i in infos if i.name == name]
        found = [i for i in same if i.plain_name]
        if same and not found:
            raise DuplicateMethodError(f"{same[0].clash}; the plain name {name!r} reaches none "
                                       f"of them: ask for one by its qualified name")
    if not found:
        available = ", ".join(method_names()) or "none"
        raise UnknownMethodError(f"unknown method {name!r}; registered: {available}")
    info = found[0]
    if info.clash and info.reachable_as not in _warned_clashes:
        _warned_clashes.add(info.reachable_as)
        warnings.warn(f"{info.clash}; using {info.reachable_as!r}", stacklevel=3)
    return info


def get_method_class(name: str) -> type[Method]:
    """Import and return the class that `name` (plain or ``distribution:name``) reaches."""
    info = find_method(name)
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
    the method's named configurations (``cls.configs``), or a path to a YAML file (which may not
    set a code reference: see ``i2i_fast.config``).
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
                data = config_lib.load_yaml(text)
                config_lib.check_no_code_references(cls.Config, data, text)
                resolved = config_lib.merge(resolved, data)
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
