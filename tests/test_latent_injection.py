"""latent_conv2d and latent_conv_transpose2d (the references of the fused ops.latent_conv2d and
ops.latent_conv_transpose2d, tested in test_latent_conv2d.py and test_latent_conv_transpose2d.py),
LatentConv2d and LatentConvTranspose2d.

The decomposition tests pin down what the fused operator must compute: the convolution of x with
the x part of the weight, plus a z term that is a per-(sample, output channel) constant with
reflect padding and a border-dependent map (sum over the valid taps) with zero padding.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from i2i_fast import ops
from i2i_fast.nn import (
    LatentConv2d,
    LatentConvTranspose2d,
    broadcast_concat,
    latent_conv2d,
    latent_conv_transpose2d,
)

SHAPES = [  # (N, C_x, C_z, H, W, C_out, kernel, stride, padding)
    (2, 3, 8, 9, 7, 5, 4, 2, 1),  # BicycleGAN's down conv on odd sizes
    (1, 4, 2, 8, 8, 3, 3, 1, 1),
    (2, 5, 3, 7, 10, 4, 3, 2, 0),
    (3, 2, 1, 6, 5, 2, 1, 1, 0),  # 1x1 conv
    (1, 3, 2, 11, 9, 2, 5, 2, 2),
]


def explicit(x, z, weight, bias, stride, padding, padding_mode):
    """The concatenation written out by hand."""
    n, _, h, w = x.shape
    xz = torch.cat([x, z.view(n, -1, 1, 1).repeat(1, 1, h, w)], 1)
    if padding_mode == "reflect":
        return F.conv2d(F.pad(xz, [padding] * 4, mode="reflect"), weight, bias, stride)
    return F.conv2d(xz, weight, bias, stride, padding)


def random_case(shape, seed=0, dtype=torch.float64):
    n, cx, cz, h, w, cout, k, stride, padding = shape
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, cx, h, w, generator=g, dtype=dtype)
    z = torch.randn(n, cz, generator=g, dtype=dtype)
    weight = torch.randn(cout, cx + cz, k, k, generator=g, dtype=dtype)
    bias = torch.randn(cout, generator=g, dtype=dtype)
    return x, z, weight, bias, stride, padding


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect"])
@pytest.mark.parametrize("shape", SHAPES)
def test_equals_the_concatenation(shape, padding_mode):
    x, z, weight, bias, stride, padding = random_case(shape)
    got = latent_conv2d(x, z, weight, bias, stride, padding, padding_mode)
    torch.testing.assert_close(got, explicit(x, z, weight, bias, stride, padding, padding_mode),
                               rtol=1e-12, atol=1e-12)
    nobias = latent_conv2d(x, z, weight, None, stride, padding, padding_mode)
    torch.testing.assert_close(nobias, got - bias.view(1, -1, 1, 1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect"])
@pytest.mark.parametrize("shape", SHAPES)
def test_decomposes_into_the_x_conv_plus_a_z_term(shape, padding_mode):
    """What the fused operator computes: conv(x, W_x) + z term, without the H x W z map."""
    x, z, weight, bias, stride, padding = random_case(shape, seed=1)
    cx = x.shape[1]
    w_x, w_z = weight[:, :cx], weight[:, cx:]
    if padding_mode == "reflect":
        x_part = F.conv2d(F.pad(x, [padding] * 4, mode="reflect"), w_x, bias, stride)
        # every tap is inside: a per-(sample, output channel) constant
        z_term = (z @ w_z.sum((2, 3)).T)[:, :, None, None]
    else:
        x_part = F.conv2d(x, w_x, bias, stride, padding)
        # border[o, c, i, j] = sum of W_z[o, c] over the taps that land inside the input
        ones = torch.ones(1, 1, *x.shape[2:], dtype=x.dtype)
        border = torch.cat([F.conv2d(ones, w_z[:, c:c + 1], None, stride, padding)
                            for c in range(w_z.shape[1])])  # (C_z, C_out, H_out, W_out)
        z_term = torch.einsum("nc,cohw->nohw", z, border)
        interior = (z @ w_z.sum((2, 3)).T)
        if padding == 0:  # no tap falls outside: the constant everywhere
            torch.testing.assert_close(z_term, interior[:, :, None, None].expand_as(z_term))
    torch.testing.assert_close(latent_conv2d(x, z, weight, bias, stride, padding, padding_mode),
                               x_part + z_term, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect"])
def test_gradients_of_x_z_weight_bias(padding_mode):
    x, z, weight, bias, stride, padding = random_case((2, 2, 3, 5, 6, 3, 4, 2, 1), seed=2)
    inputs = [t.requires_grad_() for t in (x, z, weight, bias)]
    assert torch.autograd.gradcheck(
        lambda *a: latent_conv2d(*a, stride, padding, padding_mode), inputs)
    assert torch.autograd.gradgradcheck(
        lambda *a: latent_conv2d(*a, stride, padding, padding_mode), inputs)


def test_channels_last_and_non_contiguous_inputs():
    x, z, weight, bias, stride, padding = random_case((2, 4, 3, 8, 8, 5, 4, 2, 1), seed=3)
    expected = latent_conv2d(x, z, weight, bias, stride, padding)
    cl = latent_conv2d(x.contiguous(memory_format=torch.channels_last), z, weight, bias, stride,
                       padding)
    strided = latent_conv2d(x.transpose(2, 3).contiguous().transpose(2, 3), z.T.contiguous().T,
                            weight, bias, stride, padding)
    torch.testing.assert_close(cl, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(strided, expected, rtol=1e-12, atol=1e-12)


def test_latent_conv2d_module_is_the_conv_over_the_concatenation():
    torch.manual_seed(0)
    conv = LatentConv2d(3, 8, 6, 4, 2, 1)
    plain = torch.nn.Conv2d(11, 6, 4, 2, 1)
    assert isinstance(conv, torch.nn.Conv2d)
    assert conv.weight.shape == plain.weight.shape and set(conv.state_dict()) == {"weight", "bias"}
    conv.load_state_dict(plain.state_dict())  # an existing Conv2d's parameters serve unchanged
    x, z = torch.randn(2, 3, 10, 12), torch.randn(2, 8)
    torch.testing.assert_close(conv(x, z), plain(torch.cat([x, z[:, :, None, None].expand(
        -1, -1, 10, 12)], 1)))
    reflect = LatentConv2d(3, 2, 4, 3, 1, 1, padding_mode="reflect")
    assert reflect(x, z[:, :2]).shape == (2, 4, 10, 12)
    assert "latent_channels=8" in repr(conv)


def test_bad_inputs_are_named():
    x, z, weight, bias = torch.randn(2, 3, 8, 8), torch.randn(2, 8), torch.randn(4, 11, 4, 4), \
        torch.randn(4)
    with pytest.raises(ValueError, match=r"z: expected shape \(2, C_z\).*got \(3, 8\)"):
        latent_conv2d(x, torch.randn(3, 8), weight)
    with pytest.raises(ValueError, match=r"z: expected shape \(2, C_z\).*got \(2, 8, 1, 1\)"):
        latent_conv2d(x, z[:, :, None, None], weight)
    with pytest.raises(ValueError, match=r"weight: expected shape \(C_out, 11, k_h, k_w\)"):
        latent_conv2d(x, z, torch.randn(4, 10, 4, 4))
    with pytest.raises(ValueError, match=r"x: expected shape \(N, C_x, H, W\)"):
        latent_conv2d(x[0], z, weight)
    with pytest.raises(ValueError, match=r"bias: expected None or shape \(4,\)"):
        latent_conv2d(x, z, weight, torch.randn(5))
    with pytest.raises(ValueError, match="padding_mode: expected one of 'zeros', 'reflect'"):
        latent_conv2d(x, z, weight, bias, 1, 1, "circular")
    with pytest.raises(ValueError, match="reflect padding needs padding < H"):
        latent_conv2d(torch.randn(2, 3, 2, 2), z, weight, bias, 1, 2, "reflect")
    with pytest.raises(ValueError, match="stride: expected an int >= 1"):
        latent_conv2d(x, z, weight, bias, 0)
    with pytest.raises(TypeError, match=r"z: expected a floating tensor \(float16"):
        latent_conv2d(x, torch.ones(2, 8, dtype=torch.int64), weight)
    with pytest.raises(ValueError, match="LatentConv2d: padding_mode"):
        LatentConv2d(3, 8, 4, 3, padding_mode="replicate")


def test_latent_conv_transpose2d_is_the_transposed_conv_over_the_concatenation():
    """DRIT's G_concat: ConvTranspose2d(cat[x, z broadcast]) (3x3 stride 2 padding 1
    output_padding 1, and 1x1); the module's parameters are those of the plain layer."""
    torch.manual_seed(0)
    x, z = torch.randn(2, 5, 6, 7, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
    xz = torch.cat([x, z[:, :, None, None].expand(-1, -1, 6, 7)], 1)
    up = LatentConvTranspose2d(5, 3, 4, 3, 2, 1, output_padding=1).double()
    plain = torch.nn.ConvTranspose2d(8, 4, 3, 2, 1, 1).double()
    assert isinstance(up, torch.nn.ConvTranspose2d) and set(up.state_dict()) == {"weight", "bias"}
    up.load_state_dict(plain.state_dict())
    with ops.use_backend("reference"):  # the concatenation: the plain layer's result exactly
        torch.testing.assert_close(up(x, z), plain(xz), rtol=0, atol=0)
    torch.testing.assert_close(up(x, z), plain(xz), rtol=1e-12, atol=1e-12)  # the fused op
    assert up(x, z).shape == (2, 4, 12, 14) and "latent_channels=3" in repr(up)
    # the z term of a 1x1 stride-1 kernel is a per-sample bias W_z[:, :, 0, 0].T @ z
    last = LatentConvTranspose2d(5, 3, 2, 1).double()
    w_x, w_z = last.weight[:5], last.weight[5:, :, 0, 0]
    split = (F.conv_transpose2d(x, w_x, last.bias) + (z @ w_z)[:, :, None, None])
    torch.testing.assert_close(last(x, z), split, rtol=1e-12, atol=1e-12)
    # stride 2: the z term depends on the parity of the output position and on the last row
    # and column only (the taps falling outside the input there)
    term = latent_conv_transpose2d(torch.zeros_like(x), z, up.weight, None, 2, 1, 1)
    torch.testing.assert_close(term[:, :, 1:-1:2, 1:-1:2], term[:, :, 1:2, 1:2].expand(
        -1, -1, 5, 6))
    torch.testing.assert_close(term[:, :, 0:-1:2, 0:-1:2], term[:, :, 0:1, 0:1].expand(
        -1, -1, 6, 7))


def test_latent_conv_transpose2d_bad_inputs_are_named():
    x, z = torch.randn(2, 3, 8, 8), torch.randn(2, 8)
    weight = torch.randn(11, 4, 3, 3)
    with pytest.raises(ValueError, match=r"latent_conv_transpose2d: weight: expected shape "
                                         r"\(11, C_out, k_h, k_w\)"):
        latent_conv_transpose2d(x, z, torch.randn(4, 11, 3, 3))
    with pytest.raises(ValueError, match=r"latent_conv_transpose2d: bias: expected None or "
                                         r"shape \(4,\)"):
        latent_conv_transpose2d(x, z, weight, torch.randn(11))
    with pytest.raises(ValueError, match=r"output_padding: expected an int in \[0, stride 2\)"):
        latent_conv_transpose2d(x, z, weight, None, 2, 1, 2)
    with pytest.raises(ValueError, match=r"latent_conv_transpose2d: z: expected shape \(2, C_z\)"):
        latent_conv_transpose2d(x, torch.randn(3, 8), weight)
    with pytest.raises(ValueError, match=r"broadcast_concat: z: expected shape \(2, C_z\)"):
        broadcast_concat(x, torch.randn(2, 8, 1))


def test_latent_conv_transpose2d_gradients():
    torch.manual_seed(0)
    inputs = (torch.randn(2, 2, 3, 4, dtype=torch.float64, requires_grad=True),
              torch.randn(2, 2, dtype=torch.float64, requires_grad=True),
              torch.randn(4, 3, 3, 3, dtype=torch.float64, requires_grad=True),
              torch.randn(3, dtype=torch.float64, requires_grad=True))
    assert torch.autograd.gradcheck(lambda *a: latent_conv_transpose2d(*a, 2, 1, 1), inputs,
                                    fast_mode=True)


def test_latent_conv_transpose2d_without_latent_channels_is_the_plain_layer():
    """BicycleGAN's up convs: LatentConvTranspose2d(C, 0, ...) called with x alone is
    nn.ConvTranspose2d (same parameters and keys), on both backends; the reference then
    convolves x itself, without a concatenation copy."""
    torch.manual_seed(0)
    up = LatentConvTranspose2d(64, 0, 16, 4, 2, 1).double()
    plain = torch.nn.ConvTranspose2d(64, 16, 4, 2, 1).double()
    plain.load_state_dict(up.state_dict())
    x = torch.randn(2, 64, 2, 3, dtype=torch.float64)
    with ops.use_backend("reference"):
        torch.testing.assert_close(up(x), plain(x), rtol=0, atol=0)
        assert ops.reference.latent_conv_transpose2d(x, x.new_empty(2, 0), up.weight) \
            .grad_fn.name() == "ConvolutionBackward0"  # no CatBackward below it
    torch.testing.assert_close(up(x), plain(x), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"LatentConvTranspose2d: z: expected \(N, 3\) latent "
                                         r"codes, got None"):
        LatentConvTranspose2d(64, 3, 16, 4, 2, 1)(x)
