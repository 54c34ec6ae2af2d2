"""What every official checkpoint format declares: its files, how to tell them apart, which of
our networks and optimizers their state dicts go to, and what is left to the method's own
initialisation."""

from __future__ import annotations

import abc
import dataclasses
import re
from pathlib import Path
from typing import Any, ClassVar

from ..methods.base import Method
from .state import NetworkSource, OptimizerSource


@dataclasses.dataclass
class OfficialFile:
    """One file given on the command line, read with torch.load(weights_only=True)."""

    path: Path
    data: dict
    kind: str  # one of the format's kinds

    @property
    def name(self) -> str:
        return self.path.name


@dataclasses.dataclass
class Sources:
    """Where each tensor of the files goes, and what the files hold that is not loaded."""

    networks: list[NetworkSource]
    optimizers: list[OptimizerSource]
    notes: list[str]


def is_optimizer_state(value: Any) -> bool:
    return isinstance(value, dict) and "state" in value and "param_groups" in value


def is_state_dict(value: Any) -> bool:
    """A network state dict: a dict of names (an optimizer state dict is not one)."""
    return isinstance(value, dict) and not is_optimizer_state(value) and all(
        isinstance(key, str) for key in value)


class OfficialFormat(abc.ABC):
    """The checkpoint files of one method's official implementation."""

    method: ClassVar[str]  # the registered method name
    repository: ClassVar[str]  # the official repository, e.g. "NVlabs/MUNIT"
    kinds: ClassVar[dict[str, str]]  # kind -> the file and what it holds, for messages
    step_pattern: ClassVar[re.Pattern]  # a file name whose group 1 is the iterations done

    @abc.abstractmethod
    def kind_of(self, name: str, data: dict) -> str | None:
        """The kind of a file (its name and what it holds), or None when it is none of this
        format's files."""

    @abc.abstractmethod
    def sources(self, files: dict[str, OfficialFile]) -> Sources:
        """The network and optimizer state dicts of the files (one file per kind), checked for
        the files and networks each needs; OfficialFormatError otherwise."""

    @abc.abstractmethod
    def complete(self, method: Method, sources: Sources) -> list[str]:
        """Fill what the files do not hold where it can be derived (e.g. an EMA copy) and say
        what is left as initialised; the networks of `sources` are already loaded."""

    def step_of(self, name: str) -> int | None:
        match = self.step_pattern.match(name)
        return int(match.group(1)) if match else None

    def describe_files(self) -> str:
        return "; ".join(self.kinds.values())
