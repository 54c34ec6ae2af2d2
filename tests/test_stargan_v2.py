"""StarGAN v2: the official architecture (parameter counts), blocks, losses, schedule, EMA,
translate; fused and reference backends agree over several iterations with R1."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from i2i_fast.methods.registry import resolve_config
from i2i_fast.methods.stargan_v2 import StarGANv2
from i2i_fast.nn import AdaINPreActResBlock, HighPass
from i2i_fast.nn.generators import PreActStyleGenerator as Generator
from i2i_fast.nn.multi_domain import MappingNetwork
from i2i_fast.nn.multi_domain import MultiHeadDiscriminator as Discriminator
from i2i_fast.nn.multi_domain import MultiHeadStyleEncoder as StyleEncoder
from i2i_fast.optim import lerp_parameters
from i2i_fast.testing import random_batch

# Tiny networks: 32x32, 3 domains, widths 8..16 (the official structure, far fewer channels).
TINY = StarGANv2.configs["tiny"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny networks gain nothing from threads, and a busy 2-core machine loses a lot."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make(overrides: dict | None = None, config: str | None = None, seed: int = 0) -> StarGANv2:
    torch.manual_seed(seed)
    return StarGANv2(resolve_config(StarGANv2, config, copy.deepcopy(overrides or TINY)))


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def tiny_batch(cfg, n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    return random_batch("multi_domain_reference", cfg, n, seed)


@pytest.mark.parametrize("name, w_hpf, domains, counts", [
    ("afhq", 0.0, 3, (33_892_995, 3_259_072, 20_949_760, 20_852_803)),
    ("celeba_hq", 1.0, 2, (43_467_395, 2_438_272, 20_916_928, 20_852_290)),
])
def test_parameter_counts_equal_the_official_implementation(name, w_hpf, domains, counts):
    cfg = resolve_config(StarGANv2, name)
    assert (cfg.w_hpf, cfg.num_domains, cfg.image_size) == (w_hpf, domains, 256)
    nets = (Generator(cfg.image_size, cfg.style_dim, cfg.max_conv_dim, cfg.w_hpf),
            MappingNetwork(cfg.latent_dim, cfg.style_dim, cfg.num_domains, cfg.hidden_dim),
            StyleEncoder(cfg.image_size, cfg.style_dim, cfg.num_domains, cfg.max_conv_dim),
            Discriminator(cfg.image_size, cfg.num_domains, cfg.max_conv_dim))
    assert tuple(n_params(n) for n in nets) == counts


def test_official_widths_and_shapes():
    gen = Generator(256, 64, 512, w_hpf=0.0)
    widths = [(b.conv1.in_channels, b.conv2.out_channels, b.downsample) for b in gen.encode]
    assert widths == [(64, 128, True), (128, 256, True), (256, 512, True), (512, 512, True),
                      (512, 512, False), (512, 512, False)]
    assert [b.upsample for b in gen.decode] == [False, False, True, True, True, True]
    assert gen.from_rgb.out_channels == 64 and gen.to_rgb[2].out_channels == 3
    assert len(Generator(256, 64, 512, w_hpf=1.0).encode) == 7
    method = make()
    cfg = method.config
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    y = torch.tensor([0, 2])
    with torch.no_grad():
        s = method.mapping_network(torch.randn(2, cfg.latent_dim), y)
        assert s.shape == (2, cfg.style_dim)
        assert method.style_encoder(x, y).shape == (2, cfg.style_dim)
        assert method.discriminator(x).shape == (2, 3)
        out = method.generator(x, s)
    assert out.shape == x.shape and out.abs().max() > 0  # no tanh: not squashed to [-1, 1]


def test_heads_are_selected_by_domain():
    torch.manual_seed(0)
    mapping = MappingNetwork(4, 8, 3, 16)
    z = torch.randn(3, 4)
    with torch.no_grad():
        h = mapping.shared(z)
        for d in range(3):
            got = mapping(z, torch.full((3,), d))
            torch.testing.assert_close(got, mapping.unshared[d](h))


def test_adain_block_divides_by_sqrt2_only_with_its_shortcut():
    torch.manual_seed(0)
    x, s = torch.randn(2, 8, 4, 4), torch.randn(2, 5)
    with_skip = AdaINPreActResBlock(8, 6, 5, upsample=True, shortcut=True)
    without = AdaINPreActResBlock(8, 6, 5, upsample=True, shortcut=False)
    without.load_state_dict(with_skip.state_dict())
    with torch.no_grad():
        residual = with_skip.residual(x, s)
        short = with_skip.conv1x1(torch.nn.functional.interpolate(x, scale_factor=2))
        torch.testing.assert_close(with_skip(x, s), (residual + short) / math.sqrt(2))
        torch.testing.assert_close(without(x, s), residual)
    assert not without.conv1x1.weight.requires_grad  # built (official counts), never used
    # AdaIN is (1 + gamma) * IN(x) + beta, gamma/beta from the block's Linear of s
    norm = with_skip.norm1
    with torch.no_grad():
        gamma, beta = norm.fc(s).chunk(2, dim=1)
        expected = torch.nn.functional.leaky_relu(
            (1 + gamma[..., None, None]) * torch.nn.functional.instance_norm(x)
            + beta[..., None, None], 0.2)
        torch.testing.assert_close(norm(x, s), expected, rtol=1e-5, atol=1e-5)


def test_high_pass_filter():
    hpf = HighPass(2.0)
    x = torch.randn(1, 3, 5, 5)
    kernel = torch.tensor([[-1.0, -1, -1], [-1, 8, -1], [-1, -1, -1]]) / 2.0
    expected = torch.nn.functional.conv2d(x, kernel.expand(3, 1, 3, 3), padding=1, groups=3)
    torch.testing.assert_close(hpf(x), expected)
    with pytest.raises(ValueError, match="w_hpf: expected a positive weight, got 0"):
        HighPass(0.0)


def test_high_pass_filter_is_the_official_persistent_buffer():
    """The official HighPass registers its kernel as the persistent buffer `filter`: an official
    generator state dict holds hpf.filter, and ours loads it strictly."""
    hpf = HighPass(2.0)
    kernel = torch.tensor([[-1.0, -1, -1], [-1, 8, -1], [-1, -1, -1]]) / 2.0
    assert list(hpf.state_dict()) == ["filter"]
    torch.testing.assert_close(hpf.state_dict()["filter"], kernel, rtol=0, atol=0)
    gen = Generator(32, 8, 16, w_hpf=1.0, dim_in=8, hpf_resolutions=(16, 32))
    official = {k: v.clone() for k, v in gen.state_dict().items()}
    assert "hpf.filter" in official
    Generator(32, 8, 16, w_hpf=1.0, dim_in=8, hpf_resolutions=(16, 32)).load_state_dict(official)
    # a filter made for another w_hpf belongs to another configuration
    other = dict(official, **{"hpf.filter": kernel})
    with pytest.raises(RuntimeError, match=r"hpf.filter: expected the high-pass kernel / w_hpf "
                                           r"for w_hpf = 1, got a filter for w_hpf = 2"):
        gen.load_state_dict(other)


def test_state_dicts_written_before_the_filter_was_persistent_still_load():
    """i2i_fast checkpoints written while the filter was not persistent have no hpf.filter key:
    they load strictly (the filter is the kernel of w_hpf) and translate as before."""
    method = make(HPF, seed=1)
    older = {k: v for k, v in method.training_state()["networks"].items()
             if not k.endswith("hpf.filter")}
    assert len(older) == len(method.state_dict()) - 2  # generator and generator_ema
    fresh = make(HPF, seed=2)
    fresh.load_state_dict(older)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    masks = half_masks(x)
    for ema in (True, False):
        a = method.translate(x, target_domain=1, masks=masks, ema=ema,
                             generator=torch.Generator().manual_seed(0))
        b = fresh.translate(x, target_domain=1, masks=masks, ema=ema,
                            generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(a, b, rtol=0, atol=0)


HPF = {**TINY, "w_hpf": 1.0, "num_domains": 2, "hpf_resolutions": [16, 32]}


def half_masks(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A mask callable for the tests: left half for mask_a, top half for mask_b."""
    n, _, h, w = x.shape
    a = torch.zeros(n, 1, h, w)
    a[..., : w // 2] = 1
    b = torch.zeros(n, 1, h, w)
    b[..., : h // 2, :] = 1
    return a.to(x.device), b.to(x.device)


def test_high_pass_skips_need_masks():
    method = make(HPF)
    batch = tiny_batch(method.config, 2)
    with pytest.raises(ValueError, match="needs the masks of the high-pass skips.*hpf_masks="):
        method.train_step(batch, 0)
    with pytest.raises(ValueError, match="translate: w_hpf = 1.0 needs the masks"):
        method.translate(batch["image"], target_domain=1)
    with pytest.raises(ValueError, match="masks: expected \\(mask_a, mask_b\\).*got None"):
        method.generator(batch["image"], torch.zeros(2, 8))
    method.mask_fn = half_masks
    losses = method.train_step(batch, 0)
    assert all(math.isfinite(float(v)) for v in losses.values())
    out = method.translate(batch["image"], n_styles=2, target_domain=1)
    assert out.shape == (2, 2, 3, 32, 32)
    # the masks matter: other masks, other outputs
    g = torch.Generator().manual_seed(0)
    a = method.translate(batch["image"], target_domain=0, generator=g, masks=half_masks(
        batch["image"]))
    zero = tuple(torch.zeros_like(m) for m in half_masks(batch["image"]))
    b = method.translate(batch["image"], target_domain=0, generator=torch.Generator()
                         .manual_seed(0), masks=zero)
    assert not torch.allclose(a, b)


def test_high_pass_masks_from_a_config_path_and_from_the_batch():
    method = make({**HPF, "hpf_masks": "test_stargan_v2:half_masks"})
    assert method.mask_fn is half_masks or method.mask_fn.__name__ == "half_masks"
    with pytest.raises(ValueError, match="hpf_masks: cannot import 'no_such_module:f'"):
        make({**HPF, "hpf_masks": "no_such_module:f"})
    method = make(HPF)
    batch = tiny_batch(method.config, 2)
    batch["hpf_mask_a"], batch["hpf_mask_b"] = half_masks(batch["image"])
    losses = method.train_step(batch, 0)
    assert all(math.isfinite(float(v)) for v in losses.values())
    batch["hpf_mask_b"] = batch["hpf_mask_b"][:1]
    with pytest.raises(ValueError, match=r"mask_b: expected shape \(2, 1, h, w\), got \(1, 1"):
        method.train_step(batch, 1)


def test_diversity_weight_is_a_pure_function_of_the_step():
    method = make({**TINY, "lambda_ds": 2.0, "ds_iter": 100_000})
    assert method.lambda_ds(0) == 2.0
    assert method.lambda_ds(50_000) == pytest.approx(1.0)
    assert method.lambda_ds(100_000) == 0.0
    assert method.lambda_ds(250_000) == 0.0  # clamped, never negative
    method = make()
    assert [method.lambda_ds(s) for s in (0, 5, 10, 11)] == pytest.approx([1.0, 0.5, 0.0, 0.0])
    losses = method.train_step(tiny_batch(method.config, 2), 5)
    assert losses["lambda_ds"] == pytest.approx(0.5)


def test_moving_average():
    torch.manual_seed(0)
    model, ema = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    expected = [p + 0.9 * (e - p) for p, e in zip(model.parameters(), ema.parameters())]
    lerp_parameters(model, ema, 0.9)
    for got, want in zip(ema.parameters(), expected):
        torch.testing.assert_close(got, want.detach())


def test_ema_follows_the_networks_after_each_iteration():
    method = make({**TINY, "ema_beta": 0.9})
    # official start: the EMA copies were taken before the He initialisation
    assert not torch.equal(method.generator.from_rgb.weight, method.generator_ema.from_rgb.weight)
    before = {k: v.clone() for k, v in method.generator_ema.state_dict().items()}
    method.train_step(tiny_batch(method.config, 2), 0)
    for name, value in method.generator.state_dict().items():
        expected = value + 0.9 * (before[name] - value)
        torch.testing.assert_close(method.generator_ema.state_dict()[name], expected)
    assert not any(p.requires_grad for p in method.generator_ema.parameters())
    copied = make({**TINY, "ema_init": "copy"})
    assert torch.equal(copied.generator.from_rgb.weight, copied.generator_ema.from_rgb.weight)


def test_he_init_and_optimizers():
    method = make()
    layers = [m for m in method.discriminator.modules() if isinstance(m, torch.nn.Conv2d)]
    first = layers[0].weight  # kaiming_normal_, fan_in, relu gain: std sqrt(2 / fan_in)
    assert first.std().item() == pytest.approx(math.sqrt(2 / 27), rel=0.2)
    assert all((m.bias == 0).all() for net in method.training_networks().values()
               for m in net.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) and m.bias is not None)
    groups = {k: o.param_groups[0] for k, o in method.optimizers.items()}
    assert groups["mapping_network"]["lr"] == 1e-6 and groups["generator"]["lr"] == 1e-4
    assert all(g["betas"] == (0.0, 0.99) and g["weight_decay"] == 1e-4
               for g in groups.values())


def test_the_discriminator_loss_is_the_official_formula():
    """Recompute the latent-guided D losses, R1 included, from the networks."""
    method = make()
    batch = tiny_batch(method.config, 2)
    state = copy.deepcopy(method.state_dict())
    torch.manual_seed(1)
    losses = method.train_step(batch, 0)
    method.load_state_dict(state)
    torch.manual_seed(1)
    z_trg = torch.randn(2, method.config.latent_dim)
    x = batch["image"].clone().requires_grad_(True)
    y_org, y_trg = batch["domain"], batch["ref_domain"]
    out = method.discriminator(x)[torch.arange(2), y_org]
    real = torch.nn.functional.binary_cross_entropy_with_logits(out, torch.ones(2))
    (grad,) = torch.autograd.grad(out.sum(), x)
    reg = 0.5 * grad.pow(2).reshape(2, -1).sum(1).mean()
    with torch.no_grad():
        fake = method.generator(batch["image"], method.mapping_network(z_trg, y_trg))
        fake_out = method.discriminator(fake)[torch.arange(2), y_trg]
    fake_loss = torch.nn.functional.binary_cross_entropy_with_logits(fake_out, torch.zeros(2))
    real = real.detach()
    assert float(losses["d_latent_real"]) == pytest.approx(float(real), rel=1e-5)
    assert float(losses["d_latent_reg"]) == pytest.approx(float(reg), rel=1e-4)
    assert float(losses["d_latent_fake"]) == pytest.approx(float(fake_loss), rel=1e-5)


def test_translate_latent_and_reference_guided():
    method = make({**TINY, "domain_names": ["day", "night", "sunset"]})
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    out = method.translate(x, n_styles=4, target_domain=2, generator=torch.Generator()
                           .manual_seed(5))
    assert out.shape == (3, 4, 3, 32, 32)
    again = method.translate(x, n_styles=4, target_domain="sunset",
                             generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(out, again)
    assert not torch.allclose(out[:, 0], out[:, 1])
    other = method.translate(x, n_styles=4, target_domain=0,
                             generator=torch.Generator().manual_seed(5))
    assert not torch.allclose(out, other)  # the domain's head of the mapping network
    per_input = method.translate(x, n_styles=4, target_domain=torch.tensor([2, 0, 2]),
                                 generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(per_input[0], out[0])
    ref = method.translate(x, reference=x[:1], target_domain=1)
    assert ref.shape == (3, 1, 3, 32, 32)
    with torch.no_grad():  # reference-guided = G_ema(x, E_ema(ref, y))
        s = method.style_encoder_ema(x[:1].expand(3, -1, -1, -1), torch.ones(3, dtype=torch.long))
        torch.testing.assert_close(ref[:, 0], method.generator_ema(x, s).clamp(-1, 1))
    assert method.translate(x, reference=x, target_domain=1).shape == (3, 1, 3, 32, 32)
    with pytest.raises(ValueError, match=r"target_domain: expected an index in \[0, 3\) or one "
                                         r"of \['day', 'night', 'sunset'\], got 'dusk'"):
        method.translate(x, target_domain="dusk")
    with pytest.raises(ValueError, match=r"target_domain: expected an index in \[0, 3\) or one "
                                         r"of \['day', 'night', 'sunset'\], got 3"):
        method.translate(x, target_domain=3)
    with pytest.raises(ValueError, match="target_domain: expected the target domain"):
        method.translate(x)
    with pytest.raises(ValueError, match=r"reference: expected shape \(1 or 3, 3, H, W\), got "
                                         r"\(2, 3, 32, 32\)"):
        method.translate(x, reference=x[:2], target_domain=0)
    assert method.training  # translate restores the mode


def test_sample_visuals():
    method = make()
    visuals = method.sample_visuals(tiny_batch(method.config, 2),
                                    torch.Generator().manual_seed(0))
    assert list(visuals)[:4] == ["source", "reference", "reference_guided", "cycle"]
    assert [k for k in visuals if k.startswith("latent_")] == ["latent_0", "latent_1",
                                                               "latent_2"]
    assert all(v.shape == (2, 3, 32, 32) for v in visuals.values())


def test_invalid_configurations_are_refused():
    with pytest.raises(ValueError, match="image_size: expected a power of two"):
        make({**TINY, "image_size": 48})
    with pytest.raises(ValueError, match="domain_names: expected \\(\\) or 3 distinct names"):
        make({**TINY, "domain_names": ["a", "b"]})
    with pytest.raises(ValueError, match="hpf_masks: expected '' with w_hpf = 0"):
        make({**TINY, "hpf_masks": "x:y"})
    with pytest.raises(ValueError, match="ema_init: expected one of"):
        make({**TINY, "ema_init": "zeros"})


def test_bf16_channels_last_iteration_is_close_to_fp32():
    from i2i_fast.methods import RunContext

    losses = {}
    for precision, channels_last in (("fp32", False), ("bf16", True)):
        torch.manual_seed(0)
        method = StarGANv2(resolve_config(StarGANv2, None, copy.deepcopy(TINY)),
                           RunContext(device="cpu", precision=precision,
                                      channels_last=channels_last))
        torch.manual_seed(1)
        losses[precision] = {k: float(v) for k, v in
                             method.train_step(tiny_batch(method.config, 2), 0).items()}
        out = method.translate(torch.rand(2, 3, 32, 32), n_styles=2, target_domain=1)
        assert out.dtype == torch.float32 and torch.isfinite(out).all()
    for name in ("d_latent_real", "d_latent_fake", "g_latent_cyc", "g_ref_sty"):
        assert losses["bf16"][name] == pytest.approx(losses["fp32"][name], rel=0.05), name
