"""Typed configurations: dataclasses, `--set a.b=c` overrides, YAML files, plain-dict round trips.

Every method's configuration is a dataclass (nested dataclasses for sub-networks) whose defaults
are the official configuration. Overrides are checked against the field types: an unknown key or
a value of the wrong type is an error naming the key, what was expected and what came.

Code references. A field that names code the method imports ("package.module:function", e.g.
StarGAN v2's ``hpf_masks``) is declared with ``code_reference()``. Such a value is taken only from
the command line (``--set``) or from the caller's Python code: a configuration file refuses it
(``load_yaml`` callers use ``check_no_code_references``) and a configuration stored in a checkpoint
is read without it (``without_code_references``), so opening a file never imports or calls code
that the file names.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration key or value is invalid."""


CODE_REFERENCE = "i2i_fast.code_reference"  # dataclass field metadata key


def code_reference(default: str = "") -> Any:
    """A Config field holding a code reference ("package.module:function") that the method
    imports: never read from a file or a checkpoint (see the module doc)."""
    return dataclasses.field(default=default, metadata={CODE_REFERENCE: True})


def code_reference_keys(cls: type, prefix: str = "") -> dict[str, Any]:
    """{dotted key: default} of the code-reference fields of dataclass `cls`, nested ones
    included."""
    keys: dict[str, Any] = {}
    hints = _field_types(cls)
    for field in dataclasses.fields(cls):
        if field.metadata.get(CODE_REFERENCE):
            keys[prefix + field.name] = field.default
        elif dataclasses.is_dataclass(hints[field.name]):
            keys.update(code_reference_keys(hints[field.name], f"{prefix}{field.name}."))
    return keys


def _lookup(data: dict, key: str) -> tuple[bool, Any]:
    node: Any = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def without_code_references(cls: type, data: dict) -> tuple[dict, dict[str, Any]]:
    """(a copy of the configuration dict `data` of dataclass `cls` with every code reference set
    back to its default, {dotted key: the value dropped} for those that held another value).

    For configurations read from a file the library did not get from the command line, e.g. a
    checkpoint's."""
    cleaned = copy.deepcopy(data)
    dropped: dict[str, Any] = {}
    for key, default in code_reference_keys(cls).items():
        present, value = _lookup(cleaned, key)
        if present and value != default:
            *parents, last = key.split(".")
            node = cleaned
            for part in parents:
                node = node[part]
            node[last] = default
            dropped[key] = value
    return cleaned, dropped


def check_no_code_references(cls: type, data: dict, where: str) -> None:
    """ConfigError when the configuration dict `data` read from `where` (a file) sets a code
    reference; the message says how to give it instead."""
    _, dropped = without_code_references(cls, data)
    if dropped:
        key, value = next(iter(dropped.items()))
        raise ConfigError(f"{where}: {key}: a code reference ({value!r}) is not read from a file "
                          f"(a file never names code for i2i_fast to import); give it on the "
                          f"command line, --set {key}={value}, or in Python")


def to_dict(config: Any) -> dict:
    """A dataclass (possibly nested) as plain dicts/lists/scalars (for YAML and checkpoints)."""
    return dataclasses.asdict(config)


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _convert(key: str, value: Any, annotation: Any) -> Any:
    """value (from YAML or a command line string) converted to the annotated type."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(key, value, arg)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(f"{key}: expected {annotation}, got {value!r}")
    if origin in (tuple, list):
        if isinstance(value, str):
            text = value.strip().strip("()[]")
            value = [v.strip() for v in text.split(",") if v.strip()] if text else []
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a sequence, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)}: {value!r}")
            return tuple(_convert(f"{key}[{i}]", v, a) for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        converted = [_convert(f"{key}[{i}]", v, item) for i, v in enumerate(value)]
        return tuple(converted) if origin is tuple else converted
    if origin is typing.Literal:
        for allowed in args:
            if value == allowed or (isinstance(value, str) and str(allowed) == value):
                return allowed
        raise ConfigError(f"{key}: expected one of {list(args)}, got {value!r}")
    if annotation is Any:
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{key}: expected a bool, got {value!r}")
    if annotation is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected an int, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected an int, got {value!r}")
    if annotation is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a float, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a float, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping of {annotation.__name__} fields, "
                              f"got {value!r}")
        return from_dict(annotation, value, prefix=f"{key}.")
    raise ConfigError(f"{key}: unsupported field type {annotation}")


def from_dict(cls: type, data: dict, prefix: str = "") -> Any:
    """Build dataclass `cls` from a (possibly partial) dict; missing fields keep their defaults."""
    hints = _field_types(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{prefix}{unknown[0]}: unknown key; {cls.__name__} has "
                          f"{', '.join(sorted(names))}")
    kwargs = {name: _convert(prefix + name, value, hints[name]) for name, value in data.items()}
    return cls(**kwargs)


def merge(config: Any, data: dict, prefix: str = "") -> Any:
    """A copy of `config` with the values of the nested dict `data` replaced."""
    hints = _field_types(type(config))
    names = {f.name for f in dataclasses.fields(config)}
    changes = {}
    for name, value in data.items():
        if name not in names:
            raise ConfigError(f"{prefix}{name}: unknown key; {type(config).__name__} has "
                              f"{', '.join(sorted(names))}")
        current = getattr(config, name)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            changes[name] = merge(current, value, prefix=f"{prefix}{name}.")
        else:
            changes[name] = _convert(prefix + name, value, hints[name])
    return dataclasses.replace(config, **changes)


def parse_overrides(items: list[str]) -> dict:
    """["gen.dim=32", "lr=1e-4"] → {"gen": {"dim": "32"}, "lr": "1e-4"} (values kept as text)."""
    nested: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set: expected KEY=VALUE (e.g. gen.dim=32), got {item!r}")
        parts = key.strip().split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set: {key} overrides a value that is set as a whole")
        node[parts[-1]] = yaml.safe_load(value) if value.strip() else value
    return nested


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data
