"""MUNIT's official checkpoints (NVlabs/MUNIT, trainer.py ``save``/``resume``).

- ``gen_NNNNNNNN.pt``: ``{'a': gen_a.state_dict(), 'b': gen_b.state_dict()}``;
- ``dis_NNNNNNNN.pt``: the same for the discriminators;
- ``optimizer.pt``: ``{'gen': gen_opt.state_dict(), 'dis': dis_opt.state_dict()}`` (one Adam for
  both generators, one for both discriminators, as here).

NNNNNNNN is the number of iterations done. The released pretrained models are generator files.

Names. The discriminators' keys are ours. In the generators, the official code keeps the
residual blocks of the content encoder in one ``ResBlocks`` module (``enc_content.model.<k>``,
k = 1 + n_downsample) whose blocks hold their two conv blocks in ``model.0`` and ``model.1``;
here they are the encoder's modules k, k+1, ... with ``conv1`` and ``conv2``. The decoder's
``model.0`` is that ``ResBlocks`` module (``resblocks`` here) and its ``model.1...`` the
upsampling layers (``upsample.0...`` here). Everything below a conv block has the same names.

The official AdaIN layers (and the instance norms of models saved by PyTorch 0.3) carry
``running_mean``/``running_var`` buffers that their forward never uses: they are accepted and
dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from torch import nn

from ..methods.base import Method
from ..nn.norms import AdaptiveInstanceNorm, InstanceNorm
from ..nn.resblocks import ResBlock
from .errors import OfficialFormatError
from .formats import OfficialFile, OfficialFormat, Sources, is_optimizer_state, is_state_dict
from .state import NetworkSource, OptimizerSource, same_names

DOMAINS = ("a", "b")
GENERATOR_PARTS = ("enc_style.", "enc_content.", "dec.", "mlp.")
CONV_BLOCKS = {"conv1": "0", "conv2": "1"}  # a residual block's conv blocks: ours -> official
UNUSED_STATISTICS = ("running_mean", "running_var", "num_batches_tracked")


def official_generator_key(key: str, first_resblock: int) -> str:
    """The official name of a key (or module path) of our AdaINGen.

    first_resblock: the index of the first residual block in our ``enc_content.model``."""
    parts = key.split(".")
    if parts[:2] == ["enc_content", "model"] and len(parts) > 3 \
            and int(parts[2]) >= first_resblock:
        block = int(parts[2]) - first_resblock
        parts = ["enc_content", "model", str(first_resblock), "model", str(block), "model",
                 CONV_BLOCKS[parts[3]], *parts[4:]]
    elif parts[:2] == ["dec", "resblocks"] and len(parts) > 3:
        parts = ["dec", "model", "0", "model", parts[2], "model", CONV_BLOCKS[parts[3]],
                 *parts[4:]]
    elif parts[:2] == ["dec", "upsample"] and len(parts) > 2:
        parts = ["dec", "model", str(int(parts[2]) + 1), *parts[3:]]
    return ".".join(parts)


def _first_resblock(generator: nn.Module) -> int:
    blocks = [i for i, m in enumerate(generator.enc_content.model) if isinstance(m, ResBlock)]
    return blocks[0] if blocks else len(generator.enc_content.model)


def _generator_path(generator: nn.Module) -> Callable[[str], str]:
    first = _first_resblock(generator)
    return lambda key: official_generator_key(key, first)


def generator_names(generator: nn.Module) -> dict[str, str]:
    """Our key → the official key, for every key of one of our AdaINGen."""
    official = _generator_path(generator)
    return {key: official(key) for key in generator.state_dict()}


def _unused_statistics(official_path: Callable[[nn.Module], Callable[[str], str]]
                       ) -> Callable[[nn.Module], set[str]]:
    """The official buffers of norm layers that keep no statistics here (AdaIN, instance norm
    without affine: both normalise each image with its own statistics)."""

    def droppable(network: nn.Module) -> set[str]:
        path = official_path(network)
        keys = set()
        for name, module in network.named_modules():
            if isinstance(module, AdaptiveInstanceNorm) or (
                    isinstance(module, InstanceNorm) and module.weight is None):
                keys.update(f"{path(name)}.{buffer}" for buffer in UNUSED_STATISTICS)
        return keys

    return droppable


class MUNITFormat(OfficialFormat):
    method = "munit"
    repository = "NVlabs/MUNIT"
    kinds = {
        "gen": "gen_NNNNNNNN.pt = {'a': gen_a.state_dict(), 'b': gen_b.state_dict()}",
        "dis": "dis_NNNNNNNN.pt = {'a': dis_a.state_dict(), 'b': dis_b.state_dict()}",
        "optimizer": "optimizer.pt = {'gen': gen_opt.state_dict(), 'dis': dis_opt.state_dict()}",
    }
    step_pattern = re.compile(r"^(?:gen|dis)_(\d+)\.pt$")

    def kind_of(self, name: str, data: dict) -> str | None:
        if set(data) == set(DOMAINS) and all(is_state_dict(v) for v in data.values()):
            keys = [key for state in data.values() for key in state]
            if any(key.startswith(GENERATOR_PARTS) for key in keys):
                return "gen"
            if any(key.startswith("cnns.") for key in keys):
                return "dis"
        if set(data) == {"gen", "dis"} and all(is_optimizer_state(v) for v in data.values()):
            return "optimizer"
        return None

    def sources(self, files: dict[str, OfficialFile]) -> Sources:
        if "gen" not in files:
            raise OfficialFormatError(f"munit: a generator file is needed ({self.kinds['gen']}); "
                                      f"got {', '.join(f.name for f in files.values())}")
        if "optimizer" in files and "dis" not in files:
            raise OfficialFormatError(f"munit: {files['optimizer'].name} holds the optimizer "
                                      f"states of the generators and the discriminators: give "
                                      f"the discriminator file (dis_NNNNNNNN.pt) with it")
        networks = {}
        for kind, names, droppable_path in (
                ("gen", generator_names, _generator_path),
                ("dis", same_names, lambda network: (lambda key: key))):
            if kind not in files:
                continue
            file = files[kind]
            for domain in DOMAINS:
                networks[f"{kind}_{domain}"] = NetworkSource(
                    f"{file.name}['{domain}']", file.data[domain], f"{kind}_{domain}", names,
                    _unused_statistics(droppable_path))
        optimizers = []
        if "optimizer" in files:
            file = files["optimizer"]
            optimizers = [OptimizerSource(f"{file.name}['{kind}']", file.data[kind], kind,
                                          [networks[f"{kind}_{d}"] for d in DOMAINS])
                          for kind in ("gen", "dis")]
        return Sources(list(networks.values()), optimizers, [])

    def complete(self, method: Method, sources: Sources) -> list[str]:
        notes = []
        if not any(s.target.startswith("dis_") for s in sources.networks):
            notes.append("dis_a, dis_b: no discriminator file (dis_NNNNNNNN.pt) given: "
                         "initialised as in a new run (translate and eval do not use them; "
                         "train --resume starts them from there)")
        if not sources.optimizers:
            notes.append("optimizers gen, dis: no optimizer.pt given: fresh Adam states")
        return notes
