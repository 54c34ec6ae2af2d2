"""The options of MUNIT's blocks that MISO uses: the stochastic style encoder's (mu, logvar) head
and the content encoder whose residual blocks take AdaIN from a style (i2i_fast.nn)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from i2i_fast.nn import AdaINResBlocks, ContentEncoder, StyleEncoder, split_adain_params


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_gaussian_style_encoder_is_munits_with_a_head_of_twice_the_width():
    """Same trunk; the last 1x1 conv gives 2 * style_dim channels: mu the first half, logvar the
    second. At MUNIT's size: 2,764,936 + 256 * 8 + 8 = 2,766,992 parameters."""
    assert n_params(StyleEncoder(4, 3, 64, 8, gaussian=True)) == 2_766_992
    assert n_params(StyleEncoder(4, 3, 64, 8)) == 2_764_936
    torch.manual_seed(0)
    gaussian = StyleEncoder(2, 3, 4, 3, gaussian=True)
    plain = StyleEncoder(2, 3, 4, 6)
    plain.load_state_dict(gaussian.state_dict())  # same keys, the head as wide
    x = torch.randn(2, 3, 16, 16)
    mu, logvar = gaussian(x)
    assert mu.shape == logvar.shape == (2, 3, 1, 1)
    both = plain(x)
    torch.testing.assert_close(mu, both[:, :3])
    torch.testing.assert_close(logvar, both[:, 3:])
    head = gaussian.model[-1]
    trunk = gaussian.model[:-1](x)
    torch.testing.assert_close(logvar, F.conv2d(trunk, head.weight[3:], head.bias[3:]))


def test_adain_content_encoder_has_munits_parameters_and_keys_before_its_resblocks():
    assert n_params(ContentEncoder(2, 4, 3, 64, res_norm="adain")) == 5_385_856
    assert n_params(ContentEncoder(2, 4, 3, 64)) == 5_385_856
    enc = ContentEncoder(2, 4, 3, 64, res_norm="adain")
    assert enc.num_adain_params == 2 * 8 * 256  # 4 blocks x 2 AdaIN layers x 256 channels
    assert ContentEncoder(2, 4, 3, 64).num_adain_params == 0


def test_adain_content_encoder_with_unit_modulation_is_munits_encoder():
    """AdaIN with weight 1 and bias 0 is the instance norm of MUNIT's ResBlocks: with the same
    weights the two encoders agree; other modulations change the output."""
    torch.manual_seed(0)
    plain = ContentEncoder(2, 2, 3, 4, pad_type="reflect")
    adain = ContentEncoder(2, 2, 3, 4, pad_type="reflect", res_norm="adain")
    n_conv = len(adain.model)
    state = {}
    for key, value in plain.state_dict().items():
        index, rest = key.split(".", 2)[1:]
        if int(index) < n_conv:
            state[key] = value
        else:
            state[f"resblocks.{int(index) - n_conv}.{rest}"] = value
    adain.load_state_dict(state)
    x = torch.randn(2, 3, 16, 16)
    channels = adain.resblocks.adain_channels
    unit = torch.cat([torch.cat([torch.zeros(2, c), torch.ones(2, c)], 1) for c in channels], 1)
    assert unit.shape == (2, adain.num_adain_params)
    expected = plain(x)
    torch.testing.assert_close(adain(x, unit), expected, rtol=1e-4, atol=1e-5)
    other = unit + 0.5 * torch.randn_like(unit)
    assert not torch.allclose(adain(x, other), expected, atol=1e-3)


def test_adain_resblocks_apply_each_blocks_slices_in_order():
    torch.manual_seed(0)
    blocks = AdaINResBlocks(2, 4, pad_type="reflect")
    assert blocks.adain_channels == [4, 4, 4, 4] and blocks.num_adain_params == 32
    x, params = torch.randn(2, 4, 6, 6), torch.randn(2, 32)
    pairs = split_adain_params(params, blocks.adain_channels)
    expected = blocks[1](blocks[0](x, pairs[0:2]), pairs[2:4])
    torch.testing.assert_close(blocks(x, params), expected)
    with pytest.raises(ValueError, match=r"adain_params: expected shape \(N, 32\), got \(2, 31\)"):
        blocks(x, params[:, :31])


def test_content_encoder_refuses_a_missing_or_unexpected_modulation():
    x = torch.randn(1, 3, 16, 16)
    with pytest.raises(ValueError, match=r"ContentEncoder\(res_norm='adain'\): adain_params: "
                                         r"expected shape \(N, 16\), got None"):
        ContentEncoder(1, 1, 3, 2, res_norm="adain")(x)
    with pytest.raises(ValueError, match="ContentEncoder: adain_params: expected None"):
        ContentEncoder(1, 1, 3, 2)(x, torch.zeros(1, 16))
    with pytest.raises(ValueError, match=r"ContentEncoder: res_norm: expected one of "
                                         r"\('same', 'adain'\), got 'in'"):
        ContentEncoder(1, 1, 3, 2, res_norm="in")
