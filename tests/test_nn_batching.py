"""nn.in_one_batch: several calls of a per-sample network as one, split back; and DRIT's content
encoder, whose shared block runs once over both domains."""

from __future__ import annotations

import pytest
import torch

from i2i_fast.nn import (
    AttributeEncoders,
    MultiScalePatchDiscriminator,
    SharedContentEncoder,
    in_one_batch,
)


def close(got, expected):
    if expected is None:
        assert got is None
    elif isinstance(expected, torch.Tensor):
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    else:
        assert type(got) is type(expected) and len(got) == len(expected)
        for g, e in zip(got, expected):
            close(g, e)


def test_multi_scale_outputs_split_back_per_call():
    torch.manual_seed(0)
    d = MultiScalePatchDiscriminator(3, 4, 2, 3, "in", "lrelu", "reflect").double()
    xs = [torch.randn(n, 3, 32, 32, dtype=torch.float64) for n in (1, 2, 1)]
    parts = in_one_batch(d, *xs)
    assert len(parts) == 3
    for part, x in zip(parts, xs):
        close(part, d(x))
        assert [o.shape[0] for o in part] == [x.shape[0]] * 3


def test_several_arguments_and_nested_tuples_with_none():
    torch.manual_seed(1)
    variational = AttributeEncoders(3, 1, 8, 4, variational=True).double()
    deterministic = AttributeEncoders(3, 1, 8, 4, variational=False).double()
    calls = [(torch.randn(n, 3, 24, 24, dtype=torch.float64),
              torch.randn(n, 1, 24, 24, dtype=torch.float64)) for n in (1, 3)]
    for encoders in (variational, deterministic):
        parts = in_one_batch(encoders.encode, *calls)
        for part, call in zip(parts, calls):
            close(part, encoders.encode(*call))
    assert in_one_batch(deterministic.encode, *calls)[0][0][1] is None


def test_gradients_reach_every_call():
    torch.manual_seed(2)
    conv = torch.nn.Conv2d(2, 3, 3, padding=1).double()
    x, y = (torch.randn(n, 2, 5, 5, dtype=torch.float64, requires_grad=True) for n in (2, 1))
    out_x, out_y = in_one_batch(conv, x, y)
    (out_x.square().sum() + 3 * out_y.sum()).backward()
    gx, gy = torch.autograd.grad(conv(x).square().sum() + 3 * conv(y).sum(), (x, y))
    close((x.grad, y.grad), (gx, gy))


def test_one_call_is_the_plain_call():
    conv = torch.nn.Conv2d(2, 3, 1)
    x = torch.randn(2, 2, 4, 4)
    [out] = in_one_batch(conv, x)
    torch.testing.assert_close(out, conv(x), rtol=0, atol=0)


@pytest.mark.parametrize("calls, message", [
    ((), r"calls: expected at least one, got none"),
    (((torch.zeros(1, 2), torch.zeros(1, 2)), (torch.zeros(1, 2),)),
     r"calls\[1\]: expected 2 argument\(s\) like calls\[0\], got 1"),
    (((torch.zeros(1, 2), torch.zeros(2, 2)),), r"calls\[0\]: expected arguments with one batch "
     r"size, got batch sizes \[1, 2\]"),
])
def test_bad_calls_are_named(calls, message):
    with pytest.raises(ValueError, match=message):
        in_one_batch(lambda *args: args[0], *calls)


def test_an_output_of_another_kind_is_named():
    with pytest.raises(TypeError, match=r"network output: expected tensors, None, or lists or "
                                        r"tuples of those, got dict"):
        in_one_batch(lambda x: {"x": x}, torch.zeros(1, 2), torch.zeros(1, 2))


def test_the_content_encoder_runs_its_shared_block_once_with_the_official_noise_order():
    """encode(a, b) = (encode_a(a), encode_b(b)) drawn from the same seed: the shared block runs
    over both batches at once and the noise of a is still drawn before that of b."""
    torch.manual_seed(3)
    enc = SharedContentEncoder(3, 1, 4, 1).double()
    a = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    b = torch.randn(1, 1, 16, 16, dtype=torch.float64)
    batches = []
    enc.shared[0].register_forward_hook(lambda module, args, out: batches.append(len(out)))
    torch.manual_seed(4)
    got = enc.encode(a, b)
    assert batches == [3]
    torch.manual_seed(4)
    expected = (enc.encode_a(a), enc.encode_b(b))
    close(got, expected)
    # images of different sizes: one domain at a time, same draws
    c = torch.randn(1, 1, 20, 20, dtype=torch.float64)
    torch.manual_seed(5)
    got = enc.encode(a, c)
    torch.manual_seed(5)
    close(got, (enc.encode_a(a), enc.encode_b(c)))
