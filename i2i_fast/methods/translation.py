"""The arguments of ``Method.translate``: their checks and the parsing of target domains.

Every method's ``translate(x, *, n_styles, reference, target_domain, generator, ...)`` is checked
here before it runs (``Method`` applies ``check_translate_arguments`` to every subclass's
translate, plugins included), so a bad argument is the same clear error for every method:

- x: a floating point tensor (N, C, H, W), N >= 1;
- n_styles: an int >= 1; 1 with a reference (a reference gives one style);
- reference: None or a floating point tensor (1 or N, C, H', W'): one image for every input or
  one per input, x's channel count;
- target_domain: see ``Domains``.

A method's domains (``Domains``): two-domain methods (data kinds "unpaired" and "paired") have
domains "a" (0) and "b" (1) and translate to "b" by default (A→B); multi-domain methods have
``config.num_domains`` domains, named by ``config.domain_names`` when it is set, and need a target;
methods trained without labels (data kind "unlabelled", TUNIT) have ``config.num_clusters``
clusters as their domains. With a reference image, a target may be left out (None): a method
that needs one with a reference says so itself.
A target is an index, a name, a string of an index ("2", from a command line), or an (N,) integer
tensor of one target per input.
"""

from __future__ import annotations

import numbers
from typing import Any

import torch

TWO_DOMAIN_KINDS = ("unpaired", "paired")


class Domains:
    """The domains a method translates between (see the module docstring)."""

    def __init__(self, owner: str, count: int | None, names: tuple[str, ...] = (),
                 default: int | None = None) -> None:
        self.owner = owner
        self.count = count
        self.names = tuple(names)
        self.default = default

    @classmethod
    def of(cls, method: Any) -> Domains:
        """The domains of a method instance, from its data kind and its config."""
        config = method.config
        if method.data_kind in TWO_DOMAIN_KINDS:
            return cls(method.name, 2, ("a", "b"), default=1)
        field = "num_clusters" if method.data_kind == "unlabelled" else "num_domains"
        count = getattr(config, field, None)
        count = count if isinstance(count, int) and not isinstance(count, bool) else None
        names = tuple(getattr(config, "domain_names", ()) or ())
        return cls(method.name, count, names)

    def _expected(self) -> str:
        index = f"an index in [0, {self.count})" if self.count is not None else "an index"
        if self.names:
            return f"{index} or one of {list(self.names)}"
        return index

    def index(self, domain: Any) -> int:
        """One target domain (an int, a name or an index as a string) → its index."""
        if isinstance(domain, torch.Tensor) and domain.dim() == 0:
            domain = domain.item()
        if isinstance(domain, str):
            if domain in self.names:
                return self.names.index(domain)
            if domain.lower() in self.names and self.names == ("a", "b"):
                return self.names.index(domain.lower())
            if domain.strip().isdigit():
                domain = int(domain)
            else:
                raise ValueError(f"{self.owner}: target_domain: expected {self._expected()}, "
                                 f"got {domain!r}")
        if isinstance(domain, numbers.Integral) and not isinstance(domain, bool):
            if int(domain) < 0 or (self.count is not None and int(domain) >= self.count):
                raise ValueError(f"{self.owner}: target_domain: expected {self._expected()}, "
                                 f"got {int(domain)}")
            return int(domain)
        raise TypeError(f"{self.owner}: target_domain: expected {self._expected()} or an (N,) "
                        f"integer tensor, got {type(domain).__name__}")

    def per_input(self, target_domain: Any, n: int, device: torch.device | str = "cpu"
                  ) -> torch.Tensor:
        """(N,) int64 target indices on `device` from one target or an (N,) integer tensor; None
        is the default target where the method has one."""
        if target_domain is None:
            if self.default is None:
                raise ValueError(f"{self.owner}: target_domain: expected the target domain "
                                 f"({self._expected()}), got None")
            target_domain = self.default
        if isinstance(target_domain, torch.Tensor) and target_domain.dim() > 0:
            if (target_domain.shape != (n,) or target_domain.is_floating_point()
                    or target_domain.is_complex() or target_domain.dtype == torch.bool):
                raise ValueError(f"{self.owner}: target_domain: expected an integer tensor of "
                                 f"shape ({n},), got {target_domain.dtype} "
                                 f"{tuple(target_domain.shape)}")
            if n and (int(target_domain.min()) < 0 or (
                    self.count is not None and int(target_domain.max()) >= self.count)):
                raise ValueError(f"{self.owner}: target_domain: expected indices in "
                                 f"[0, {self.count}), got values in [{int(target_domain.min())}, "
                                 f"{int(target_domain.max())}]")
            return target_domain.to(device=device, dtype=torch.int64)
        return torch.full((n,), self.index(target_domain), dtype=torch.int64, device=device)

    def single(self, target_domain: Any) -> int:
        """One target for the whole batch (two-domain methods choose a direction): its index."""
        if target_domain is None:
            if self.default is None:
                raise ValueError(f"{self.owner}: target_domain: expected the target domain "
                                 f"({self._expected()}), got None")
            return self.default
        if isinstance(target_domain, torch.Tensor) and target_domain.dim() > 0:
            values = target_domain.unique()
            if values.numel() != 1:
                raise ValueError(f"{self.owner}: target_domain: expected one target domain for "
                                 f"the whole batch, got {target_domain.tolist()}")
            target_domain = values[0]
        return self.index(target_domain)


def _check_images(owner: str, name: str, x: Any) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{owner}: {name}: expected a tensor (N, C, H, W), got "
                        f"{type(x).__name__}")
    if x.dim() != 4 or not x.is_floating_point():
        raise ValueError(f"{owner}: {name}: expected a floating point tensor (N, C, H, W), got "
                         f"{x.dtype} of shape {tuple(x.shape)}")


def check_translate_arguments(method: Any, x: Any, n_styles: Any, reference: Any,
                              target_domain: Any) -> None:
    """Raise a clear error (TypeError/ValueError naming the argument, the expected and the actual
    value) for a bad argument of ``method.translate``."""
    owner = f"{method.name}: translate"
    _check_images(owner, "x", x)
    if x.shape[0] < 1:
        raise ValueError(f"{owner}: x: expected at least one image, got shape {tuple(x.shape)}")
    if isinstance(n_styles, bool) or not isinstance(n_styles, numbers.Integral) or n_styles < 1:
        raise ValueError(f"{owner}: n_styles: expected an int >= 1, got {n_styles!r}")
    if reference is not None:
        _check_images(owner, "reference", reference)
        n = x.shape[0]
        if reference.shape[0] not in (1, n) or reference.shape[1] != x.shape[1]:
            raise ValueError(f"{owner}: reference: expected shape (1 or {n}, {x.shape[1]}, H, W), "
                             f"got {tuple(reference.shape)}")
        if n_styles != 1:
            raise ValueError(f"{owner}: n_styles: a reference gives one style, expected 1, got "
                             f"{n_styles}")
    if reference is None or target_domain is not None:
        Domains.of(method).per_input(target_domain, x.shape[0])
