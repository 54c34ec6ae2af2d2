"""StarGAN v2's official checkpoints (clovaai/stargan-v2, core/checkpoint.py and core/solver.py).

Each file is a dict from network name to that network's state dict, saved without the
DataParallel ``module.`` level; NNNNNN is the number of iterations done:

- ``NNNNNN_nets_ema.ckpt``: ``generator``, ``mapping_network``, ``style_encoder`` (the moving
  averages), and ``fan`` with w_hpf > 0 (CelebA-HQ). The released pretrained models are these.
- ``NNNNNN_nets.ckpt``: the trained ``generator``, ``mapping_network``, ``style_encoder``,
  ``discriminator`` (and ``fan``).
- ``NNNNNN_optims.ckpt``: one Adam state dict per trained network (no ``fan``).

Our networks have the official keys (the high-pass filter included: ``generator.hpf.filter``).
FAN, the face-landmark network that makes the high-pass masks in the official code, is not part
of i2i_fast and is not loaded.
"""

from __future__ import annotations

import re

from ..methods.base import Method
from .errors import OfficialFormatError
from .formats import OfficialFile, OfficialFormat, Sources, is_optimizer_state, is_state_dict
from .state import NetworkSource, OptimizerSource, listed

TRAINED = ("generator", "mapping_network", "style_encoder", "discriminator")
AVERAGED = ("generator", "mapping_network", "style_encoder")  # have EMA copies
LANDMARKS = "fan"
FAN_NOTE = ("{file}: 'fan' ({n} tensors: FAN, the face-landmark network the official code runs to "
            "make the masks of the high-pass skips) is not loaded, i2i_fast does not include it: "
            "with w_hpf > 0 translation and training need those masks from a function of yours "
            "(config hpf_masks = 'package.module:function', or method.mask_fn; see the README's "
            "StarGAN v2 notes)")


class StarGANv2Format(OfficialFormat):
    method = "stargan_v2"
    repository = "clovaai/stargan-v2"
    kinds = {
        "nets_ema": "NNNNNN_nets_ema.ckpt = {generator, mapping_network, style_encoder[, fan]} "
                    "(the moving averages; the released pretrained models)",
        "nets": "NNNNNN_nets.ckpt = {generator, mapping_network, style_encoder, discriminator"
                "[, fan]}",
        "optims": "NNNNNN_optims.ckpt = one Adam state dict per network of NNNNNN_nets.ckpt",
    }
    step_pattern = re.compile(r"^(\d+)_(?:nets|nets_ema|optims)\.ckpt$")

    def kind_of(self, name: str, data: dict) -> str | None:
        if data and set(data) <= set(TRAINED) and all(is_optimizer_state(v)
                                                       for v in data.values()):
            return "optims"
        if is_state_dict(data.get("generator")):
            if name.endswith("_nets_ema.ckpt"):
                return "nets_ema"
            if name.endswith("_nets.ckpt"):
                return "nets"
            return "nets" if "discriminator" in data else "nets_ema"
        return None

    def sources(self, files: dict[str, OfficialFile]) -> Sources:
        if "nets" not in files and "nets_ema" not in files:
            raise OfficialFormatError(f"stargan_v2: a network file is needed "
                                      f"({self.kinds['nets_ema']}, or {self.kinds['nets']}); got "
                                      f"{', '.join(f.name for f in files.values())}")
        if "optims" in files and "nets" not in files:
            raise OfficialFormatError(f"stargan_v2: {files['optims'].name} holds the optimizer "
                                      f"states of the trained networks: give "
                                      f"NNNNNN_nets.ckpt with it")
        networks: dict[str, NetworkSource] = {}
        notes = []
        for kind, names, suffix in (("nets", TRAINED, ""), ("nets_ema", AVERAGED, "_ema")):
            if kind not in files:
                continue
            file = files[kind]
            _check_names(file, names, allowed_extra=(LANDMARKS,))
            if LANDMARKS in file.data:
                fan = file.data[LANDMARKS]
                notes.append(FAN_NOTE.format(file=file.name, n=len(fan) if isinstance(
                    fan, dict) else "?"))
            for name in names:
                if not is_state_dict(file.data[name]):
                    raise OfficialFormatError(f"{file.name}: {name}: expected a state dict, got "
                                              f"{type(file.data[name]).__name__}")
                networks[f"{name}{suffix}"] = NetworkSource(f"{file.name}['{name}']",
                                                            file.data[name], f"{name}{suffix}")
        optimizers = []
        if "optims" in files:
            file = files["optims"]
            _check_names(file, TRAINED)
            optimizers = [OptimizerSource(f"{file.name}['{name}']", file.data[name], name,
                                          [networks[name]]) for name in TRAINED]
        return Sources(list(networks.values()), optimizers, notes)

    def complete(self, method: Method, sources: Sources) -> list[str]:
        given = {s.target for s in sources.networks}
        notes = []
        for name in AVERAGED:
            ema = f"{name}_ema"
            if (ema in given) == (name in given):
                continue
            source, copy_to = (ema, name) if ema in given else (name, ema)
            method.get_submodule(copy_to).load_state_dict(
                method.get_submodule(source).state_dict())
            notes.append(f"{copy_to}: not in the files given: starts as a copy of {source}")
        if "discriminator" not in given:
            notes.append("discriminator: not in the files given (NNNNNN_nets.ckpt): initialised "
                         "as in a new run (translate and eval do not use it; train --resume "
                         "starts it from there)")
        if not sources.optimizers:
            notes.append("optimizers: no NNNNNN_optims.ckpt given: fresh Adam states")
        return notes


def _check_names(file: OfficialFile, expected: tuple[str, ...],
                 allowed_extra: tuple[str, ...] = ()) -> None:
    missing = [name for name in expected if name not in file.data]
    unexpected = [str(name) for name in file.data
                  if name not in expected and name not in allowed_extra]
    if missing or unexpected:
        parts = ([f"missing networks {listed(missing)}"] if missing else []) + (
            [f"unexpected networks {listed(unexpected)}"] if unexpected else [])
        raise OfficialFormatError(f"{file.name}: {'; '.join(parts)} (expected "
                                  f"{', '.join(expected)})")
