"""Matching an official state dict to one of our networks, and an official Adam state to ours.

A ``NetworkSource`` is one network's state dict from an official file with the network of the
method it belongs to (``target``, e.g. "gen_a" or "generator_ema") and how the official code names
that network's tensors (``names``: our key → official key, built from our module). ``mismatch``
compares the file with the network without touching any tensor, so the same check runs against
networks built on the meta device for other configurations (which of them would fit).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .errors import OfficialFormatError

Names = Callable[[nn.Module], dict[str, str]]
Droppable = Callable[[nn.Module], set[str]]
ADAM_STATE_KEYS = ("step", "exp_avg", "exp_avg_sq")
LISTED = 8  # names shown in a message before "and N more"


def same_names(network: nn.Module) -> dict[str, str]:
    """Official and our keys are the same (StarGAN v2, MUNIT's discriminators)."""
    return {key: key for key in network.state_dict()}


def nothing_droppable(network: nn.Module) -> set[str]:
    return set()


def listed(names: Sequence[str]) -> str:
    """['a', 'b', ...] with at most LISTED names, then 'and N more'."""
    shown = ", ".join(names[:LISTED])
    more = f", and {len(names) - LISTED} more" if len(names) > LISTED else ""
    return f"[{shown}{more}]"


@dataclasses.dataclass
class NetworkSource:
    """One official network state dict and the network of the method it goes to."""

    label: str  # where it comes from, for messages: "gen_00010000.pt['a']"
    state: Mapping[str, Any]  # official key -> tensor, in the file's order
    target: str  # our network: a submodule path of the method ("gen_a", "generator_ema")
    names: Names = same_names
    droppable: Droppable = nothing_droppable  # official keys accepted and dropped (unused)

    def official_to_ours(self, network: nn.Module) -> dict[str, str]:
        return {official: ours for ours, official in self.names(network).items()}

    def parameter_order(self, network: nn.Module) -> list[str]:
        """Our full parameter names in the order of the file's keys, which is the official
        network's ``parameters()`` order (a state dict walks the modules as parameters() does,
        each module's parameters before its buffers)."""
        ours = self.official_to_ours(network)
        params = {name for name, _ in network.named_parameters()}
        return [f"{self.target}.{ours[key]}" for key in self.state
                if key in ours and ours[key] in params]


@dataclasses.dataclass
class Mismatch:
    """How an official state dict differs from one of our networks (empty: it fits)."""

    missing: list[str]  # official names our network needs that the file lacks
    unexpected: list[str]  # keys of the file that have no place in our network
    shape: tuple[str, tuple[int, ...], tuple[int, ...]] | None  # first (key, file's, ours)

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.shape)

    def describe(self) -> str:
        parts = []
        if self.missing:
            parts.append(f"missing keys {listed(self.missing)}")
        if self.unexpected:
            parts.append(f"unexpected keys {listed(self.unexpected)}")
        if self.shape:
            key, got, expected = self.shape
            parts.append(f"{key} has shape {got}, expected {expected}")
        return "; ".join(parts)


def mismatch(source: NetworkSource, network: nn.Module) -> Mismatch:
    """Compare keys and shapes of `source` with `network` (which may live on the meta device)."""
    expected = {official: ours for ours, official in source.names(network).items()}
    shapes = {key: tuple(value.shape) for key, value in network.state_dict().items()}
    droppable = source.droppable(network)
    unexpected, shape = [], None
    for key, value in source.state.items():
        if key not in expected:
            if key not in droppable:
                unexpected.append(key)
            continue
        got = tuple(value.shape) if isinstance(value, torch.Tensor) else None
        if got is None:
            unexpected.append(f"{key} (a {type(value).__name__}, not a tensor)")
        elif shape is None and got != shapes[expected[key]]:
            shape = (key, got, shapes[expected[key]])
    missing = [official for official in expected if official not in source.state]
    return Mismatch(missing, unexpected, shape)


def our_tensors(source: NetworkSource, network: nn.Module) -> tuple[dict[str, torch.Tensor], int]:
    """({our full key: tensor}, number of keys dropped) for a source that fits `network`."""
    ours = source.official_to_ours(network)
    tensors = {f"{source.target}.{ours[key]}": value for key, value in source.state.items()
               if key in ours}
    return tensors, len(source.state) - len(tensors)


@dataclasses.dataclass
class OptimizerSource:
    """An official optimizer's state dict and our optimizer that takes it over.

    networks: the sources of the networks it optimises, in the official order of its parameters
    (MUNIT's gen optimizer: gen_a's then gen_b's)."""

    label: str
    state: Any
    optimizer: str  # our optimizer's name (Method.optimizers)
    networks: list[NetworkSource]


def adam_state(source: OptimizerSource, optimizer: torch.optim.Optimizer,
               parameter_names: dict[int, str], network_of: Callable[[str], nn.Module]
               ) -> tuple[dict, list[str]]:
    """(a state dict for ``optimizer.load_state_dict``, notes): the official per-parameter Adam
    state (step, exp_avg, exp_avg_sq) moved to our parameters by name; the param_groups (learning
    rate, betas, weight decay) stay ours, i.e. the config's.

    The official state dict names its parameters by position (indices, or ``id(p)`` before
    PyTorch 1.5); position i is the i-th official parameter, whose name comes from the order of
    the network files. parameter_names: id(parameter) → our full name, for every parameter.
    """
    official = source.state
    if not (isinstance(official, dict) and isinstance(official.get("state"), dict)
            and isinstance(official.get("param_groups"), list)
            and all(isinstance(g, dict) and isinstance(g.get("params"), list)
                    for g in official["param_groups"])):
        raise OfficialFormatError(f"{source.label}: expected an optimizer state dict ('state', "
                                  f"'param_groups' with 'params'), got "
                                  f"{type(official).__name__}")
    order = [name for net in source.networks for name in net.parameter_order(
        network_of(net.target))]
    positions = [p for group in official["param_groups"] for p in group["params"]]
    if len(positions) != len(order):
        raise OfficialFormatError(f"{source.label}: the optimizer holds {len(positions)} "
                                  f"parameters, the networks of its files have {len(order)}")
    ours = [parameter_names[id(p)] for group in optimizer.param_groups for p in group["params"]]
    if sorted(ours) != sorted(order):
        only_ours = sorted(set(ours) - set(order))
        only_theirs = sorted(set(order) - set(ours))
        raise OfficialFormatError(f"{source.label}: optimizer {source.optimizer!r} updates "
                                  f"{listed(only_ours)} here and {listed(only_theirs)} in the "
                                  f"official code")
    index = {name: i for i, name in enumerate(ours)}
    params = [p for group in optimizer.param_groups for p in group["params"]]
    state = {}
    for position, name in zip(positions, order):
        entry = official["state"].get(position)
        if entry is None:
            continue  # a parameter that never had a gradient (e.g. StarGAN v2's unused conv1x1)
        if not isinstance(entry, dict) or sorted(entry) != sorted(ADAM_STATE_KEYS):
            got = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
            raise OfficialFormatError(f"{source.label}: state of {name}: expected Adam's "
                                      f"{list(ADAM_STATE_KEYS)}, got {got}")
        shape = tuple(params[index[name]].shape)
        for key in ("exp_avg", "exp_avg_sq"):
            if not isinstance(entry[key], torch.Tensor) or tuple(entry[key].shape) != shape:
                got = (tuple(entry[key].shape) if isinstance(entry[key], torch.Tensor)
                       else type(entry[key]).__name__)
                raise OfficialFormatError(f"{source.label}: {key} of {name}: expected shape "
                                          f"{shape}, got {got}")
        state[index[name]] = dict(entry)
    groups = optimizer.state_dict()["param_groups"]
    return {"state": state, "param_groups": groups}, _hyperparameter_notes(source, groups)


def _hyperparameter_notes(source: OptimizerSource, groups: list[dict]) -> list[str]:
    notes = []
    theirs = source.state["param_groups"][0]
    for key in ("betas", "eps", "weight_decay"):
        if key in theirs and key in groups[0] and tuple(_flat(theirs[key])) != tuple(
                _flat(groups[0][key])):
            notes.append(f"{source.label}: the official run used {key} {theirs[key]}; the "
                         f"config's {groups[0][key]} is kept")
    return notes


def _flat(value: Any) -> list[float]:
    return [float(v) for v in value] if isinstance(value, (list, tuple)) else [float(value)]
