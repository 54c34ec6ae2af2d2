"""DRIT's blocks on the fused ops equal their stock-PyTorch construction (the official code's).
The latent convolutions themselves are tested in test_latent_injection.py."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import i2i_fast.ops as ops
from i2i_fast.nn import (
    ContentDiscriminator,
    ContentEncoder,
    ConvTranspose2dBlock,
    GaussianNoise,
    LatentConcatResBlock,
    LatentFusionResBlock,
    PreActDownBlock,
    VariationalResNetEncoder,
    broadcast_concat,
    init_weights,
)


def test_preact_down_block_with_reflection_padding_is_drits_basic_block():
    """BasicBlock (norm None): conv = [LReLU, RP1, conv3x3, LReLU, RP1, conv3x3, AvgPool2],
    shortcut = [AvgPool2, conv1x1]."""
    torch.manual_seed(0)
    block = PreActDownBlock(4, 6, normalize=False, pad_type="reflect")
    x = torch.randn(2, 4, 9, 8)
    h = F.leaky_relu(x, 0.2)
    h = F.conv2d(F.pad(h, (1,) * 4, mode="reflect"), block.conv1.weight, block.conv1.bias)
    h = F.leaky_relu(h, 0.2)
    h = F.conv2d(F.pad(h, (1,) * 4, mode="reflect"), block.conv2.weight, block.conv2.bias)
    expected = F.avg_pool2d(h, 2) + block.conv1x1(F.avg_pool2d(x, 2))
    torch.testing.assert_close(block(x), expected)
    assert block(x).shape == (2, 6, 4, 4)
    zero = PreActDownBlock(4, 6, normalize=False)  # BicycleGAN's padding, unchanged
    zero.load_state_dict(block.state_dict())
    assert zero.conv1.padding == (1, 1) and block.conv1.padding == (0, 0)
    assert not torch.allclose(zero(x), block(x))


def test_drits_attribute_encoder_widths_reflection_padding_and_global_pooling():
    """E_attr_concat: RP1 + 4x4 s2 conv, BasicBlocks 64 → 128 → 192 → 256, LReLU, global average
    pooling (any input size), fc / fcVar."""
    torch.manual_seed(0)
    enc = VariationalResNetEncoder(3, 8, 64, n_blocks=4, max_mult=4, normalize=False, pool=None,
                                   pad_type="reflect")
    assert [b.conv2.out_channels for b in enc.blocks] == [128, 192, 256]
    assert enc.input_size is None and enc.conv.padding == (0, 0)
    x = torch.randn(2, 3, 32, 40)
    mu, logvar = enc(x)
    assert mu.shape == logvar.shape == (2, 8)
    h = F.leaky_relu(enc.blocks(enc.conv(F.pad(x, (1,) * 4, mode="reflect"))), 0.2)
    h = F.adaptive_avg_pool2d(h, 1).flatten(1)
    torch.testing.assert_close(mu, enc.fc(h))
    torch.testing.assert_close(logvar, enc.fc_var(h))


def test_drit_content_branch_options():
    branch = ContentEncoder(2, 1, 3, 8, "in", "relu", "reflect", down_kernel=3,
                            first_norm="none", first_activation="lrelu", negative_slope=0.01)
    first, down = branch.model[0], branch.model[1]
    assert first.norm is None and isinstance(first.activation, torch.nn.LeakyReLU)
    assert first.activation.negative_slope == 0.01
    assert down.conv.kernel_size == (3, 3) and down.conv.stride == (2, 2)
    assert branch(torch.randn(1, 3, 20, 20)).shape == (1, 32, 5, 5)
    with pytest.raises(ValueError, match="down_kernel: expected 3 or 4, got 5"):
        ContentEncoder(2, 1, 3, 8, down_kernel=5)


def test_conv_transpose_block_is_convt_then_drits_layer_norm_then_relu():
    torch.manual_seed(0)
    block = ConvTranspose2dBlock(6, 4, 3, 2, 1, 1, norm="ln_standard", activation="relu")
    with torch.no_grad():
        block.norm.weight.uniform_(0.5, 1.5)
        block.norm.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, 6, 5, 7)
    y = block.conv(x)
    assert y.shape == (2, 4, 10, 14)
    ln = F.layer_norm(y, y.shape[1:], block.norm.weight[:, None, None].expand(y.shape[1:]),
                      block.norm.bias[:, None, None].expand(y.shape[1:]))
    torch.testing.assert_close(block(x), torch.relu(ln), rtol=1e-5, atol=1e-5)


def test_latent_resblocks_are_the_official_ones():
    torch.manual_seed(0)
    x, z = torch.randn(2, 6, 5, 5), torch.randn(2, 3)
    res = LatentConcatResBlock(6, 3)
    xz = broadcast_concat(x, z)
    h = F.relu(F.instance_norm(F.conv2d(F.pad(xz, (1,) * 4, mode="reflect"),
                                        res.conv1.weight, res.conv1.bias)))
    h = F.instance_norm(F.conv2d(F.pad(h, (1,) * 4, mode="reflect"), res.conv2.conv.weight,
                                 res.conv2.conv.bias))
    torch.testing.assert_close(res(x, z), xz + h, rtol=1e-5, atol=1e-5)
    mis = LatentFusionResBlock(6, 6)
    code = torch.randn(2, 6)

    def conv_in(block, t):
        return F.instance_norm(F.conv2d(F.pad(t, (1,) * 4, mode="reflect"), block.conv.weight,
                                        block.conv.bias))

    def fuse(conv1, conv2, t):
        return F.relu(conv2.conv(F.relu(F.conv2d(broadcast_concat(t, code), conv1.weight,
                                                 conv1.bias))))

    o2 = fuse(mis.fuse1, mis.out1, conv_in(mis.conv1, x))
    expected = fuse(mis.fuse2, mis.out2, conv_in(mis.conv2, o2)) + x
    torch.testing.assert_close(mis(x, code), expected, rtol=1e-5, atol=1e-5)


def test_content_discriminator_map_sizes():
    dc = ContentDiscriminator(8, 8, 1)
    assert dc(torch.randn(2, 8, 12, 12)).shape == (2, 1, 1, 1)
    assert dc(torch.randn(2, 8, 16, 16)).shape == (2, 1, 3, 3)
    for size in range(1, 70):
        assert ContentDiscriminator.output_size(size, 3) == (
            ContentDiscriminator(1, 1, 3)(torch.zeros(1, 1, size, size)).shape[-1]
            if ContentDiscriminator.output_size(size, 3) else 0)


def test_gaussian_noise_is_layout_independent():
    x = torch.zeros(2, 3, 4, 5)
    noise = GaussianNoise()
    torch.manual_seed(1)
    a = noise(x)
    torch.manual_seed(1)
    b = noise(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(a, b)
    assert GaussianNoise().eval()(x) is x


def test_init_weights_can_leave_linears_and_biases_alone():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Linear(4, 4))
    linear_before = net[1].weight.clone()
    bias_before = net[0].bias.clone()
    init_weights(net, "gaussian", linear=False, zero_bias=False)
    assert torch.equal(net[1].weight, linear_before) and torch.equal(net[0].bias, bias_before)
    init_weights(net, "gaussian")
    assert (net[0].bias == 0).all() and not torch.equal(net[1].weight, linear_before)


def test_blocks_agree_on_the_reference_backend():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    blocks = [PreActDownBlock(4, 6, pad_type="reflect").double(),
              ConvTranspose2dBlock(4, 2, 3, 2, 1, 1, "ln_standard", "relu").double()]
    for block in blocks:
        fused = block(x)
        with ops.use_backend("reference"):
            reference = block(x)
        torch.testing.assert_close(fused, reference, rtol=1e-10, atol=1e-12)
