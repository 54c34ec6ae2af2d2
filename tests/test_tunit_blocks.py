"""TUNIT's blocks: the official parameter counts, FRN + TLU (ops.filter_response_norm: its
reference by hand, on every backend the automatic choice takes), the FRN pre-activation block, the guiding network, the decoder with
AdaIN in its upsampling convs and the 0.1-scaled residual blocks."""

from __future__ import annotations

import pytest
import torch

import i2i_fast.ops as ops
from i2i_fast.methods.tunit import TUNITConfig, discriminator
from i2i_fast.nn import (
    AdaINDecoder,
    ClassStyleStatistics,
    ContentStyleGenerator,
    FilterResponseNorm,
    FRNPreActResBlock,
    GuidingNetwork,
    ResBlock,
)
from i2i_fast.ops import filter_response_norm
from i2i_fast.nn.preact_resblocks import FLOAT32_RSQRT2


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("image_size, generator_count, discriminator_count",
                         [(128, 27_333_763, 70_935_242), (64, 7_143_299, 33_170_122)])
def test_parameter_counts_equal_the_official_implementation(image_size, generator_count,
                                                            discriminator_count):
    """K = 10, style 128 (main.py's defaults); built on the meta device (no memory, no init)."""
    cfg = TUNITConfig(image_size=image_size)
    with torch.device("meta"):
        assert n_params(GuidingNetwork(cfg.num_clusters, cfg.style_dim, cfg.guide_dim)) \
            == 9_296_778
        assert n_params(ContentStyleGenerator(image_size, cfg.style_dim, cfg.gen_dim,
                                              cfg.gen_res_blocks, cfg.mlp_dim)) == generator_count
        assert n_params(discriminator(cfg)) == discriminator_count


def test_official_shapes_and_state_dict_keys():
    gen = ContentStyleGenerator(64, 8, 4, 2, 16)
    with torch.no_grad():
        content = gen.encode(torch.randn(2, 3, 64, 64))
        assert content.shape == (2, 16, 16, 16)  # two downsamplings to 16x16 at 64²
        assert gen.decode(content, torch.randn(2, 8)).shape == (2, 3, 64, 64)
    # AdaIN in both ResBlocks (2 layers each) and both upsampling convs: [bias, weight] each
    assert gen.decoder.adain_channels == [16, 16, 16, 16, 8, 4]
    assert gen.mlp(torch.zeros(1, 8)).shape == (1, 2 * sum(gen.decoder.adain_channels))
    keys = set(discriminator(TUNITConfig(image_size=32, dis_dim=4, dis_max_dim=8,
                                         num_clusters=2)).state_dict())
    assert {"main.1.norm1.tau", "main.1.norm1.gamma", "main.1.norm1.beta",
            "main.2.conv1x1.weight"} <= keys
    guide = set(GuidingNetwork(2, 4, 2).state_dict())
    assert {"features.0.weight", "features.1.running_mean", "disc.weight", "cont.bias"} <= guide


def frn_by_hand(x, weight, bias, tau, eps):
    out = torch.empty_like(x)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            plane = x[n, c]
            nu2 = (plane * plane).sum() / plane.numel()
            value = weight[c] * plane / torch.sqrt(nu2 + eps) + bias[c]
            out[n, c] = torch.where(value > tau[c], value, tau[c])
    return out


def test_filter_response_norm_values():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 7, dtype=torch.float64)
    weight, bias, tau = (torch.randn(3, dtype=torch.float64) for _ in range(3))
    for eps in (1e-6, 0.5):
        torch.testing.assert_close(filter_response_norm(x, weight, bias, tau, eps),
                                   frn_by_hand(x, weight, bias, tau, eps), rtol=1e-12, atol=1e-12)


def test_filter_response_norm_gradients_and_second_order():
    """x, weight, bias and tau all get gradients (gradgradcheck: R1 goes through D twice)."""
    torch.manual_seed(1)
    inputs = (torch.randn(2, 3, 4, 3, dtype=torch.float64, requires_grad=True),
              torch.randn(3, dtype=torch.float64, requires_grad=True),
              torch.randn(3, dtype=torch.float64, requires_grad=True),
              torch.full((3,), -0.3, dtype=torch.float64, requires_grad=True))
    assert torch.autograd.gradcheck(filter_response_norm, inputs)
    assert torch.autograd.gradgradcheck(filter_response_norm, inputs)


def test_filter_response_norm_channels_last_and_non_contiguous():
    torch.manual_seed(2)
    x = torch.randn(2, 4, 6, 6)
    w, b, t = torch.rand(4) + 0.5, torch.randn(4), torch.randn(4) * 0.1
    expected = filter_response_norm(x, w, b, t)
    torch.testing.assert_close(
        filter_response_norm(x.to(memory_format=torch.channels_last), w, b, t), expected)
    wide = torch.randn(2, 4, 6, 12)
    torch.testing.assert_close(filter_response_norm(wide[..., ::2], w, b, t),
                               filter_response_norm(wide[..., ::2].contiguous(), w, b, t))


def test_filter_response_norm_module_keeps_the_official_parameters():
    norm = FilterResponseNorm(5)
    assert [(n, tuple(p.shape)) for n, p in norm.named_parameters()] == [
        ("tau", (1, 5, 1, 1)), ("gamma", (1, 5, 1, 1)), ("beta", (1, 5, 1, 1))]
    x = torch.randn(2, 5, 3, 3)
    # at init (gamma 1, beta 0, tau 0): max(x / rms(x), 0)
    rms = x.pow(2).mean(dim=(2, 3), keepdim=True).add(1e-6).sqrt()
    torch.testing.assert_close(norm(x), (x / rms).clamp_min(0))


def test_frn_block_is_the_official_act_first_block():
    """rsqrt(2) · (shortcut + residual); residual = FRN → conv → avgpool → FRN → conv; shortcut
    = 1x1 conv (no bias) → avgpool; rsqrt(2) is float32's 0.70710677."""
    assert FLOAT32_RSQRT2 == float(torch.tensor(2.0).rsqrt())
    assert FLOAT32_RSQRT2 != 2 ** -0.5
    torch.manual_seed(3)
    block = FRNPreActResBlock(2, 4, downsample=True).double()
    for p in block.parameters():
        torch.nn.init.normal_(p, 0.3, 0.2)
    x = torch.randn(2, 2, 8, 8, dtype=torch.float64)
    h = block.conv1(block.norm1(x))
    h = block.conv2(block.norm2(torch.nn.functional.avg_pool2d(h, 2)))
    short = torch.nn.functional.avg_pool2d(block.conv1x1(x), 2)
    assert block.conv1x1.bias is None
    torch.testing.assert_close(block(x), FLOAT32_RSQRT2 * (short + h))


def test_residual_scale_of_the_blocks():
    torch.manual_seed(4)
    scaled, plain = ResBlock(4, residual_scale=0.1), ResBlock(4)
    plain.load_state_dict(scaled.state_dict())
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(scaled(x), x + 0.1 * (plain(x) - x))
    with pytest.raises(ValueError, match="upsample_norm"):
        AdaINDecoder(1, 1, 8, 3, upsample_norm="bn")


def test_guiding_network_stat_updates_equal_repeated_passes():
    """One pass with stat_updates=n leaves the BatchNorm statistics of n passes on the batch."""
    torch.manual_seed(5)
    once = GuidingNetwork(3, 4, 2).double()
    repeated = GuidingNetwork(3, 4, 2).double()
    repeated.load_state_dict(once.state_dict())
    x = torch.randn(4, 3, 32, 32, dtype=torch.float64)
    style, logits = once(x, stat_updates=3)
    for _ in range(3):
        expected = repeated(x)
    torch.testing.assert_close(style, expected[0])
    torch.testing.assert_close(logits, expected[1])
    for (name, a), (_, b) in zip(once.state_dict().items(), repeated.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14, msg=name)
    assert once.features[1].momentum == 0.1  # restored
    with pytest.raises(ValueError, match="stat_updates"):
        once(x, stat_updates=0)


def plain_vgg_trunk(dim: int) -> torch.nn.Sequential:
    """The official trunk with stock modules (BatchNorm2d, ReLU, MaxPool2d), as TUNIT builds it."""
    from i2i_fast.nn.guiding import VGG11

    layers, channels = [], 3
    for item in VGG11:
        if item == "M":
            layers.append(torch.nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [torch.nn.Conv2d(channels, item * dim, 3, padding=1),
                       torch.nn.BatchNorm2d(item * dim), torch.nn.ReLU()]
            channels = item * dim
    return torch.nn.Sequential(*layers)


@pytest.mark.parametrize("backend", [
    pytest.param("cpu", marks=pytest.mark.skipif(
        ops.get_backend("cpu").unavailable_reason() is not None, reason="extension not loaded")),
    "reference"])
def test_guiding_trunk_on_fused_blocks_equals_the_stock_modules(backend):
    """The trunk's fused BatchNorm+ReLU and max pooling against the official stock modules,
    loaded from its state dict (the same keys): features, the gradients of the input and of
    every parameter, and the running statistics after two training passes, in float64."""
    torch.manual_seed(11)
    guide = GuidingNetwork(3, 4, 2).double()
    plain = plain_vgg_trunk(2).double()
    plain.load_state_dict(guide.features.state_dict())
    for m in list(guide.features.modules()) + list(plain.modules()):  # non-trivial affine
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
            torch.nn.init.uniform_(m.bias, -0.3, 0.3)
    plain.load_state_dict(guide.features.state_dict())
    x = torch.randn(4, 3, 33, 35, dtype=torch.float64)  # odd sides: floor pooling
    for _ in range(2):
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        with ops.use_backend(backend):
            got = guide.features(xa)
        want = plain(xb)
        grad = torch.randn_like(want)
        got.backward(grad)
        want.backward(grad)
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-9, atol=1e-12)
    for (name, a), (_, b) in zip(guide.features.named_parameters(), plain.named_parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-12, msg=name)
    for (name, a), (_, b) in zip(guide.features.state_dict().items(),
                                 plain.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14, msg=name)


def test_guiding_network_over_clustering_head():
    """overclusters adds a third head on the same pooled features; without it, asking for its
    logits is refused by name."""
    torch.manual_seed(0)
    plain = GuidingNetwork(3, 4, 2).eval()
    x = torch.randn(2, 3, 32, 32)
    with pytest.raises(ValueError, match="with_overclusters: this network has no"):
        plain(x, with_overclusters=True)
    guide = GuidingNetwork(3, 4, 2, overclusters=7).eval()
    assert set(guide.state_dict()) - set(plain.state_dict()) == {"disc_over.weight",
                                                                 "disc_over.bias"}
    style, logits, over = guide(x, with_overclusters=True)
    assert over.shape == (2, 7)
    torch.testing.assert_close(over, guide.disc_over(guide.pooled(x)))
    for a, b in zip(guide(x), (style, logits)):
        torch.testing.assert_close(a, b)


def test_class_style_statistics_are_the_per_class_mean_and_std():
    torch.manual_seed(6)
    styles = torch.randn(9, 4, dtype=torch.float64)
    labels = torch.tensor([0, 2, 0, 2, 2, 0, 0, 2, 2])
    stats = ClassStyleStatistics(3, 4).double()
    stats.add(styles[:5], labels[:5])
    stats.add(styles[5:], labels[5:])  # plain sums: the same as one batch
    mean, std = stats.mean_and_std()
    for k in (0, 2):
        group = styles[labels == k]
        torch.testing.assert_close(mean[k], group.mean(0))
        torch.testing.assert_close(std[k], group.std(0, unbiased=False))
    # class 1 has no styles: mean 0, std 1, and it is named
    torch.testing.assert_close(mean[1], torch.zeros(4, dtype=torch.float64))
    torch.testing.assert_close(std[1], torch.ones(4, dtype=torch.float64))
    assert stats.empty_classes(torch.tensor([2, 1, 0, 1])) == [1]
    # decay: the old statistics weigh `decay` each
    stats.reset()
    stats.add(styles[:1], labels[:1])
    stats.add(styles[2:3], labels[2:3], decay=0.5)
    torch.testing.assert_close(stats.mean_and_std()[0][0], (0.5 * styles[0] + styles[2]) / 1.5)
    # draws: the mean first, then mean + std * N(0, 1) with the generator's numbers
    stats.add(styles, labels)
    draws = stats.draws(torch.tensor([2, 0]), 3, torch.Generator().manual_seed(1))
    assert draws.shape == (6, 4)
    mean, std = stats.mean_and_std()
    noise = torch.randn(2, 3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(draws[0], mean[2])
    torch.testing.assert_close(draws[4], mean[0] + std[0] * noise[1, 1])
