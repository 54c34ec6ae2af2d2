"""MUNIT: the official architecture, losses, schedule; fused and reference backends agree."""

from __future__ import annotations

import copy

import pytest
import torch

from i2i_fast.methods import create_method
from i2i_fast.methods.munit import MUNIT, AdaINGen, MUNITConfig
from i2i_fast.nn import MultiScalePatchDiscriminator
from i2i_fast.optim import step_decay
from i2i_fast.testing import random_batch, run_steps


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_equal_the_official_implementation():
    cfg = MUNITConfig()
    gen = AdaINGen(3, cfg.gen)
    assert n_params(gen) == 15_026_187
    assert n_params(gen.enc_style) == 2_764_936
    assert n_params(gen.enc_content) == 5_385_856
    assert n_params(gen.dec) == 5_754_627
    assert n_params(gen.mlp) == 1_120_768
    d = cfg.dis
    dis = MultiScalePatchDiscriminator(3, d.dim, d.n_layer, d.num_scales, d.norm, d.activ,
                                       d.pad_type)
    assert n_params(dis) == 8_271_171
    assert n_params(dis.cnns[0]) == 2_757_057


def test_official_shapes():
    gen = AdaINGen(3, MUNITConfig().gen)
    with torch.no_grad():
        content, style = gen.encode(torch.randn(1, 3, 64, 64))
        assert content.shape == (1, 256, 16, 16) and style.shape == (1, 8, 1, 1)
        assert gen.decode(content, style).shape == (1, 3, 64, 64)


def test_named_configs_have_the_official_display_size():
    """configs/edges2shoes_folder.yaml and summer2winter_yosemite256_folder.yaml both set
    display_size 16 (the fixed styles of the sample grids, display_style_a/b)."""
    for name, recon_x_cyc_w in (("edges2shoes", 0.0), ("summer2winter", 10.0)):
        method = create_method("munit", config=name, overrides={"gen": {"dim": 8, "mlp_dim": 16},
                                                                "dis": {"dim": 8}})
        assert method.config.display_size == 16
        assert method.config.recon_x_cyc_w == recon_x_cyc_w
        assert method.display_style_a.shape == method.display_style_b.shape == (16, 8, 1, 1)
    assert MUNITConfig().display_size == 16


def test_checkpoints_of_the_former_display_size_default_still_load():
    """Checkpoints store the resolved config, so one written with the former default
    (display_size 8) rebuilds its (8, style_dim, 1, 1) display styles and loads."""
    from i2i_fast.config import to_dict
    from i2i_fast.train.translate import method_from_checkpoint

    small = {"gen": {"dim": 8, "mlp_dim": 16}, "dis": {"dim": 8}, "display_size": 8}
    old = create_method("munit", overrides=small)
    saved = {"method": "munit", "method_config": to_dict(old.config),
             "training_state": old.training_state()}
    loaded = method_from_checkpoint(saved, "old.pt")
    assert loaded.display_style_a.shape == (8, 8, 1, 1)
    torch.testing.assert_close(loaded.display_style_b, old.display_style_b, rtol=0, atol=0)


def test_learning_rate_schedule_matches_the_official_loop():
    """train.py steps the scheduler before each iteration: iteration i uses lr*0.5^((i+1)//100k)."""
    assert step_decay(0, 100_000, 0.5) == 1.0
    assert step_decay(99_998, 100_000, 0.5) == 1.0
    assert step_decay(99_999, 100_000, 0.5) == 0.5
    assert step_decay(199_999, 100_000, 0.5) == 0.25
    method = create_method("munit", "demo", overrides={"step_size": 2, "gamma": 0.1})
    opt = method.optimizers["gen"]
    lrs = []
    batch = tiny_batch(method.config, 2)
    for step in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        method.train_step(batch, step)
    base = method.config.lr
    assert lrs == pytest.approx([base, base * 0.1, base * 0.1, base * 0.01])


def tiny_batch(cfg: MUNITConfig, n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    return random_batch("unpaired", cfg, n, seed)


def tiny(**overrides) -> MUNIT:
    """The tiny configuration (i2i_fast's smallest official-structure MUNIT) from seed 0."""
    torch.manual_seed(0)
    return create_method("munit", "tiny", overrides=copy.deepcopy(overrides))


def test_generator_update_with_frozen_discriminators_is_the_official_update(monkeypatch):
    """The G update runs D frozen; the official code lets D's parameters take gradients there and
    discards them. Same generator update either way; D gets no gradient from the G update."""
    import contextlib

    import i2i_fast.methods.munit as munit_module

    def generator_step(official: bool):
        method = tiny()
        if official:  # D not frozen, called like the networks it trains
            monkeypatch.setattr(method, "frozen_critics", lambda *names: contextlib.nullcontext())
            monkeypatch.setattr(munit_module.MUNIT, "critics", property(lambda self: self.nets))
        batch = tiny_batch(method.config, 2)
        x_a, x_b = batch["a"], batch["b"]
        torch.manual_seed(1)
        losses = method._gen_update(x_a, x_b)
        monkeypatch.undo()
        dis_grads = [p.grad for p in [*method.dis_a.parameters(), *method.dis_b.parameters()]]
        return losses, method, dis_grads

    losses, method, dis_grads = generator_step(official=False)
    official_losses, official, official_dis_grads = generator_step(official=True)
    assert all(g is None for g in dis_grads)
    assert all(g is not None for g in official_dis_grads)
    assert all(p.requires_grad for p in method.dis_a.parameters())  # restored after the update
    for name in losses:
        assert float(losses[name]) == float(official_losses[name]), name
    for (name, p), q in zip(method.gen_a.named_parameters(), official.gen_a.parameters()):
        assert torch.equal(p, q), name


def test_cycle_loss_is_used_when_weighted():
    history = run_steps(tiny(recon_x_cyc_w=10.0), 1)
    assert "g_cycrecon_x_a" in history[0] and history[0]["g_cycrecon_x_a"] > 0


def test_losses_are_the_official_formulas():
    """Recompute one D loss from the networks (lsgan over every scale) and compare."""
    method = tiny()
    batch = tiny_batch(method.config, 2)
    state = copy.deepcopy(method.state_dict())
    torch.manual_seed(1)
    losses = method.train_step(batch, 0)
    method.load_state_dict(state)
    torch.manual_seed(1)
    s_a = torch.randn(2, 8, 1, 1)
    with torch.no_grad():
        c_b, _ = method.gen_b.encode(batch["b"])
        x_ba = method.gen_a.decode(c_b, s_a)
        expected = sum(torch.mean(f ** 2) + torch.mean((r - 1) ** 2)
                       for f, r in zip(method.dis_a(x_ba), method.dis_a(batch["a"])))
    assert float(losses["d_a"]) == pytest.approx(float(expected), rel=1e-5)


def test_translate_random_and_reference_styles():
    method = tiny()
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    g = torch.Generator().manual_seed(5)
    out = method.translate(x, n_styles=4, generator=g)
    assert out.shape == (3, 4, 3, 32, 32) and out.abs().max() <= 1
    again = method.translate(x, n_styles=4, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(out, again)
    assert not torch.allclose(out[:, 0], out[:, 1])  # different styles, different outputs
    ref = method.translate(x, reference=x[:1])
    assert ref.shape == (3, 1, 3, 32, 32)
    back = method.translate(x, n_styles=2, target_domain="a", generator=g)
    assert back.shape == (3, 2, 3, 32, 32)
    with pytest.raises(ValueError, match=r"target_domain: expected an index in \[0, 2\) or one of "
                                         r"\['a', 'b'\], got 2"):
        method.translate(x, target_domain=2)
    with pytest.raises(ValueError, match=r"reference: expected shape \(1 or 3, 3, H, W\), got "
                                         r"\(2, 3, 32, 32\)"):
        method.translate(x, reference=x[:2])
    with pytest.raises(ValueError, match="n_styles: a reference gives one style, expected 1"):
        method.translate(x, reference=x[:1], n_styles=2)
    assert method.training  # translate restores the mode


def test_sample_visuals():
    method = tiny()
    visuals = method.sample_visuals(tiny_batch(method.config, 2), torch.Generator().manual_seed(0))
    assert list(visuals) == ["x_a", "x_a_recon", "x_ab_fixed", "x_ab_random", "x_b",
                             "x_b_recon", "x_ba_fixed", "x_ba_random"]
    assert all(v.shape == (2, 3, 32, 32) for v in visuals.values())


def test_official_init():
    method = tiny()
    d_weights = torch.cat([m.weight.flatten() for m in method.dis_a.modules()
                           if isinstance(m, torch.nn.Conv2d)])
    assert abs(d_weights.std().item() - 0.02) < 0.003
    assert all((m.bias == 0).all() for m in method.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))


def test_invalid_configurations_are_refused():
    with pytest.raises(ValueError, match="vgg_w: expected 0"):
        create_method("munit", overrides={"vgg_w": 1.0})
    with pytest.raises(ValueError, match=r"dis.gan_type: expected 'lsgan' or 'nsgan', got 'hinge'"):
        create_method("munit", overrides={"dis": {"gan_type": "hinge"}})
    with pytest.raises(TypeError, match="config: expected MUNITConfig"):
        MUNIT({"lr": 1.0})


def test_compile_networks_uses_static_shapes_unless_told(monkeypatch):
    """Inductor (torch 2.14) fails to compile MUNIT's generator backward with dynamic shapes at
    the first recompilation ("Cannot convert expression to float"): static by default."""
    calls = []
    monkeypatch.setattr(torch.nn.Module, "compile",
                        lambda self, **options: calls.append(options))
    create_method("munit", config="tiny").compile_networks()
    assert calls and all(options["dynamic"] is False for options in calls)
    calls.clear()
    create_method("munit", config="tiny").compile_networks(dynamic=True)
    assert calls and all(options["dynamic"] is True for options in calls)
