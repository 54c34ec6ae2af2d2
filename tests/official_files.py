"""Official checkpoint files for the import-official tests, written from known tensors.

The tensors come from one of our methods (``source``); the names and the file layouts are the
official ones, taken independently of i2i_fast.official: MUNIT's parameter names from
tests/data/official_keys_munit.txt (NVlabs/MUNIT networks.py against ours), in the official
order (its Conv2dBlock registers its norm before its conv) and with the AdaIN running statistics
the official layers carry; StarGAN v2's names and order are ours (the official ones: a test
checks them against tests/data/official_keys_stargan_v2.txt).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

KEYS = Path(__file__).resolve().parent / "data" / "official_keys_munit.txt"
SHARED_KEYS = Path("/work/shared/official_keys/munit.txt")
STARGAN_KEYS = Path(__file__).resolve().parent / "data" / "official_keys_stargan_v2.txt"
ADAIN_CONV = re.compile(r"^dec\.model\.0\.model\.\d+\.model\.\d+\.conv\.weight$")


def munit_key_table() -> dict[str, str]:
    """official name -> our name, e.g. 'gen_a.dec.model.2.conv.weight' -> 'gen_a.dec.upsample.1
    .conv.weight' (every parameter of gen_a, gen_b, dis_a, dis_b)."""
    table = {}
    for line in KEYS.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        official, ours = (part.strip() for part in line.split("->"))
        table[official] = ours
    return table


def _official_order(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The official Conv2dBlock's order: its norm's tensors before its conv's."""
    blocks: dict[str, list[tuple[int, str]]] = {}
    for key in state:
        match = re.match(r"^(.*)\.(conv|norm)\.[^.]+$", key)
        block = match.group(1) if match else key
        rank = 0 if match and match.group(2) == "norm" else 1
        blocks.setdefault(block, []).append((rank, key))
    ordered = {}
    for members in blocks.values():
        for _, key in sorted(members, key=lambda m: m[0]):  # stable: norm, then conv
            ordered[key] = state[key]
    return ordered


def munit_network_state(source, network: str, adain_statistics: bool = True
                        ) -> dict[str, torch.Tensor]:
    """The official state dict of one network ("gen_a", "dis_b", ...) of our MUNIT `source`."""
    ours_to_official = {ours: official for official, ours in munit_key_table().items()}
    state = {}
    for key, value in source.get_submodule(network).state_dict().items():
        official = ours_to_official[f"{network}.{key}"].split(".", 1)[1]
        state[official] = value.clone()
        if adain_statistics and ADAIN_CONV.match(official):  # the unused AdaIN buffers
            norm = official.rsplit(".conv.", 1)[0] + ".norm"
            state[f"{norm}.running_mean"] = torch.zeros(value.shape[0])
            state[f"{norm}.running_var"] = torch.ones(value.shape[0])
    return _official_order(state)


def munit_parameter_names(source, network: str) -> list[str]:
    """Our full parameter names of a network in the official parameters() order."""
    official_to_ours = munit_key_table()
    prefix = network + "."
    return [official_to_ours[prefix + key] for key in munit_network_state(source, network, False)]


def adam_state(names: list[str], shapes: dict[str, torch.Size], step: int, ids: bool
               ) -> tuple[dict, dict[str, float]]:
    """An official Adam state dict over parameters `names` (in order): exp_avg of parameter i
    filled with i + 0.5 and exp_avg_sq with i + 0.25. ids: name the parameters by large numbers
    as PyTorch < 1.5 did (id(p)), else by position. Returns (state dict, name -> i + 0.5)."""
    keys = [140_000_000_000 + 96 * i if ids else i for i in range(len(names))]
    state = {key: {"step": step, "exp_avg": torch.full(shapes[name], i + 0.5),
                   "exp_avg_sq": torch.full(shapes[name], i + 0.25)}
             for i, (key, name) in enumerate(zip(keys, names))}
    group = {"lr": 1e-4, "betas": (0.5, 0.999), "eps": 1e-8, "weight_decay": 1e-4,
             "amsgrad": False, "params": keys}
    return {"state": state, "param_groups": [group]}, {n: i + 0.5 for i, n in enumerate(names)}


def write_munit(source, folder: Path, step: int, dis: bool = True, optimizer: bool = False,
                legacy: bool = False) -> list[Path]:
    """gen_<step>.pt [, dis_<step>.pt] [, optimizer.pt] as NVlabs/MUNIT trainer.py saves them.
    legacy: the pre-1.6 file format (PyTorch 0.4 wrote that)."""
    folder.mkdir(parents=True, exist_ok=True)
    save = {"_use_new_zipfile_serialization": False} if legacy else {}
    paths = [folder / f"gen_{step:08d}.pt"]
    torch.save({d: munit_network_state(source, f"gen_{d}") for d in "ab"}, paths[0], **save)
    if dis:
        paths.append(folder / f"dis_{step:08d}.pt")
        torch.save({d: munit_network_state(source, f"dis_{d}") for d in "ab"}, paths[-1], **save)
    if optimizer:
        shapes = {n: p.shape for n, p in source.named_parameters()}
        optimizers = {}
        for kind in ("gen", "dis"):
            names = munit_parameter_names(source, f"{kind}_a") + munit_parameter_names(
                source, f"{kind}_b")
            optimizers[kind] = adam_state(names, shapes, step, ids=legacy)[0]
        paths.append(folder / "optimizer.pt")
        torch.save(optimizers, paths[-1], **save)
    return paths


STARGAN_NETWORKS = ("generator", "mapping_network", "style_encoder", "discriminator")


def stargan_state(source, network: str) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in source.get_submodule(network).state_dict().items()}


def fan_state() -> dict[str, torch.Tensor]:
    """A stand-in for the FAN landmark network's state dict (only its presence matters)."""
    return {"conv1.conv.weight": torch.zeros(64, 5, 7, 7), "bn1.running_mean": torch.zeros(64)}


def write_stargan(source, folder: Path, step: int, nets: bool = False, optims: bool = False,
                  fan: bool = False, legacy: bool = False) -> list[Path]:
    """<step>_nets_ema.ckpt [, _nets.ckpt] [, _optims.ckpt] as clovaai/stargan-v2 CheckpointIO
    saves them (fan in the network files when `fan`)."""
    folder.mkdir(parents=True, exist_ok=True)
    save = {"_use_new_zipfile_serialization": False} if legacy else {}
    extra = {"fan": fan_state()} if fan else {}
    ema = {n: stargan_state(source, f"{n}_ema") for n in STARGAN_NETWORKS[:3]}
    paths = [folder / f"{step:06d}_nets_ema.ckpt"]
    torch.save({**ema, **extra}, paths[0], **save)
    if nets:
        paths.append(folder / f"{step:06d}_nets.ckpt")
        torch.save({**{n: stargan_state(source, n) for n in STARGAN_NETWORKS}, **extra},
                   paths[-1], **save)
    if optims:
        shapes = {n: p.shape for n, p in source.named_parameters()}
        paths.append(folder / f"{step:06d}_optims.ckpt")
        torch.save({n: adam_state([f"{n}.{k}" for k, _ in source.get_submodule(n)
                                   .named_parameters()], shapes, step, ids=legacy)[0]
                    for n in STARGAN_NETWORKS}, paths[-1], **save)
    return paths
