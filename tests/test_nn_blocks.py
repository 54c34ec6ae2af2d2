"""Blocks on the fused ops equal their stock-PyTorch construction (the official code's)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import i2i_fast.ops as ops
from i2i_fast.nn import (
    AdaINDecoder,
    Conv2dBlock,
    MultiScalePatchDiscriminator,
    MunitLayerNorm,
    PreActDownBlock,
    VariationalResNetEncoder,
    init_weights,
    split_adain_params,
)


def munit_layer_norm_official(x, gamma, beta, eps=1e-5):
    """networks.LayerNorm.forward of NVlabs/MUNIT, written out."""
    shape = [-1] + [1] * (x.dim() - 1)
    if x.size(0) == 1:
        mean, std = x.view(-1).mean().view(*shape), x.view(-1).std().view(*shape)
    else:
        mean = x.view(x.size(0), -1).mean(1).view(*shape)
        std = x.view(x.size(0), -1).std(1).view(*shape)
    x = (x - mean) / (std + eps)
    return x * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)


def munit_adain_official(x, weight, bias, eps=1e-5):
    """networks.AdaptiveInstanceNorm2d.forward: batch_norm over a (1, N*C, H, W) view."""
    b, c = x.shape[:2]
    out = F.batch_norm(x.contiguous().view(1, b * c, *x.shape[2:]), torch.zeros(b * c),
                       torch.ones(b * c), weight.reshape(-1), bias.reshape(-1), True, 0.1, eps)
    return out.view(*x.shape)


@pytest.mark.parametrize("norm, activation", [("in", "relu"), ("in", "none"), ("ln", "relu"),
                                              ("none", "lrelu"), ("none", "tanh")])
def test_conv2d_block_equals_pad_conv_norm_activation(norm, activation):
    torch.manual_seed(0)
    block = Conv2dBlock(3, 6, 3, 1, 1, norm=norm, activation=activation, pad_type="reflect")
    x = torch.randn(2, 3, 9, 7)
    h = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), block.conv.weight, block.conv.bias)
    if norm == "in":
        h = F.instance_norm(h)
    elif norm == "ln":
        h = munit_layer_norm_official(h, block.norm.gamma, block.norm.beta)
    h = {"relu": F.relu, "lrelu": lambda t: F.leaky_relu(t, 0.2), "tanh": torch.tanh,
         "none": lambda t: t}[activation](h)
    torch.testing.assert_close(block(x), h, rtol=1e-4, atol=1e-5)


def test_conv2d_block_fuses_the_activation_into_the_norm():
    block = Conv2dBlock(3, 4, 3, 1, 1, norm="in", activation="relu")
    assert block.activation is None and block.norm.activation == "relu"
    block = Conv2dBlock(3, 4, 3, 1, 1, norm="none", activation="tanh")
    assert isinstance(block.activation, torch.nn.Tanh)


def test_munit_layer_norm_matches_the_official_formula_for_batch_one_and_more():
    ln = MunitLayerNorm(5)
    for n in (1, 3):
        x = torch.randn(n, 5, 6, 7)
        torch.testing.assert_close(ln(x), munit_layer_norm_official(x, ln.gamma, ln.beta),
                                   rtol=1e-5, atol=1e-5)
    assert (ln.gamma >= 0).all() and (ln.gamma <= 1).all() and (ln.beta == 0).all()


def test_adain_decoder_uses_munits_parameter_layout():
    """For each AdaIN layer in module order: first C values = bias, next C = weight."""
    torch.manual_seed(0)
    dec = AdaINDecoder(n_upsample=1, n_res=1, dim=4, out_channels=3)
    assert dec.adain_channels == [4, 4] and dec.num_adain_params == 16
    params = torch.randn(2, 16)
    pairs = split_adain_params(params, dec.adain_channels)
    torch.testing.assert_close(pairs[0][1], params[:, 0:4])  # bias of layer 1
    torch.testing.assert_close(pairs[0][0], params[:, 4:8])  # weight of layer 1
    torch.testing.assert_close(pairs[1][1], params[:, 8:12])
    # The first AdaIN ResBlock conv equals conv → official AdaIN with those slices → ReLU.
    content = torch.randn(2, 4, 5, 5)
    conv = dec.resblocks[0].conv1
    h = F.conv2d(F.pad(content, (1, 1, 1, 1), mode="reflect"), conv.conv.weight, conv.conv.bias)
    expected = F.relu(munit_adain_official(h, params[:, 4:8], params[:, 0:4]))
    torch.testing.assert_close(conv(content, pairs[0]), expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match=r"adain_params: expected shape \(N, 16\), got \(2, 15\)"):
        dec(content, torch.randn(2, 15))


def test_multiscale_discriminator_pyramid():
    torch.manual_seed(0)
    d = MultiScalePatchDiscriminator(3, dim=8, n_layer=2, num_scales=3)
    x = torch.randn(2, 3, 32, 32)
    outs = d(x)
    assert [tuple(o.shape) for o in outs] == [(2, 1, 8, 8), (2, 1, 4, 4), (2, 1, 2, 2)]
    x1 = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
    torch.testing.assert_close(outs[1], d.cnns[1](x1))


def test_blocks_run_on_the_reference_backend():
    torch.manual_seed(0)
    block = Conv2dBlock(3, 4, 3, 1, 1, norm="ln", activation="relu")
    x = torch.randn(2, 3, 8, 8)
    with ops.use_backend("reference"):
        ref = block(x)
    torch.testing.assert_close(block(x), ref, rtol=1e-4, atol=1e-5)


def test_init_weights():
    torch.manual_seed(0)
    d = init_weights(MultiScalePatchDiscriminator(3, dim=64, n_layer=2, num_scales=1), "gaussian")
    w = d.cnns[0][0].conv.weight
    assert abs(w.std().item() - 0.02) < 0.002 and (d.cnns[0][0].conv.bias == 0).all()
    g = init_weights(Conv2dBlock(64, 128, 3), "kaiming")
    expected = (2.0 / (64 * 9)) ** 0.5
    assert abs(g.conv.weight.std().item() / expected - 1) < 0.05
    with pytest.raises(ValueError, match="init: expected one of"):
        init_weights(g, "uniform")


def test_block_arguments_are_checked():
    with pytest.raises(ValueError, match=r"norm: expected one of none, in, ln, ln_standard, adain, "
                                         r"got 'bn'"):
        Conv2dBlock(3, 4, 3, norm="bn")
    with pytest.raises(ValueError, match="pad_type: expected one of"):
        Conv2dBlock(3, 4, 3, 1, 1, pad_type="circular")
    with pytest.raises(ValueError, match=r"adain: expected \(weight, bias\)"):
        Conv2dBlock(3, 4, 3, 1, 1, norm="adain")(torch.randn(1, 3, 4, 4))


def test_conv2d_block_zero_padding_is_the_convolutions_own():
    torch.manual_seed(0)
    block = Conv2dBlock(3, 5, 4, 2, 1, norm="in", activation="lrelu", pad_type="zero")
    assert isinstance(block.pad, torch.nn.Identity) and block.conv.padding == (1, 1)
    x = torch.randn(2, 3, 9, 8)
    expected = F.leaky_relu(F.instance_norm(F.conv2d(F.pad(x, (1, 1, 1, 1)), block.conv.weight,
                                                     block.conv.bias, 2)), 0.2)
    torch.testing.assert_close(block(x), expected, rtol=1e-4, atol=1e-5)


def test_pix2pix_multiscale_discriminator_halves_the_width_per_scale():
    d = MultiScalePatchDiscriminator(3, 8, n_layer=3, num_scales=2, norm="in", pad_type="zero",
                                     patch="pix2pix", scale_width="halved")
    convs = [[(b.conv.in_channels, b.conv.out_channels, b.conv.stride[0]) for b in cnn]
             for cnn in d.cnns]
    assert convs == [[(3, 8, 2), (8, 16, 2), (16, 32, 2), (32, 64, 1), (64, 1, 1)],
                     [(3, 4, 2), (4, 8, 2), (8, 16, 2), (16, 32, 1), (32, 1, 1)]]
    assert [b.norm_kind for b in d.cnns[0]] == ["none", "in", "in", "in", "none"]
    assert d.cnns[0][-1].activation is None
    outs = d(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 1, 6, 6), (1, 1, 2, 2)]
    with pytest.raises(ValueError, match="patch: expected one of munit, pix2pix"):
        MultiScalePatchDiscriminator(patch="nlayers")
    with pytest.raises(ValueError, match="scale_width: expected one of same, halved"):
        MultiScalePatchDiscriminator(scale_width="double")


def test_preact_down_block_is_bicyclegans_basic_block():
    torch.manual_seed(0)
    block = PreActDownBlock(4, 6)
    x = torch.randn(2, 4, 8, 6)

    def norm_act(t):
        return F.leaky_relu(F.instance_norm(t), 0.2)

    residual = F.avg_pool2d(block.conv2(norm_act(block.conv1(norm_act(x)))), 2)
    shortcut = block.conv1x1(F.avg_pool2d(x, 2))
    torch.testing.assert_close(block(x), residual + shortcut, rtol=1e-4, atol=1e-5)
    plain = PreActDownBlock(4, 6, normalize=False)
    assert not hasattr(plain, "norm1") and plain(x).shape == (2, 6, 4, 3)


def test_variational_encoder_pools_its_last_8x8_map():
    enc = VariationalResNetEncoder(3, 8, dim=4, n_blocks=3)
    assert enc.input_size == 64 and enc.out_channels == 12  # widths 4, 8, 12
    mu, logvar = enc(torch.randn(2, 3, 64, 64))
    assert mu.shape == logvar.shape == (2, 8)


def test_init_weights_gain():
    torch.manual_seed(0)
    conv = init_weights(torch.nn.Conv2d(64, 64, 4), "xavier", gain=0.02)
    expected = 0.02 * (2.0 / (2 * 64 * 16)) ** 0.5
    assert abs(conv.weight.std().item() / expected - 1) < 0.05
    with pytest.raises(ValueError, match="kaiming init takes no gain"):
        init_weights(conv, "kaiming", gain=0.5)
