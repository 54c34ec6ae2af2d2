"""i2i-fast import-official: official MUNIT and StarGAN v2 checkpoint files → i2i_fast checkpoints
that translate, eval and train --resume open.

Official-format files are written from known tensors with the official names and layouts
(tests/official_files.py); the converted model's outputs must equal those of the same weights
loaded directly. One round trip per supported configuration: edges2shoes, afhq and celeba_hq at
the official sizes (what users load), summer2winter (the edges2shoes architecture) narrower.
"""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest
import torch

import official_files
from i2i_fast.cli import main as cli_main
from i2i_fast.methods import create_method
from i2i_fast.methods.registry import get_method_class, resolve_config
from i2i_fast.official import OfficialFormatError, import_official
from i2i_fast.official.importer import build, check_fit
from i2i_fast.official.munit import generator_names
from i2i_fast.official.state import NetworkSource, same_names
from i2i_fast.train import TrainOptions, Trainer
from i2i_fast.train.translate import load_method

# narrower networks with the official structure (same tensor names)
MUNIT_NARROW = {"gen": {"dim": 8, "mlp_dim": 16}, "dis": {"dim": 8}, "image_size": 64}
STARGAN_NARROW = {"image_size": 32, "dim_in": 8, "max_conv_dim": 16, "style_dim": 8,
                  "latent_dim": 4, "hidden_dim": 16}
CELEBA_NARROW = {**STARGAN_NARROW, "hpf_resolutions": [16, 32]}


def sets(overrides: dict) -> list[str]:
    """--set KEY=VALUE strings for a nested dict of overrides."""
    out = []
    for key, value in overrides.items():
        if isinstance(value, dict):
            out += [f"{key}.{k}={v}" for k, v in value.items()]
        else:
            out.append(f"{key}={value}")
    return out


@pytest.fixture(autouse=True, scope="module")
def two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(min(threads, 2))
    yield
    torch.set_num_threads(threads)


def munit_source(config: str, overrides: dict | None = None, seed: int = 3):
    torch.manual_seed(seed)
    return create_method("munit", config=config, overrides=copy.deepcopy(overrides or {}))


def stargan_method(config: str, overrides: dict | None = None, seed: int = 3):
    torch.manual_seed(seed)
    return create_method("stargan_v2", config=config, overrides=copy.deepcopy(overrides or {}))


def stargan_source(config: str, overrides: dict | None = None, seed: int = 3):
    method = stargan_method(config, overrides, seed)
    with torch.no_grad():  # EMA networks different from the trained ones
        for p in method.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    return method


def images(n: int, size: int, seed: int) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def munit_outputs(method) -> dict[str, torch.Tensor]:
    """Both directions, with random and reference styles, and the discriminators."""
    x, ref = images(2, 64, 0), images(1, 64, 1)
    out = {}
    for d in ("a", "b"):
        out[f"random_{d}"] = method.translate(x, n_styles=2, target_domain=d,
                                              generator=torch.Generator().manual_seed(0))
        out[f"reference_{d}"] = method.translate(x, reference=ref, target_domain=d)
        with torch.no_grad():
            out[f"dis_{d}"] = torch.cat([o.flatten() for o in method.get_submodule(
                f"dis_{d}")(x)])
    return out


def stargan_outputs(method, size: int, masks: bool = False, n: int = 2, trained: bool = True
                    ) -> dict[str, torch.Tensor]:
    """Latent- and reference-guided translations of n inputs (EMA networks, and trained ones
    and D's logits when `trained`)."""
    x, ref = images(n, size, 0), images(n, method.config.image_size, 1)
    kwargs = {}
    if masks:
        kwargs["masks"] = (torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(2)),
                           torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(3)))
    y = torch.tensor([0, method.config.num_domains - 1][:n])
    out = {}
    for ema in (True, False) if trained else (True,):
        out[f"latent_{ema}"] = method.translate(x, n_styles=2, target_domain=y, ema=ema,
                                                generator=torch.Generator().manual_seed(0),
                                                **kwargs)
        out[f"reference_{ema}"] = method.translate(x, reference=ref, target_domain=y, ema=ema,
                                                   **kwargs)
    if trained:
        with torch.no_grad():
            out["discriminator"] = method.discriminator(ref)
    return out


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def loaded_directly(config: str, overrides: dict, files: list[Path]):
    """The official files loaded as the official code loads them (module.load_state_dict per
    network, strict) into a StarGAN v2 method of ours built with another seed."""
    method = stargan_method(config, overrides, seed=99)
    for path in files:
        if path.name.endswith("_optims.ckpt"):
            continue
        suffix = "_ema" if path.name.endswith("_nets_ema.ckpt") else ""
        for name, state in torch.load(path, weights_only=True).items():
            if name != "fan":
                method.get_submodule(name + suffix).load_state_dict(state)
    return method


# ----- names -----


def test_munit_names_are_the_official_ones():
    """The mapping derived from our module structure reproduces the official name of every
    parameter (tests/data/official_keys_munit.txt, NVlabs/MUNIT networks.py vs ours)."""
    table = official_files.munit_key_table()
    assert len(table) == 192
    if official_files.SHARED_KEYS.exists():  # the fixture is that file, verbatim
        assert official_files.SHARED_KEYS.read_text() == official_files.KEYS.read_text()
    cls = get_method_class("munit")
    method = build(cls, resolve_config(cls, "edges2shoes"), "meta")
    derived = {}
    for net in ("gen_a", "gen_b", "dis_a", "dis_b"):
        names = (generator_names if net.startswith("gen") else same_names)(
            method.get_submodule(net))
        derived.update({f"{net}.{official}": f"{net}.{ours}" for ours, official in names.items()})
    assert derived == table


def test_stargan_v2_names_are_the_official_ones():
    """Our StarGAN v2 networks have the official keys and shapes, in the official order, high-pass
    filter included (tests/data/official_keys_stargan_v2.txt, written from the official networks
    of clovaai/stargan-v2 core/model.py)."""
    official: dict[str, list[tuple[str, tuple[int, ...]]]] = {}
    for line in official_files.STARGAN_KEYS.read_text().splitlines():
        if not line.startswith("#"):
            config, key, shape = line.split()
            official.setdefault(config, []).append((key, tuple(map(int, shape.split(",")))))
    assert sorted(official) == ["afhq", "celeba_hq"]
    cls = get_method_class("stargan_v2")
    for config, keys in official.items():
        method = build(cls, resolve_config(cls, config), "meta")
        ours = [(f"{net}.{key}", tuple(value.shape)) for net in official_files.STARGAN_NETWORKS
                for key, value in method.get_submodule(net).state_dict().items()]
        assert ours == keys, config


# ----- round trips at the official sizes -----


@pytest.fixture(scope="module")
def edges2shoes(tmp_path_factory):
    """edges2shoes at the official size: gen and dis files (PyTorch 0.4's file format)."""
    folder = tmp_path_factory.mktemp("edges2shoes")
    source = munit_source("edges2shoes")
    files = official_files.write_munit(source, folder / "official", 10_000, legacy=True)
    expected = munit_outputs(source)
    out = folder / "edges2shoes.pt"
    result = import_official("munit", files, config="edges2shoes", out=out)
    return {"files": files, "out": out, "expected": expected, "result": result}


@pytest.mark.slow
def test_munit_edges2shoes_round_trip_at_the_official_size(edges2shoes):
    method = load_method(edges2shoes["out"])
    assert method.config.gen.dim == 64 and method.config.gen.n_res == 4
    assert_same(munit_outputs(method), edges2shoes["expected"])
    notes = " ".join(edges2shoes["result"].notes)
    # 2 generators x 8 AdaIN x (running_mean, running_var)
    assert "dropped 32 running statistics" in notes
    assert "optimizer.pt given: fresh Adam states" in notes
    assert edges2shoes["result"].step == 10_000


@pytest.fixture(scope="module")
def afhq(tmp_path_factory):
    """AFHQ at the official size: the EMA file alone, as the released pretrained model."""
    folder = tmp_path_factory.mktemp("afhq")
    source = stargan_method("afhq")
    files = official_files.write_stargan(source, folder / "official", 100_000)
    out = folder / "afhq.pt"
    result = import_official("stargan_v2", files, config="afhq", out=out)
    return {"files": files, "out": out, "result": result}


@pytest.mark.slow
def test_stargan_v2_afhq_round_trip_at_the_official_size(afhq):
    method = load_method(afhq["out"])
    expected = stargan_outputs(loaded_directly("afhq", {}, afhq["files"]), 64, n=1,
                               trained=False)
    assert_same(stargan_outputs(method, 64, n=1, trained=False), expected)
    # the EMA file alone: the trained G, F, E start as copies of the EMA networks
    for name in ("generator", "mapping_network", "style_encoder"):
        ema = method.get_submodule(name + "_ema").state_dict()
        for key, value in method.get_submodule(name).state_dict().items():
            assert torch.equal(value, ema[key]), (name, key)
    assert method.config.num_domains == 3 and method.config.w_hpf == 0
    assert afhq["result"].step == 100_000
    assert method.lambda_ds(afhq["result"].step) == 0.0


@pytest.mark.slow
def test_stargan_v2_celeba_hq_round_trip_at_the_official_size(tmp_path):
    """CelebA-HQ at the official size: the EMA file with FAN (not loaded, said so), the high-pass
    filter, masks given to translate."""
    source = stargan_method("celeba_hq")
    files = official_files.write_stargan(source, tmp_path / "official", 100_000, fan=True,
                                         legacy=True)
    out = tmp_path / "celeba_hq.pt"
    result = import_official("stargan_v2", files, config="celeba_hq", out=out)
    del source
    fan_note = [n for n in result.notes if "'fan'" in n]
    assert len(fan_note) == 1 and "is not loaded" in fan_note[0] and "hpf_masks" in fan_note[0]
    method = load_method(out)
    direct = loaded_directly("celeba_hq", {}, files)
    with torch.no_grad():
        x, s = images(1, 128, 0), torch.randn(1, 64, generator=torch.Generator().manual_seed(1))
        masks = (torch.rand(1, 1, 128, 128), torch.rand(1, 1, 128, 128))
        torch.testing.assert_close(method.generator_ema(x, s, masks),
                                   direct.generator_ema(x, s, masks), rtol=0, atol=0)
        y = torch.tensor([1])
        z = torch.randn(1, 16, generator=torch.Generator().manual_seed(2))
        torch.testing.assert_close(method.mapping_network_ema(z, y),
                                   direct.mapping_network_ema(z, y), rtol=0, atol=0)
        ref = images(1, 256, 3)
        torch.testing.assert_close(method.style_encoder_ema(ref, y),
                                   direct.style_encoder_ema(ref, y), rtol=0, atol=0)
    with pytest.raises(ValueError, match="needs the masks of the high-pass skips"):
        method.translate(x, target_domain=1)


# ----- narrower round trips: every file, optimizer states, summer2winter -----


def test_munit_summer2winter_with_optimizer_states(tmp_path):
    source = munit_source("summer2winter", MUNIT_NARROW)
    step = 199_999
    files = official_files.write_munit(source, tmp_path / "official", step, optimizer=True,
                                       legacy=True)
    out = tmp_path / "s2w.pt"
    result = import_official("munit", files, config="summer2winter",
                             overrides=sets(MUNIT_NARROW), out=out)
    method = load_method(out)
    assert method.config.recon_x_cyc_w == 10.0 and method.config.display_size == 16
    assert_same(munit_outputs(method), munit_outputs(source))
    # Adam states by parameter name; learning rates as the trainer's at this step
    saved = torch.load(out, weights_only=True)
    method.load_training_state(saved["training_state"])
    shapes = {n: p.shape for n, p in source.named_parameters()}
    names = dict(method.named_parameters())
    for kind in ("gen", "dis"):
        order = official_files.munit_parameter_names(source, f"{kind}_a") \
            + official_files.munit_parameter_names(source, f"{kind}_b")
        _, fill = official_files.adam_state(order, shapes, step, ids=True)
        optimizer = method.optimizers[kind]
        assert len(optimizer.state) == len(order)
        for name, value in fill.items():
            state = optimizer.state[names[name]]
            assert torch.equal(state["exp_avg"], torch.full(shapes[name], value)), name
            assert torch.equal(state["exp_avg_sq"], torch.full(shapes[name], value - 0.25))
            assert float(state["step"]) == step
        # the trainer's lr after `step` iterations: 1e-4 * 0.5 ** ((step + 1) // 100_000)
        assert optimizer.param_groups[0]["lr"] == pytest.approx(2.5e-5)
    assert not any("betas" in n for n in result.notes)  # the official hyperparameters


def test_stargan_v2_every_file_with_optimizer_states(tmp_path):
    source = stargan_source("celeba_hq", CELEBA_NARROW)
    files = official_files.write_stargan(source, tmp_path / "official", 500, nets=True,
                                         optims=True, fan=True)
    out = tmp_path / "celeba_narrow.pt"
    result = import_official("stargan_v2", list(reversed(files)), config="celeba_hq",
                             overrides=sets(CELEBA_NARROW), out=out)
    assert result.step == 500
    assert sum("'fan'" in n for n in result.notes) == 2  # in both network files
    assert not any("copy of" in n or "initialised" in n for n in result.notes)
    method = load_method(out)
    assert_same(stargan_outputs(method, 32, masks=True),
                stargan_outputs(loaded_directly("celeba_hq", CELEBA_NARROW, files), 32,
                                masks=True))
    saved = torch.load(out, weights_only=True)
    method.load_training_state(saved["training_state"])
    shapes = {n: p.shape for n, p in source.named_parameters()}
    names = dict(method.named_parameters())
    for net in official_files.STARGAN_NETWORKS:
        order = [f"{net}.{k}" for k, _ in source.get_submodule(net).named_parameters()]
        _, fill = official_files.adam_state(order, shapes, 500, ids=False)
        optimizer = method.optimizers[net]
        for name, value in fill.items():
            assert torch.equal(optimizer.state[names[name]]["exp_avg"],
                               torch.full(shapes[name], value)), name
        lr = method.config.f_lr if net == "mapping_network" else method.config.lr
        assert optimizer.param_groups[0]["lr"] == lr
    # the official runs' betas differ from these Adam states' (0.5, 0.999): said, config kept
    assert any("used betas" in n and "config's" in n for n in result.notes)


def test_optimizer_states_follow_the_official_parameter_order(tmp_path):
    """The official files order each conv block's norm before its conv, so the position of a
    parameter in the official optimizer differs from ours: states go by name, not position."""
    source = munit_source("edges2shoes", MUNIT_NARROW)
    order = official_files.munit_parameter_names(source, "gen_a")
    ours = [f"gen_a.{name}" for name, _ in source.gen_a.named_parameters()]
    assert sorted(order) == sorted(ours) and order != ours


# ----- what the command refuses, in one line -----


@pytest.fixture(scope="module")
def narrow_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("narrow")
    munit = official_files.write_munit(munit_source("edges2shoes", MUNIT_NARROW),
                                       folder / "munit", 20, optimizer=True)
    stargan = official_files.write_stargan(stargan_source("afhq", STARGAN_NARROW),
                                           folder / "stargan", 30, nets=True, optims=True)
    return {"folder": folder, "munit": munit, "stargan": stargan}


def refuse(method: str, files: list, tmp_path: Path, match: str, config: str = "edges2shoes",
           overrides: dict | None = None, **kwargs) -> str:
    overrides = MUNIT_NARROW if overrides is None else overrides
    with pytest.raises(OfficialFormatError, match=match) as info:
        import_official(method, files, config=config, overrides=sets(overrides),
                        out=tmp_path / "out.pt", **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert not (tmp_path / "out.pt").exists()
    return message


def edited(path: Path, tmp_path: Path, edit) -> Path:
    data = torch.load(path, weights_only=True)
    edit(data)
    new = tmp_path / path.name
    torch.save(data, new)
    return new


def test_missing_and_unexpected_tensors_are_listed(narrow_files, tmp_path):
    gen = narrow_files["munit"][0]

    def drop(data):
        del data["b"]["mlp.model.2.fc.bias"], data["b"]["dec.model.5.conv.weight"]

    message = refuse("munit", [edited(gen, tmp_path, drop)], tmp_path,
                     r"gen_00000020.pt\['b'\]: does not fit munit config edges2shoes.*: missing "
                     r"keys \[dec.model.5.conv.weight, mlp.model.2.fc.bias\]")
    assert "config" in message

    def add(data):
        data["a"]["enc_style.model.9.conv.weight"] = torch.zeros(3)
        data["a"]["dec.model.0.model.0.model.0.norm.running_mean"] = torch.zeros(8)  # known

    message = refuse("munit", [edited(gen, tmp_path, add)], tmp_path,
                     r"gen_00000020.pt\['a'\]: .*unexpected keys \[enc_style.model.9.conv.weight\]")
    assert "running_mean" not in message

    def extra_network(data):
        data["extra"] = data["generator"]

    refuse("stargan_v2", [edited(narrow_files["stargan"][0], tmp_path, extra_network)], tmp_path,
           r"000030_nets_ema.ckpt: unexpected networks \[extra\]", config="afhq",
           overrides=STARGAN_NARROW)

    def no_mapping(data):
        del data["mapping_network"]

    refuse("stargan_v2", [edited(narrow_files["stargan"][1], tmp_path, no_mapping)], tmp_path,
           r"000030_nets.ckpt: missing networks \[mapping_network\]", config="afhq",
           overrides=STARGAN_NARROW)


def test_the_instance_norm_statistics_of_pytorch_0_3_files_are_dropped(narrow_files, tmp_path):
    """The released MUNIT models were saved by PyTorch 0.3, whose instance norms kept running
    statistics (the official test.py deletes them before loading): accepted and dropped."""
    source = munit_source("edges2shoes", MUNIT_NARROW)
    (gen,) = official_files.write_munit(source, tmp_path / "official", 1, dis=False)
    norms = ["enc_content.model.0.norm", "enc_content.model.2.norm",
             "enc_content.model.3.model.1.model.0.norm", "enc_content.model.3.model.3.model.1.norm"]

    def add_statistics(data):
        for state in data.values():
            for norm in norms:
                state[f"{norm}.running_mean"] = torch.zeros(8)
                state[f"{norm}.running_var"] = torch.ones(8)

    result = import_official("munit", [edited(gen, tmp_path, add_statistics)],
                             config="edges2shoes", overrides=sets(MUNIT_NARROW),
                             out=tmp_path / "out.pt")
    # 2 generators x (8 AdaIN + 4 instance norms) x (running_mean, running_var)
    assert "dropped 48 running statistics" in " ".join(result.notes)
    got, expected = munit_outputs(load_method(tmp_path / "out.pt")), munit_outputs(source)
    assert_same({k: v for k, v in got.items() if not k.startswith("dis_")},  # not given
                {k: v for k, v in expected.items() if not k.startswith("dis_")})


def test_a_shape_mismatch_names_the_first_tensor_and_the_config_that_fits():
    """Checked on the meta device: the AFHQ networks (3 domains, no high-pass skips) against the
    CelebA-HQ configuration, and the reverse."""
    cls = get_method_class("stargan_v2")
    for files, other in (("afhq", "celeba_hq"), ("celeba_hq", "afhq")):
        source = build(cls, resolve_config(cls, files), "meta")
        networks = [NetworkSource(f"000001_nets_ema.ckpt['{n}']",
                                  source.get_submodule(n + "_ema").state_dict(), n + "_ema")
                    for n in ("generator", "mapping_network", "style_encoder")]
        with pytest.raises(OfficialFormatError) as info:
            check_fit(cls, resolve_config(cls, other), other, networks)
        message = str(info.value)
        assert message.startswith(f"000001_nets_ema.ckpt['generator']: does not fit stargan_v2 "
                                  f"config {other}: ")
        assert message.endswith(f"; config {files} fits: --config {files}")
    # one tensor of another shape: named with both shapes
    source = build(cls, resolve_config(cls, "afhq"), "meta")
    state = dict(source.mapping_network_ema.state_dict())
    state["unshared.1.6.weight"] = torch.empty(32, 512, device="meta")
    with pytest.raises(OfficialFormatError, match=r"\['mapping_network'\]: does not fit "
                       r"stargan_v2 config afhq: unshared.1.6.weight has shape \(32, 512\), "
                       r"expected \(64, 512\); no named configuration of stargan_v2 fits"):
        check_fit(cls, resolve_config(cls, "afhq"), "afhq",
                  [NetworkSource("x['mapping_network']", state, "mapping_network_ema")])


@pytest.mark.slow
def test_files_of_the_wrong_configuration_at_the_official_size(afhq, tmp_path):
    message = refuse("stargan_v2", afhq["files"], tmp_path, r"000000_nets_ema|100000_nets_ema",
                     config="celeba_hq", overrides={})
    assert "does not fit stargan_v2 config celeba_hq" in message
    assert message.endswith("config afhq fits: --config afhq")


def test_a_file_of_another_method_or_kind(narrow_files, tmp_path):
    refuse("munit", [narrow_files["stargan"][0]], tmp_path,
           r"000030_nets_ema.ckpt: a stargan_v2 checkpoint \(clovaai/stargan-v2\), not a munit "
           r"one: import it with i2i-fast import-official stargan_v2")
    refuse("stargan_v2", [narrow_files["munit"][0]], tmp_path,
           r"gen_00000020.pt: a munit checkpoint \(NVlabs/MUNIT\), not a stargan_v2 one",
           config="afhq", overrides=STARGAN_NARROW)
    other = tmp_path / "weights.pt"
    torch.save({"model": {"fc.weight": torch.zeros(2, 2)}}, other)
    refuse("munit", [other], tmp_path, r"weights.pt: not one of the official munit files "
           r"\(NVlabs/MUNIT: gen_NNNNNNNN.pt = .*got a dict with keys \['model'\]")
    refuse("munit", [narrow_files["munit"][1]], tmp_path, r"munit: a generator file is needed")
    refuse("munit", [narrow_files["munit"][0], narrow_files["munit"][2]], tmp_path,
           r"optimizer.pt holds the optimizer states of the generators and the discriminators: "
           r"give the discriminator file")
    refuse("stargan_v2", [narrow_files["stargan"][0], narrow_files["stargan"][2]], tmp_path,
           r"000030_optims.ckpt holds the optimizer states of the trained networks: give "
           r"NNNNNN_nets.ckpt", config="afhq", overrides=STARGAN_NARROW)
    refuse("munit", [narrow_files["munit"][0], narrow_files["munit"][0]], tmp_path,
           r"gen_00000020.pt: a second gen_NNNNNNNN.pt file")
    ours = tmp_path / "step_000000010.pt"
    torch.save({"format": "i2i_fast.checkpoint", "format_version": 1, "method": "stargan_v2"},
               ours)
    refuse("munit", [ours], tmp_path, r"already an i2i_fast checkpoint \(method 'stargan_v2'\): "
           r"use it as it is")
    refuse("drit", [narrow_files["munit"][0]], tmp_path, r"method: expected one of munit, "
           r"stargan_v2")


def test_steps_of_the_files(narrow_files, tmp_path):
    gen, dis, opt = narrow_files["munit"]
    later = tmp_path / "dis_00000040.pt"
    later.write_bytes(dis.read_bytes())
    refuse("munit", [gen, later], tmp_path, r"the files are of different iterations "
           r"\(gen_00000020.pt: 20, dis_00000040.pt: 40\)")
    renamed = tmp_path / "edges2shoes.pt"
    renamed.write_bytes(gen.read_bytes())
    result = import_official("munit", [renamed], config="edges2shoes",
                             overrides=sets(MUNIT_NARROW), out=tmp_path / "a.pt")
    assert result.step == 0 and "give it with --step N" in result.notes[-1]
    result = import_official("munit", [renamed], config="edges2shoes", step=7,
                             overrides=sets(MUNIT_NARROW), out=tmp_path / "b.pt")
    assert result.step == 7
    refuse("munit", [gen], tmp_path, r"step: expected an int >= 0, got -1", step=-1)


def test_unreadable_files_and_files_that_would_run_code(narrow_files, tmp_path):
    gen = narrow_files["munit"][0]
    truncated = tmp_path / "gen_00000020.pt"
    truncated.write_bytes(gen.read_bytes()[: gen.stat().st_size // 2])
    refuse("munit", [truncated], tmp_path, r"file .*gen_00000020.pt: cannot be read with "
           r"torch.load\(weights_only=True\) \(truncated")
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint\n")
    refuse("munit", [text], tmp_path, r"notes.txt: cannot be read with torch.load")
    refuse("munit", [tmp_path / "absent.pt"], tmp_path, r"absent.pt: no such file")
    refuse("munit", [tmp_path], tmp_path, r"expected a file, got a folder")
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    crafted = tmp_path / "gen_00000001.pt"
    with open(crafted, "wb") as file:
        pickle.dump({"a": Payload()}, file, protocol=2)
    refuse("munit", [crafted], tmp_path, r"cannot be read with torch.load\(weights_only=True\)")
    assert not marker.exists()
    tensor_file = tmp_path / "tensor.pt"
    torch.save(torch.zeros(2), tensor_file)
    refuse("munit", [tensor_file], tmp_path, r"tensor.pt: expected a dict of state dicts "
           r"\(munit: .*\), got a Tensor")


def test_the_output_and_the_configuration(narrow_files, tmp_path):
    existing = tmp_path / "out.pt"
    existing.write_bytes(b"keep me")
    with pytest.raises(OfficialFormatError, match=r"--out .*out.pt: already exists"):
        import_official("munit", narrow_files["munit"][:1], config="edges2shoes",
                        overrides=sets(MUNIT_NARROW), out=existing)
    assert existing.read_bytes() == b"keep me"
    existing.unlink()
    refuse("stargan_v2", narrow_files["stargan"][:1], tmp_path,
           r"hpf_masks: a checkpoint does not store code references", config="celeba_hq",
           overrides={**CELEBA_NARROW, "hpf_masks": "os:getcwd"})

    def other_filter(data):
        data["generator"]["hpf.filter"] = data["generator"]["hpf.filter"] / 2

    source = stargan_source("celeba_hq", CELEBA_NARROW)
    (ema,) = official_files.write_stargan(source, tmp_path / "celeba", 1)
    refuse("stargan_v2", [edited(ema, tmp_path, other_filter)], tmp_path,
           r"generator_ema.hpf.filter: expected the high-pass kernel / w_hpf for w_hpf = 1, got "
           r"a filter for w_hpf = 2", config="celeba_hq", overrides=CELEBA_NARROW)


# ----- the command line, translate, eval, train --resume -----


def test_the_command_line(narrow_files, tmp_path, capsys):
    out = tmp_path / "munit.pt"
    args = ["import-official", "munit", *map(str, narrow_files["munit"]), "--config",
            "edges2shoes", *[a for s in sets(MUNIT_NARROW) for a in ("--set", s)],
            "--out", str(out)]
    assert cli_main(args) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}: munit (config edges2shoes --set gen.dim=8" in printed
    assert "at step 20 from gen_00000020.pt, dis_00000020.pt, optimizer.pt" in printed
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("i2i-fast import-official: error: --out") and err.count("\n") == 1
    image = tmp_path / "input.png"
    from i2i_fast.train.images import save_png, to_uint8

    save_png(to_uint8(images(1, 64, 5)[0]), image)  # 64: the smallest side MUNIT takes
    assert cli_main(["translate", "--checkpoint", str(out), "--input", str(image), "--out",
                     str(tmp_path / "translations"), "--n-styles", "2"]) == 0
    assert (tmp_path / "translations" / "input_style2.png").exists()
    from i2i_fast.metrics.eval_command import load_checkpoint

    method, data = load_checkpoint(out, "cpu")
    assert method.name == "munit" and data is None


def resume_one_step(method: str, checkpoint: Path, data: str, run_dir: Path, step: int):
    import io

    stream = io.StringIO()
    options = TrainOptions(method, data=data, resume=str(checkpoint), run_dir=str(run_dir),
                           overrides=[f"max_iter={step + 1}", "batch_size=2"], device="cpu",
                           workers=0, log_every=1, sample_every=100, progress=False)
    trainer = Trainer(options, stream=stream)
    result = trainer.run()
    return trainer, result, stream.getvalue()


def test_train_resume_continues_the_official_run(narrow_files, tmp_path):
    out = tmp_path / "munit.pt"
    import_official("munit", narrow_files["munit"], config="edges2shoes",
                    overrides=sets(MUNIT_NARROW), out=out)
    trainer, result, log = resume_one_step("munit", out, "synthetic:shapes", tmp_path / "run", 20)
    assert result.step == 21 and result.resumed_from == out
    assert "imported from NVlabs/MUNIT: step 20 (from the file names)" in log
    assert "holds no data stream position (imported weights)" in log
    assert "holds no random generator states (imported weights)" in log
    # the official Adam states were continued: one more step on each
    for optimizer in trainer.method.optimizers.values():
        assert {float(s["step"]) for s in optimizer.state.values()} == {21.0}


def test_train_resume_from_the_ema_file_alone_says_what_was_initialised(narrow_files, tmp_path):
    out = tmp_path / "stargan.pt"
    import_official("stargan_v2", narrow_files["stargan"][:1], config="afhq",
                    overrides=sets(STARGAN_NARROW), out=out)
    _, result, log = resume_one_step("stargan_v2", out, "synthetic:shapes-k3", tmp_path / "run",
                                     30)
    assert result.step == 31
    assert "imported from clovaai/stargan-v2: discriminator: not in the files given" in log
    assert "generator: not in the files given: starts as a copy of generator_ema" in log
    assert "fresh Adam states" in log
