"""Stand-in translators that bracket every metric: what "no translation", "perfect translation"
and "no content" score on a synthetic set.

They follow the part of the method contract that evaluation uses (``data_kind`` and
``translate(x, *, n_styles, reference, target_domain, generator)`` ->
(N, K, 3, H, W) in [-1, 1]), so ``evaluate`` runs them like any method and their rows give the
scale of the figures next to a trained model's:

- ``IdentityBaseline``: returns the input K times. Content kept, domain not changed, no
  diversity.
- ``OracleBaseline``: re-renders the input's own scene (looked up in the set by the exact image)
  in the target style, with K random style parameters (or the reference image's parameters):
  content kept, right domain, real diversity. With ``scene_offset`` != 0 it renders *another*
  scene of the set instead (right domain, diverse, content lost): the negative control of the
  content metric.
- ``RandomBaseline``: uniform noise. No content, no domain.

Two-domain data kinds translate A -> B with ``target_domain="b"`` (or None, the default) and
B -> A with ``target_domain="a"``; multi-domain ones take ``target_domain`` (an int label).
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from i2i_fast.data.synthetic import render

from .real_images import SetDomains, open_domains



def _check_input(owner: str, x: object) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{owner}.translate: x: expected a tensor (N, 3, H, W), got {shape}")
    return x


class Baseline(torch.nn.Module):
    """Common part: argument checks and the target domain of a call."""

    name = "baseline"

    def __init__(self, data_kind: str = "unpaired"):
        super().__init__()
        if data_kind not in ("unpaired", "multi_domain", "paired"):
            raise ValueError(
                f"{type(self).__name__}: data_kind: expected 'unpaired', 'multi_domain' or "
                f"'paired', got {data_kind!r}"
            )
        self.data_kind = data_kind

    def _target(self, target_domain: object) -> int:
        """The label of the target domain of a call."""
        if self.data_kind == "multi_domain":
            if isinstance(target_domain, bool) or not isinstance(target_domain, int):
                raise ValueError(
                    f"{self.name}.translate: target_domain: expected an int label for a "
                    f"multi-domain translator, got {target_domain!r}"
                )
            return target_domain
        if target_domain not in (None, "a", "b"):
            raise ValueError(
                f"{self.name}.translate: target_domain: expected 'a', 'b' or None (= 'b') for a "
                f"two-domain translator, got {target_domain!r}"
            )
        if target_domain == "a" and self.data_kind == "paired":
            raise ValueError(f"{self.name}.translate: target_domain: a paired translator maps "
                             "A -> B only")
        return 0 if target_domain == "a" else 1

    def _count(self, n_styles: int, reference: torch.Tensor | None, n: int) -> int:
        if reference is None:
            if isinstance(n_styles, bool) or not isinstance(n_styles, int) or n_styles < 1:
                raise ValueError(f"{self.name}.translate: n_styles: expected an int >= 1, "
                                 f"got {n_styles!r}")
            return n_styles
        if not isinstance(reference, torch.Tensor) or reference.dim() != 4 or reference.shape[0] != n:
            shape = tuple(reference.shape) if isinstance(reference, torch.Tensor) else reference
            raise ValueError(
                f"{self.name}.translate: reference: expected (N={n}, 3, H, W), one per input, "
                f"got {shape}"
            )
        return 1


class IdentityBaseline(Baseline):
    """The input, K times."""

    name = "identity"

    def translate(self, x: torch.Tensor, *, n_styles: int = 1,
                  reference: torch.Tensor | None = None, target_domain: object = None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
        x = _check_input(self.name, x)
        self._target(target_domain)
        k = self._count(n_styles, reference, x.shape[0])
        return x.unsqueeze(1).repeat(1, k, 1, 1, 1)


class RandomBaseline(Baseline):
    """Uniform noise in [-1, 1]."""

    name = "random"

    def translate(self, x: torch.Tensor, *, n_styles: int = 1,
                  reference: torch.Tensor | None = None, target_domain: object = None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
        x = _check_input(self.name, x)
        self._target(target_domain)
        k = self._count(n_styles, reference, x.shape[0])
        device = generator.device if generator is not None else x.device
        noise = torch.rand((x.shape[0], k, *x.shape[1:]), generator=generator, device=device)
        return (noise * 2 - 1).to(x.device)


def _digest(image: torch.Tensor) -> str:
    pixels = image.detach().to("cpu", torch.float32).contiguous().numpy()
    return hashlib.sha1(pixels.tobytes()).hexdigest()


class OracleBaseline(Baseline):
    """Re-renders each input's scene in the target style (see the module doc).

    spec, resolution, split, seed: the synthetic set the inputs come from (the evaluation's
    inputs and references are found in it by their exact pixels).
    """

    name = "oracle"

    def __init__(self, spec: str, resolution: int, data_kind: str = "unpaired",
                 split: str = "test", seed: int = 0, scene_offset: int = 0):
        super().__init__(data_kind)
        self.set: SetDomains = open_domains(spec, data_kind, split, resolution, seed)
        self.scene_offset = int(scene_offset)
        if self.scene_offset:
            self.name = "oracle-wrong-scene"
        self._found: dict[str, tuple[int, int]] = {}
        self._next = [0] * len(self.set.domains)

    def _locate(self, image: torch.Tensor, what: str) -> tuple[int, int]:
        """(domain label, index) of an image of the set, rendering the set in index order until
        it is found."""
        key = _digest(image)
        while key not in self._found:
            progressed = False
            for label, domain in enumerate(self.set.domains):
                i = self._next[label]
                if i < len(domain):
                    self._found.setdefault(_digest(domain.load(i)["image"]), (label, i))
                    self._next[label] = i + 1
                    progressed = True
            if not progressed:
                raise ValueError(
                    f"{self.name}.translate: {what}: an image that is not in {self.set.spec} split "
                    f"{self.set.split!r} at {self.set.resolution}x{self.set.resolution} "
                    f"(seed {self.set.seed}); the oracle only translates the set's own images"
                )
        return self._found[key]

    def translate(self, x: torch.Tensor, *, n_styles: int = 1,
                  reference: torch.Tensor | None = None, target_domain: object = None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
        x = _check_input(self.name, x)
        target = self._target(target_domain)
        if not 0 <= target < len(self.set.styles):
            raise ValueError(
                f"{self.name}.translate: target_domain: expected a label in "
                f"[0, {len(self.set.styles)}), got {target}"
            )
        k = self._count(n_styles, reference, x.shape[0])
        style = self.set.domains[target].style
        outputs = []
        for i in range(x.shape[0]):
            label, index = self._locate(x[i], "x")
            source = self.set.domains[label]
            scene = source.scene((index + self.scene_offset) % len(source))
            if reference is not None:
                ref_label, ref_index = self._locate(reference[i], "reference")
                if ref_label != target:
                    raise ValueError(
                        f"{self.name}.translate: reference: image {i} is from domain "
                        f"{self.set.styles[ref_label]!r}, the target is {self.set.styles[target]!r}"
                    )
                params = [self.set.domains[ref_label].style_params(ref_index)]
            else:
                seeds = torch.randint(2**62, (k,), generator=generator,
                                      device=generator.device if generator is not None else "cpu")
                params = [style.sample(np.random.default_rng(int(s))) for s in seeds.tolist()]
            outputs.append(torch.stack([render(scene, style, p, self.set.resolution)[0]
                                        for p in params]))
        return torch.stack(outputs).to(x.device)
