"""MISO: networks and counts at the default (MUNIT-sized) configuration, the losses against their
formulas written out, the MILO / L1 self-reconstruction switch, the conformance check, the
reference and fused backends in float64, translation both ways with random and reference styles.

There is no official code to compare with (i2i_fast/methods/miso.py says what the design follows
and what it decides); the counts are MUNIT's blocks with MISO's heads, computed by hand below.
"""

from __future__ import annotations

import copy

import pytest
import torch

from i2i_fast.methods import resolve_config
from i2i_fast.methods.miso import MISO, ConditionalGenerator, MISOConfig, style_encoder
from i2i_fast.nn import MultiScalePatchDiscriminator
from i2i_fast.testing import (
    FLOAT64,
    check_method,
    default_dtype,
    loss_differences,
    random_batch,
    train_losses,
)

STYLE_ENCODER = 2_764_936 + 256 * 8 + 8  # MUNIT's, with a 2 * style_dim head: 2,766,992
CONTENT_ENCODER = 5_385_856  # MUNIT's; AdaIN adds no parameters of its own
MLP = 8 * 256 + 256 + 256 * 256 + 256 + 256 * 4096 + 4096  # 8 -> 256 -> 256 -> 2 * 8 * 256
DECODER = 5_754_627  # MUNIT's
DISCRIMINATOR = 8_271_171  # MUNIT's


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def tiny(**overrides) -> MISO:
    torch.manual_seed(0)
    return MISO(resolve_config(MISO, "tiny", copy.deepcopy(overrides)))


def test_parameter_counts_at_the_default_configuration():
    cfg = MISOConfig()
    assert STYLE_ENCODER == 2_766_992 and MLP == 1_120_768
    assert n_params(style_encoder(3, cfg.gen)) == STYLE_ENCODER
    gen = ConditionalGenerator(3, 3, cfg.gen)
    assert n_params(gen.enc_content) == CONTENT_ENCODER
    assert n_params(gen.mlp_content) == MLP
    assert n_params(gen.dec) == DECODER
    assert n_params(gen.mlp) == MLP
    assert n_params(gen) == 13_382_019
    d = cfg.dis
    assert n_params(MultiScalePatchDiscriminator(3, d.dim, d.n_layer, d.num_scales, d.norm,
                                                 d.activ, d.pad_type)) == DISCRIMINATOR
    # the whole method: 2 style encoders, 2 directions, 2 discriminators
    assert 2 * (STYLE_ENCODER + 13_382_019 + DISCRIMINATOR) == 48_840_364


def test_shapes_at_the_default_configuration():
    cfg = MISOConfig()
    torch.manual_seed(0)
    enc, gen = style_encoder(3, cfg.gen), ConditionalGenerator(3, 3, cfg.gen)
    with torch.no_grad():
        x = torch.randn(2, 3, 64, 64)
        mu, logvar = enc(x)
        assert mu.shape == logvar.shape == (2, 8, 1, 1)
        z = torch.randn(2, 8)
        content = gen.enc_content(x, gen.mlp_content(z))
        assert content.shape == (2, 256, 16, 16)
        assert gen(x, z).shape == (2, 3, 64, 64)


def test_check_method_passes():
    """(The L1 ablation differs only in one loss term: its training runs are checked by the
    float64 backend test and the formula test below.)"""
    check_method(MISO)


def test_reference_and_fused_backends_agree_in_float64():
    for self_recon in ("milo", "l1"):
        config = resolve_config(MISO, "tiny", {"self_recon": self_recon})
        fused, m_fused = train_losses(MISO, config, 3, "cpu", torch.float64)
        reference, m_ref = train_losses(MISO, config, 3, "reference", torch.float64)
        problems = loss_differences(fused, reference, FLOAT64)
        assert not problems, "\n".join(problems)
        x = random_batch("unpaired", config, 2, seed=9, dtype=torch.float64)["a"]
        with default_dtype(torch.float64):
            for method in (m_fused, m_ref):
                method.outputs = method.translate(x, n_styles=2,
                                                  generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(m_fused.outputs, m_ref.outputs, rtol=1e-6, atol=1e-6)


def replay_generator_update(method: MISO, batch: dict, seed: int):
    """The losses of one generator update, and the state and random seed before it."""
    state = copy.deepcopy(method.state_dict())
    torch.manual_seed(seed)
    losses, _ = method._gen_update(batch["a"], batch["b"])
    method.load_state_dict(state)
    return losses


@pytest.mark.parametrize("self_recon", ["milo", "l1"])
def test_generator_losses_are_their_formulas(self_recon):
    """Replay the draws of one generator update (eps_a, eps_b, then the prior codes r_a, r_b)
    and compute every term from the networks with the formulas written out."""
    method = tiny(self_recon=self_recon)
    batch = random_batch("unpaired", method.config, 2, seed=3)
    losses = replay_generator_update(method, batch, seed=7)
    x_a, x_b = batch["a"], batch["b"]
    torch.manual_seed(7)
    eps_a, eps_b = torch.randn(2, 8), torch.randn(2, 8)
    r_a, r_b = torch.randn(2, 8), torch.randn(2, 8)
    with torch.no_grad():
        mu_a, logvar_a = (t.flatten(1) for t in method.style_a(x_a))
        mu_b, logvar_b = (t.flatten(1) for t in method.style_b(x_b))
        z_a = mu_a + eps_a * torch.exp(logvar_a / 2)
        z_b = mu_b + eps_b * torch.exp(logvar_b / 2)
        x_ba, x_ab = method.gen_ba(x_b, z_a), method.gen_ab(x_a, z_b)
        expected = {
            "g_kl_a": (-0.5 * (1 + logvar_a - mu_a ** 2 - logvar_a.exp())).sum(1).mean(),
            "g_cyc_a": (method.gen_ba(x_ab, z_a) - x_a).abs().mean(),
            "g_cyc_b": (method.gen_ab(x_ba, z_b) - x_b).abs().mean(),
            "g_latent_a": (method.style_a(method.gen_ba(x_b, r_a))[0].flatten(1) - r_a)
            .abs().mean(),
        }
        if self_recon == "milo":
            mu, logvar = (t.flatten(1) for t in method.style_a(x_ba))
            nll = 0.5 * logvar + (z_a - mu) ** 2 / (2 * logvar.exp())  # per dimension
            expected["g_milo_a"] = nll.sum(1).mean()
            assert "g_recon_x_a" not in losses
        else:
            expected["g_recon_x_a"] = (method.gen_ba(x_a, z_a) - x_a).abs().mean()
            assert "g_milo_a" not in losses
        x_ba_prior = method.gen_ba(x_b, r_a)
        expected["g_adv_a"] = sum(((o - 1) ** 2).mean()
                                  for fake in (x_ba, x_ba_prior) for o in method.dis_a(fake))
    for name, value in expected.items():
        assert float(losses[name]) == pytest.approx(float(value), rel=1e-5), name
    cfg = method.config
    recon = (cfg.milo_w * (losses["g_milo_a"] + losses["g_milo_b"]) if self_recon == "milo"
             else cfg.recon_x_w * (losses["g_recon_x_a"] + losses["g_recon_x_b"]))
    total = (recon + cfg.gan_w * (losses["g_adv_a"] + losses["g_adv_b"])
             + cfg.kl_w * (losses["g_kl_a"] + losses["g_kl_b"])
             + cfg.cyc_w * (losses["g_cyc_a"] + losses["g_cyc_b"])
             + cfg.latent_w * (losses["g_latent_a"] + losses["g_latent_b"]))
    assert float(losses["g_total"]) == pytest.approx(float(total), rel=1e-6)


def test_discriminator_sees_both_stages_fakes_after_the_generator_update():
    """D's loss: for each stage's fakes (IFI, FIF), LSGAN fake + real terms; computed on the
    fakes of the generator pass (detached), after the generator's step."""
    method = tiny()
    batch = random_batch("unpaired", method.config, 2, seed=4)
    torch.manual_seed(5)
    _, fakes = method._gen_update(batch["a"], batch["b"])
    state = copy.deepcopy(method.state_dict())
    losses = method._dis_update(batch["a"], batch["b"], fakes)
    method.load_state_dict(state)
    assert [f.shape for f in fakes["a"]] == [batch["a"].shape] * 2
    assert all(not f.requires_grad for f in fakes["a"] + fakes["b"])
    with torch.no_grad():
        real = method.dis_a(batch["a"])
        expected = sum((o ** 2).mean() + ((r - 1) ** 2).mean()
                       for fake in fakes["a"] for o, r in zip(method.dis_a(fake), real))
    assert float(losses["d_a"]) == pytest.approx(float(expected), rel=1e-5)


def test_milo_trains_the_style_encoder_as_the_posterior():
    """MILO's gradient reaches the style encoder's log-variance head (through E_A(x_ba)); with
    the L1 self-reconstruction that head gets gradients only from the KL and the sampling."""
    for self_recon, milo_terms in (("milo", True), ("l1", False)):
        method = tiny(self_recon=self_recon, kl_w=0.0, gan_w=0.0, cyc_w=0.0, latent_w=0.0,
                      recon_x_w=0.0)
        batch = random_batch("unpaired", method.config, 2, seed=1)
        method._optimizers["gen"].step = lambda *a, **k: None  # keep the gradients to look at
        method._gen_update(batch["a"], batch["b"])
        head = method.style_a.model[-1].weight.grad
        logvar_rows = head[8:] if head is not None else None
        if milo_terms:
            assert logvar_rows is not None and logvar_rows.abs().sum() > 0
        else:
            assert logvar_rows is None or logvar_rows.abs().sum() == 0


def test_translate_random_and_reference_styles_both_directions():
    method = tiny()
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    for target, gen, enc in (("b", method.gen_ab, method.style_b),
                             ("a", method.gen_ba, method.style_a)):
        out = method.translate(x, n_styles=4, target_domain=target,
                               generator=torch.Generator().manual_seed(5))
        assert out.shape == (3, 4, 3, 32, 32) and out.abs().max() <= 1
        again = method.translate(x, n_styles=4, target_domain=target,
                                 generator=torch.Generator().manual_seed(5))
        torch.testing.assert_close(out, again)
        assert not torch.allclose(out[:, 0], out[:, 1])
        with torch.no_grad():
            z = torch.randn(12, 8, generator=torch.Generator().manual_seed(5))
            expected = gen(x.repeat_interleave(4, dim=0), z).reshape(3, 4, 3, 32, 32)
        torch.testing.assert_close(out, expected)
        ref = torch.rand(1, 3, 32, 32) * 2 - 1
        guided = method.translate(x, reference=ref, target_domain=target)
        with torch.no_grad():
            mu = enc(ref)[0].flatten(1).expand(3, -1)
            torch.testing.assert_close(guided[:, 0], gen(x, mu))
        per_input = method.translate(x, reference=x.flip(0), target_domain=target)
        assert per_input.shape == (3, 1, 3, 32, 32)
    assert method.training


def test_sample_visuals():
    method = tiny()
    visuals = method.sample_visuals(random_batch("unpaired", method.config, 2, seed=0),
                                    torch.Generator().manual_seed(0))
    assert list(visuals) == ["x_a", "x_ab_random", "x_ab_reference", "x_aba", "x_b",
                             "x_ba_random", "x_ba_reference", "x_bab"]
    assert all(v.shape == (2, 3, 16, 16) for v in visuals.values())


def test_named_configurations():
    demo, ablation = resolve_config(MISO, "demo"), resolve_config(MISO, "demo_l1")
    assert demo.self_recon == "milo" and ablation.self_recon == "l1"
    assert dataclasses_equal_except(demo, ablation, "self_recon")
    assert MISO.demo_config == "demo" and MISO.demo_data == "synthetic:shapes"
    assert MISOConfig().self_recon == "milo" and MISOConfig().lr == 1e-4


def dataclasses_equal_except(a, b, field: str) -> bool:
    import dataclasses

    return dataclasses.replace(a, **{field: getattr(b, field)}) == b


def test_invalid_configurations_are_refused():
    with pytest.raises(ValueError, match=r"miso: self_recon: expected one of \('milo', 'l1'\), "
                                         r"got 'l2'"):
        tiny(self_recon="l2")
    with pytest.raises(ValueError, match=r"miso: milo_w: expected a weight >= 0, got -1.0"):
        tiny(milo_w=-1.0)
    with pytest.raises(ValueError, match=r"miso: image_size: expected a multiple of 4"):
        tiny(image_size=30)
    with pytest.raises(TypeError, match="config: expected MISOConfig"):
        MISO({"lr": 1.0})
