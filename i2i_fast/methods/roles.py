"""Network roles: what a method declares once about its networks, and the views built from it.

A method names its networks (child modules, by attribute name) by the part each plays in
training:

- ``trained``: networks whose parameters an optimizer updates. Training calls them through
  ``method.nets.<name>``: the DistributedDataParallel wrapper when running on several processes
  (``RunContext.wrap``), so their gradients are averaged (RunContext's rule 1).
- ``critics``: networks that also run *frozen* inside another network's update (a discriminator
  in the generator loss, StarGAN v2's style encoder in its reference-guided generator step).
  ``method.critics.<name>`` is the network itself, not wrapped (its parameters get no gradient
  there, so DDP has nothing to average: rule 4), and ``method.frozen_critics()`` is the scope that
  freezes them.
- ``differentiated_twice``: trained networks whose input gradient is differentiated again (R1
  with create_graph). Compiled graphs are not twice differentiable, so ``compile_networks``
  leaves these eager: ``method.nets_twice.<name>`` is their eager training call, and
  ``method.nets.<name>`` / ``method.critics.<name>`` become compiled twins (the same parameters)
  for their other calls.
- ``averages``: {average: network}, moving-average copies (EMA) of trained networks; never
  wrapped, compiled or trained; updated by ``method.update_averages(step)``.

A network with several entry points (MUNIT's generator: encode, decode) subclasses
``nn.EntryPoints``: its view then routes ``method.nets.gen_a.encode(x)`` through ``forward``,
which is what DistributedDataParallel sees.

Methods that declare no roles keep working (the contract of i2i_fast.methods.Method without
them is unchanged); they get none of these views.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn


@dataclasses.dataclass(frozen=True)
class NetworkRoles:
    """The roles of a method's networks, by attribute name (see the module docstring)."""

    trained: tuple[str, ...]
    critics: tuple[str, ...] = ()
    differentiated_twice: tuple[str, ...] = ()
    averages: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def check(self, method: nn.Module) -> None:
        """Every name is a network of `method` and the roles fit together; else ValueError."""
        owner = getattr(method, "name", type(method).__name__)
        children = dict(method.named_children())
        named = [*self.trained, *self.critics, *self.differentiated_twice, *self.averages,
                 *self.averages.values()]
        for name in named:
            if not isinstance(children.get(name), nn.Module):
                raise ValueError(f"{owner}: network roles: {name!r} is not a network of the "
                                 f"method (its child modules: {sorted(children)})")
        if len(set(self.trained)) != len(self.trained):
            raise ValueError(f"{owner}: network roles: trained: a name appears twice in "
                             f"{self.trained}")
        for name in self.differentiated_twice:
            if name not in self.trained:
                raise ValueError(f"{owner}: network roles: differentiated_twice: {name!r} is not "
                                 f"a trained network")
        for average, network in self.averages.items():
            if network not in self.trained:
                raise ValueError(f"{owner}: network roles: averages: {average!r} averages "
                                 f"{network!r}, which is not a trained network")
            if average in self.trained:
                raise ValueError(f"{owner}: network roles: averages: {average!r} is also "
                                 f"trained")


class NetworkView:
    """How training calls one network: ``view(*args)`` is ``call(*args)``; with an
    ``nn.EntryPoints`` network, ``view.encode(*args)`` is ``call(*args, entry="encode")``."""

    __slots__ = ("call", "network")

    def __init__(self, call: Any, network: nn.Module) -> None:
        self.call = call
        self.network = network

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.call(*args, **kwargs)

    def __getattr__(self, entry: str) -> Any:
        network = object.__getattribute__(self, "network")
        if entry not in getattr(network, "entry_points", ()):
            raise AttributeError(f"{type(network).__name__} has no entry point {entry!r} (its "
                                 f"entry points: {getattr(network, 'entry_points', ())})")
        return functools.partial(object.__getattribute__(self, "call"), entry=entry)


class Views:
    """Named network views: ``views.generator`` or ``views["generator"]``."""

    def __init__(self, views: dict[str, NetworkView]) -> None:
        self._views = views

    def __getattr__(self, name: str) -> NetworkView:
        views = self.__dict__.get("_views", {})
        try:
            return views[name]
        except KeyError:
            raise AttributeError(f"no network {name!r} in this view (it has {sorted(views)})"
                                 ) from None

    def __getitem__(self, name: str) -> NetworkView:
        return getattr(self, name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._views)

    def set(self, name: str, view: NetworkView) -> None:
        self._views[name] = view


class TrainingViews:
    """The views of one method built from its roles and its RunContext (see the module doc):
    ``nets`` (training calls), ``critics`` (frozen calls), ``nets_twice`` (eager calls of the
    networks differentiated twice)."""

    def __init__(self, method: nn.Module, roles: NetworkRoles, context: Any) -> None:
        self.roles = roles
        self.networks = {name: getattr(method, name) for name in roles.trained}
        self.wrappers = {name: context.wrap(net) for name, net in self.networks.items()}
        self.nets = Views({name: NetworkView(wrapper, self.networks[name])
                           for name, wrapper in self.wrappers.items()})
        self.nets_twice = Views({name: NetworkView(self.wrappers[name], self.networks[name])
                                 for name in roles.differentiated_twice})
        self.critics = Views({name: NetworkView(getattr(method, name), getattr(method, name))
                              for name in roles.critics})
        self.critic_modules = [getattr(method, name) for name in roles.critics]
        self.average_pairs = [(getattr(method, network), getattr(method, average))
                              for average, network in roles.averages.items()]
        self.compiled = False

    def compile(self, **options: Any) -> None:
        """torch.compile the trained networks in place (names, state dicts and DDP wrappers stay),
        except those differentiated twice, which get compiled twins for their other calls."""
        twice = set(self.roles.differentiated_twice)
        for name, network in self.networks.items():
            if name in twice:
                self.nets.set(name, NetworkView(torch.compile(self.wrappers[name], **options),
                                                network))
                if name in self.roles.critics:
                    self.critics.set(name, NetworkView(torch.compile(network, **options),
                                                       network))
            else:
                network.compile(**options)
        self.compiled = True
