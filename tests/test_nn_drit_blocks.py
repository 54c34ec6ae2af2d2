"""DRIT's blocks on the fused ops equal their stock-PyTorch construction (the official code's), and
the latent-injection seam computes what the fused latent-convolution operator will."""

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
    LatentConcatConv,
    LatentConcatResBlock,
    LatentFusionResBlock,
    ResidualDownBlock,
    VariationalEncoder,
    broadcast_concat,
    init_weights,
)


def test_broadcast_concat_and_latent_concat_conv_equal_cat_then_conv():
    x, z = torch.randn(2, 5, 6, 7), torch.randn(2, 3)
    xz = broadcast_concat(x, z)
    assert xz.shape == (2, 8, 6, 7)
    torch.testing.assert_close(xz[:, 5:], z[:, :, None, None].expand(2, 3, 6, 7))
    conv = LatentConcatConv(5, 3, 4, 3, 1, 1, "reflect")
    expected = F.conv2d(F.pad(xz, (1, 1, 1, 1), mode="reflect"), conv.conv.weight,
                        conv.conv.bias)
    torch.testing.assert_close(conv(x, z), expected)
    up = LatentConcatConv(5, 3, 4, 3, 2, 1, transposed=True, output_padding=1)
    torch.testing.assert_close(up(x, z), F.conv_transpose2d(xz, up.conv.weight, up.conv.bias, 2,
                                                            1, 1))
    with pytest.raises(ValueError, match=r"broadcast_concat: z: expected shape \(2, D\), got "
                                         r"\(3, 3\)"):
        broadcast_concat(x, torch.randn(3, 3))
    with pytest.raises(ValueError, match="LatentConcatConv: expected x with 5 channels"):
        conv(torch.randn(2, 4, 6, 7), z)


def test_the_code_term_of_a_reflection_padded_latent_conv_is_a_per_sample_bias():
    """The identity the fused operator uses: with reflection padding the broadcast code's channels
    are constant over the padded map, so conv(pad(cat[x, z])) = conv(pad(x), W_x) + b + (Σ over
    the kernel taps of W_z) · z, exactly; with zero padding only the valid taps count at the
    border (and a 1x1 conv is always the per-sample bias)."""
    torch.manual_seed(0)
    x, z = torch.randn(2, 4, 5, 6, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
    conv = LatentConcatConv(4, 3, 6, 3, 2, 1, "reflect").double()
    w_x, w_z = conv.conv.weight[:, :4], conv.conv.weight[:, 4:]
    split = (F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), w_x, conv.conv.bias, 2)
             + (z @ w_z.sum(dim=(2, 3)).t())[:, :, None, None])
    torch.testing.assert_close(conv(x, z), split, rtol=1e-12, atol=1e-12)
    zero = LatentConcatConv(4, 3, 6, 3, 1, 1, "zero").double()
    w_x, w_z = zero.conv.weight[:, :4], zero.conv.weight[:, 4:]
    ones = torch.ones(1, 1, 5, 6, dtype=torch.float64)
    taps = F.conv2d(F.pad(ones, (1, 1, 1, 1)), torch.ones(1, 1, 3, 3, dtype=torch.float64))
    assert taps[0, 0, 0, 0] == 4 and taps[0, 0, 2, 2] == 9  # corner, interior
    border_aware = F.conv2d(F.pad(broadcast_concat(x, z), (1, 1, 1, 1)), zero.conv.weight,
                            zero.conv.bias)
    torch.testing.assert_close(zero(x, z), border_aware)


def test_residual_down_block_is_drits_basic_block():
    """BasicBlock (norm None): conv = [LReLU, RP1, conv3x3, LReLU, RP1, conv3x3, AvgPool2],
    shortcut = [AvgPool2, conv1x1]."""
    torch.manual_seed(0)
    block = ResidualDownBlock(4, 6, "none", "reflect", 0.2)
    x = torch.randn(2, 4, 9, 8)
    h = F.leaky_relu(x, 0.2)
    h = F.conv2d(F.pad(h, (1,) * 4, mode="reflect"), block.conv1.conv.weight, block.conv1.conv.bias)
    h = F.leaky_relu(h, 0.2)
    h = F.conv2d(F.pad(h, (1,) * 4, mode="reflect"), block.conv2.conv.weight, block.conv2.conv.bias)
    expected = F.avg_pool2d(h, 2) + block.shortcut(F.avg_pool2d(x, 2))
    torch.testing.assert_close(block(x), expected)
    assert block(x).shape == (2, 6, 4, 4)
    with_norm = ResidualDownBlock(4, 6, "in", "zero")
    assert with_norm(x).shape == (2, 6, 4, 4)
    with pytest.raises(ValueError, match="ResidualDownBlock: norm: expected 'none' or 'in'"):
        ResidualDownBlock(4, 6, "ln")


def test_variational_encoder_widths_and_heads():
    enc = VariationalEncoder(3, 8, dim=64)
    widths = [m.conv2.conv.out_channels for m in enc.conv if isinstance(m, ResidualDownBlock)]
    assert widths == [128, 192, 256]
    mu, logvar = enc(torch.randn(2, 3, 32, 40))
    assert mu.shape == logvar.shape == (2, 8)


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
                                        res.conv1.conv.weight, res.conv1.conv.bias)))
    h = F.instance_norm(F.conv2d(F.pad(h, (1,) * 4, mode="reflect"), res.conv2.conv.weight,
                                 res.conv2.conv.bias))
    torch.testing.assert_close(res(x, z), xz + h, rtol=1e-5, atol=1e-5)
    mis = LatentFusionResBlock(6, 6)
    code = torch.randn(2, 6)

    def conv_in(block, t):
        return F.instance_norm(F.conv2d(F.pad(t, (1,) * 4, mode="reflect"), block.conv.weight,
                                        block.conv.bias))

    def fuse(conv1, conv2, t):
        return F.relu(conv2.conv(F.relu(conv1.conv(broadcast_concat(t, code)))))

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
    blocks = [ResidualDownBlock(4, 6, "in", "zero").double(),
              ConvTranspose2dBlock(4, 2, 3, 2, 1, 1, "ln_standard", "relu").double()]
    for block in blocks:
        fused = block(x)
        with ops.use_backend("reference"):
            reference = block(x)
        torch.testing.assert_close(fused, reference, rtol=1e-10, atol=1e-12)
