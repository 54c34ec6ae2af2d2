"""DRIT++: the official architecture (counts, shapes, sizes), losses, schedules and update order;
translate (the method and the command); both attribute-injection modes pass check_method. (The
networks' outputs and whole iterations were also compared with the official code itself, in
float64 outside the project: README, "DRIT++".)"""

from __future__ import annotations

import copy
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import i2i_fast.ops as ops
from i2i_fast.losses import sigmoid_bce_loss
from i2i_fast.methods import RunContext, resolve_config
from i2i_fast.methods.drit import (
    DRIT,
    DRITConfig,
    content_discriminator_sizes,
    content_only,
    learning_rate_factor,
)
from i2i_fast.nn import ContentDiscriminator
from i2i_fast.testing import (
    FLOAT64,
    check_method,
    default_dtype,
    float32_tolerances,
    loss_differences,
    random_batch,
    train_losses,
)

MISINS = {"concat": False}


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def tiny(dtype: torch.dtype = torch.float32, seed: int = 0, **overrides) -> DRIT:
    with default_dtype(dtype):
        torch.manual_seed(seed)
        return DRIT(resolve_config(DRIT, "tiny", copy.deepcopy(overrides)))


def on_meta(config: str | None = None) -> DRIT:
    """The method at a named configuration (None: the defaults) on the meta device: its
    parameters and the shapes its networks compute, without memory or arithmetic (the 65M and 75M
    parameter networks build in a second instead of ten; their values are compared with the
    official networks' in float64 outside CI)."""
    with torch.device("meta"):
        return DRIT(resolve_config(DRIT, config), RunContext(device="meta"))


@pytest.fixture(scope="module")
def official():
    """The default (official) configuration, built once: 65M parameters."""
    return on_meta()


def test_parameter_counts_equal_the_official_implementation(official):
    """The numbers of the official classes (E_content, E_attr_concat, G_concat, MultiScaleDis,
    Dis_content of HsinYingLee/DRIT, built on the CPU), grouped as the official code groups them."""
    m = official
    assert n_params(m.enc_c) == 9_018_112
    assert n_params(m.enc_c.conv_a) == n_params(m.enc_c.conv_b) == 3_918_976
    assert n_params(m.enc_c.shared) == 1_180_160
    assert n_params(m.enc_a) == 2_688_160
    attr = m.enc_a.enc_a
    assert n_params(attr.conv) + n_params(attr.blocks) == 1_339_968  # E_attr_concat's conv
    assert n_params(m.enc_a.enc_a.fc) == n_params(m.enc_a.enc_a.fc_var) == 2_056
    assert n_params(m.gen) == 9_564_710
    assert n_params(m.gen.shared) == 1_180_160
    dec = m.gen.dec_a
    assert n_params(dec.res_first) + n_params(dec.res_rest) == 3_765_168  # decA1
    assert n_params(dec.up1) + n_params(dec.norm1) == 333_336  # decA2
    assert n_params(dec.up2) + n_params(dec.norm2) == 93_528  # decA3
    assert n_params(dec.to_image) == 243  # decA4
    for name in ("dis_a", "dis_a2", "dis_b", "dis_b2"):
        assert n_params(getattr(m, name)) == 8_271_171
        assert n_params(getattr(m, name).cnns[0]) == 2_757_057
    assert n_params(m.dis_content) == 10_683_649
    assert n_params(m) == 65_039_315
    assert n_params(m.enc_c) + n_params(m.enc_a) + n_params(m.gen) == 21_270_982


def test_parameter_counts_of_the_misins_configuration():
    m = on_meta("misins")
    assert n_params(m.enc_a) == 5_529_872
    assert n_params(m.enc_a.enc_a) == 2_764_936
    assert n_params(m.gen) == 17_146_374
    dec = m.gen.dec_a
    assert n_params(dec) == 8_573_187
    assert all(n_params(block) == 1_968_128 for block in dec.blocks) and len(dec.blocks) == 4
    assert n_params(dec.up) == 369_411 and n_params(dec.mlp) == 331_264
    assert n_params(m) == 75_462_691
    assert n_params(m.enc_c) + n_params(m.enc_a) + n_params(m.gen) == 31_694_358


def test_official_shapes_at_the_216_crop(official):
    m = official
    x = torch.empty(1, 3, 216, 216, device="meta")
    with m.evaluating():
        content = m.enc_c.encode_a(x)
        assert content.shape == (1, 256, 54, 54)
        assert m.dis_content(content).shape == (1, 1, 1, 1)  # flattened: (B,) in the official code
        assert [tuple(o.shape) for o in m.dis_a(x)] == [(1, 1, 13, 13), (1, 1, 6, 6), (1, 1, 3, 3)]
        mu, logvar = m.enc_a.encode_b(x)
        assert mu.shape == logvar.shape == (1, 8)
        assert m.gen.decode_b(content, mu).shape == (1, 3, 216, 216)
        # at 256 the official content discriminator's map is 2x2 (its flattened loss fails there)
        x = torch.empty(1, 3, 256, 256, device="meta")
        assert m.dis_content(m.enc_c.encode_a(x)).shape == (1, 1, 2, 2)


def test_content_discriminator_sizes_and_the_error_naming_them():
    assert ContentDiscriminator.output_size(54) == 1
    assert ContentDiscriminator.output_size(64) == 2
    assert ContentDiscriminator.output_size(52) == 0
    assert content_discriminator_sizes(3) == (212, 212, 240)
    assert content_discriminator_sizes(1) == (44, 44, 48)  # the tiny configuration: 48
    with pytest.raises(ValueError, match=r"image_size: expected >= 212 for a content "
                                         r"discriminator with content_dis_n_down = 3 \(its 1x1 "
                                         r"map, as the official 216 crop gives with 3, comes with "
                                         r"image sizes 212-240"):
        DRIT.check_config(DRITConfig(image_size=128))
    DRIT.check_config(DRITConfig(image_size=256))  # a 2x2 map: the averaged (patch) loss


def test_invalid_configurations_are_refused():
    cases = [({"dis_scale": 1}, "dis_scale: expected an int >= 2"),
             ({"batch_size": 1}, "batch_size: expected more than n_encoded"),
             ({"image_size": 218}, "image_size: expected a multiple of 4"),
             ({"lr_policy": "cosine"}, "lr_policy: expected one of"),
             ({"lr_policy": "step", "n_ep_decay": 0}, "n_ep_decay: expected -1"),
             ({"init": "uniform"}, "init: expected 'official' or one of"),
             ({"d_iter": 0}, "d_iter: expected an int >= 1")]
    for overrides, message in cases:
        with pytest.raises(ValueError, match=message):
            DRIT.check_config(resolve_config(DRIT, None, overrides))
    with pytest.raises(TypeError, match="config: expected DRITConfig"):
        DRIT({"lr": 1.0})


def test_official_init():
    """gaussian_weights_init: N(0, 0.02) for the Conv* weights; biases and Linear layers keep
    PyTorch's default init."""
    torch.manual_seed(0)
    m = DRIT(resolve_config(DRIT, "demo"))
    convs = [mod for mod in m.modules()
             if isinstance(mod, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    weights = torch.cat([c.weight.flatten() for c in convs])
    assert abs(weights.std().item() - 0.02) < 0.002
    assert all(c.bias.abs().max() > 0 for c in convs)  # default uniform biases, not zeros
    fc = m.enc_a.enc_a.fc
    bound = 1 / fc.in_features ** 0.5  # nn.Linear's default: U(-1/sqrt(in), 1/sqrt(in))
    assert fc.weight.abs().max() <= bound and fc.weight.std() > 0.03


def test_sigmoid_bce_is_sigmoid_then_binary_cross_entropy_with_the_clamp():
    x = torch.tensor([[-40.0, -3.0, 0.0, 2.5, 40.0]], requires_grad=True)
    for label in (1.0, 0.0, 0.5):
        loss = sigmoid_bce_loss([x, x[:, :2]], label)
        p = torch.sigmoid(x.detach())
        elements = (label - 1) * torch.log1p(-p).clamp(min=-100) - label * p.log().clamp(min=-100)
        expected = elements.mean() + elements[:, :2].mean()
        assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    # Saturation: the clamp at -100, and no gradient through the saturated sigmoid, where
    # BCE-with-logits would give 40 and a gradient of 1.
    saturated = torch.tensor([40.0], requires_grad=True)
    loss = sigmoid_bce_loss(saturated, 0.0)
    assert loss.item() == 100.0
    assert F.binary_cross_entropy_with_logits(saturated, torch.zeros(1)).item() == 40.0
    (grad,) = torch.autograd.grad(loss, saturated)
    assert grad.item() == 0.0
    # Under autocast (which refuses binary_cross_entropy) the loss is computed in float32.
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = sigmoid_bce_loss(x.to(torch.bfloat16), 1.0)
    assert half.dtype == torch.float32


def test_sigmoid_bce_runs_the_fused_gan_loss_and_equals_the_reference_backend():
    """DRIT's adversarial losses are ops.gan_loss's mode "sigmoid_bce": the fused kernels where
    they are loaded, the same values and gradients as the reference backend."""
    x = torch.randn(2, 1, 13, 13, dtype=torch.float64) * 10
    scales = [x, x[:, :, ::2, ::2].contiguous(), x[:, :, ::4, ::4].contiguous()]
    if ops.get_backend("cpu").unavailable_reason() is None:
        assert sigmoid_bce_loss([s.clone().requires_grad_() for s in scales],
                                1.0).grad_fn.name() == "GanLossBackward"
    for label in (1.0, 0.0, 0.5):
        leaves = [s.clone().requires_grad_() for s in scales]
        loss = sigmoid_bce_loss(leaves, label)
        grads = torch.autograd.grad(loss, leaves)
        with ops.use_backend("reference"):
            ref_leaves = [s.clone().requires_grad_() for s in scales]
            ref = sigmoid_bce_loss(ref_leaves, label)
        ref_grads = torch.autograd.grad(ref, ref_leaves)
        assert loss.item() == pytest.approx(ref.item(), rel=1e-12)
        for g, r in zip(grads, ref_grads):
            assert torch.allclose(g, r, rtol=1e-12, atol=1e-300)


def test_sigmoid_bce_gradient_in_float64():
    x = torch.randn(2, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: sigmoid_bce_loss([t, t[:, :, :2]], 0.5), (x,))


def test_learning_rate_schedule_is_the_official_lambda_rule_per_iteration():
    """LambdaLR(1 - max(0, ep - 600) / 601) stepped once per epoch, as a function of the step;
    train_step steps every optimizer's schedule."""
    def official(ep, n_ep=1200, n_ep_decay=600):
        return 1.0 - max(0, ep - n_ep_decay) / float(n_ep - n_ep_decay + 1)

    for epoch in (0, 599, 600, 601, 900, 1199):
        for it in (0, 681):
            step = epoch * 682 + it
            assert learning_rate_factor(step, 682, "lambda", 1200, 600) == official(epoch)
    assert learning_rate_factor(10**6, 682, "lambda", 1200, -1) == 1.0
    assert learning_rate_factor(3 * 5 + 4, 5, "step", 10, 2) == 0.1  # epoch 3: 0.1^(3 // 2)
    # two iterations per epoch, decay from epoch 0 of 2: steps 0, 1 at 1, steps 2, 3 at 2/3
    method = tiny(iterations_per_epoch=2, n_ep=2, n_ep_decay=0, max_iter=4)
    rates = {name: [] for name in method.optimizers}
    batch = random_batch("unpaired", method.config, 2, 0)
    for step in range(4):
        for name, optimizer in method.optimizers.items():
            rates[name].append(optimizer.param_groups[0]["lr"])
        if step < 3:
            method.train_step(batch, step)
    factors = [official(step // 2, 2, 0) for step in range(4)]
    assert factors == [1, 1, 1 - 1 / 3, 1 - 1 / 3]
    for name, lr in rates.items():
        assert lr == pytest.approx([(4e-5 if name == "dis_content" else 1e-4) * f
                                    for f in factors]), name


def official_loop_iterations(n_batches: int, d_iter: int) -> list[bool]:
    """train.py's loop over one epoch: which iterations are content-discriminator-only."""
    kinds = []
    for it in range(n_batches):
        if (it + 1) % d_iter != 0 and it < n_batches - 2:
            kinds.append(True)  # model.update_D_content(...); continue
        else:
            kinds.append(False)  # model.update_D(...); model.update_EG()
    return kinds


def test_d_iter_schedule_is_the_official_loop():
    for n_batches, d_iter in ((682, 3), (10, 3), (7, 2), (5, 1), (2, 3)):
        expected = official_loop_iterations(n_batches, d_iter) * 3  # three epochs
        assert [content_only(s, n_batches, d_iter) for s in range(3 * n_batches)] == expected


def test_content_only_iterations_update_the_content_discriminator_alone():
    method = tiny(d_iter=3)
    before = {k: v.clone() for k, v in method.state_dict().items()}
    torch.manual_seed(3)
    losses = method.train_step(random_batch("unpaired", method.config, 2, 0), 0)
    assert list(losses) == ["d_content"]
    changed = {k.split(".")[0] for k, v in method.state_dict().items()
               if not torch.equal(v, before[k])}
    assert changed == {"dis_content"}
    assert method.optimizers["gen"].state == {}  # E_c, E_a, G never stepped
    losses = method.train_step(random_batch("unpaired", method.config, 2, 1), 2)
    assert "g_total" in losses and "g_ms_ab" in losses


# ----- the update order: the eager official formulation -----

def official_forward(m: DRIT, x_a, x_b):
    """model.py forward() on the networks of `m` (unwrapped), its draws in its order."""
    cfg = m.config
    a, b, a_r, b_r = x_a[:1], x_b[:1], x_a[1:], x_b[1:]
    c_a, c_b = m.enc_c.encode(a, b)
    (mu_a, lv_a), (mu_b, lv_b) = m.enc_a.encode(a, b)
    z_a = torch.randn(1, cfg.nz).mul(lv_a.mul(0.5).exp()).add(mu_a)
    z_b = torch.randn(1, cfg.nz).mul(lv_b.mul(0.5).exp()).add(mu_b)
    z_r, z_r2 = torch.randn(1, cfg.nz), torch.randn(1, cfg.nz)
    fa = m.gen.decode_a(torch.cat((c_b, c_a, c_b, c_b)), torch.cat((z_a, z_a, z_r, z_r2)))
    fb = m.gen.decode_b(torch.cat((c_a, c_b, c_a, c_a)), torch.cat((z_b, z_b, z_r, z_r2)))
    fake_a, fake_aa, fake_a_r, fake_a_r2 = torch.split(fa, 1)
    fake_b, fake_bb, fake_b_r, fake_b_r2 = torch.split(fb, 1)
    c_rb, c_ra = m.enc_c.encode(fake_a, fake_b)
    (mu_ra, lv_ra), (mu_rb, lv_rb) = m.enc_a.encode(fake_a, fake_b)
    z_ra = torch.randn(1, cfg.nz).mul(lv_ra.mul(0.5).exp()).add(mu_ra)
    z_rb = torch.randn(1, cfg.nz).mul(lv_rb.mul(0.5).exp()).add(mu_rb)
    fake_a_recon, fake_b_recon = m.gen.decode_a(c_ra, z_ra), m.gen.decode_b(c_rb, z_rb)
    (mu2_a, _), (mu2_b, _) = m.enc_a.encode(fake_a_r, fake_b_r)
    return locals()


def bce(outputs, label):
    total = 0
    for out in outputs:
        p = torch.sigmoid(out).view(-1)
        total = total + F.binary_cross_entropy(p, torch.full_like(p, label))
    return total


def official_iteration(m: DRIT, x_a, x_b, record, steps_first: bool = False):
    """update_D then update_EG, written as model.py writes them. steps_first=False takes the
    G-alone gradient before any step (the fix); True is the official order, which current
    PyTorch refuses."""
    f = official_forward(m, x_a, x_b)
    opt = m.optimizers

    def step(name):
        record.append((name, [p.grad.clone() for p in getattr(m, name).parameters()]))
        opt[name].step()

    for name, real, fakes in (("dis_a", f["a"], [f["fake_a"]]),
                              ("dis_a2", f["a_r"], [f["fake_a_r"], f["fake_a_r2"]]),
                              ("dis_b", f["b"], [f["fake_b"]]),
                              ("dis_b2", f["b_r"], [f["fake_b_r"], f["fake_b_r2"]])):
        d = getattr(m, name)
        opt[name].zero_grad()
        for fake in fakes:  # one backward_D per fake: the real term twice for D2
            pred_fake, pred_real = d(fake.detach()), d(real)
            sum((bce([r], 1.0) + bce([q], 0.0)) for q, r in zip(pred_fake, pred_real)).backward()
        step(name)
    opt["dis_content"].zero_grad()
    (bce([m.dis_content(f["c_b"].detach())], 1.0)
     + bce([m.dis_content(f["c_a"].detach())], 0.0)).backward()
    torch.nn.utils.clip_grad_norm_(m.dis_content.parameters(), 5)
    step("dis_content")

    for name in ("enc_c", "enc_a", "gen"):
        opt[name].zero_grad()
    kl = [torch.sum(f[f"mu_{d}"].pow(2).add(f[f"lv_{d}"].exp()).mul(-1).add(1).add(f[f"lv_{d}"]))
          .mul(-0.5) * 0.01 for d in ("a", "b")]
    loss_g = (bce(m.dis_a(f["fake_a"]), 1.0) + bce(m.dis_b(f["fake_b"]), 1.0)
              + bce([m.dis_content(f["c_a"])], 0.5) + bce([m.dis_content(f["c_b"])], 0.5)
              + F.l1_loss(f["fake_aa"], f["a"]) * 10 + F.l1_loss(f["fake_bb"], f["b"]) * 10
              + F.l1_loss(f["fake_a_recon"], f["a"]) * 10
              + F.l1_loss(f["fake_b_recon"], f["b"]) * 10
              + torch.mean(f["c_a"] ** 2) * 0.01 + torch.mean(f["c_b"] ** 2) * 0.01
              + kl[0] + kl[1])
    loss_g.backward(retain_graph=True)
    eg = {name: [p.grad.clone() for p in getattr(m, name).parameters()]
          for name in ("enc_c", "enc_a", "gen")}
    if steps_first:
        for name in ("enc_c", "enc_a", "gen"):
            step(name)
    opt["enc_c"].zero_grad()
    opt["gen"].zero_grad()
    z_r, z_r2 = f["z_r"], f["z_r2"]
    lz_ab = torch.mean(torch.abs(f["fake_b_r2"] - f["fake_b_r"])) / torch.mean(
        torch.abs(z_r2 - z_r))
    lz_ba = torch.mean(torch.abs(f["fake_a_r2"] - f["fake_a_r"])) / torch.mean(
        torch.abs(z_r2 - z_r))
    loss_alone = (torch.mean(torch.abs(f["mu2_a"] - z_r)) * 10
                  + torch.mean(torch.abs(f["mu2_b"] - z_r)) * 10
                  + bce(m.dis_a2(f["fake_a_r"]), 1.0) + bce(m.dis_b2(f["fake_b_r"]), 1.0)
                  + (bce(m.dis_a2(f["fake_a_r2"]), 1.0) + bce(m.dis_b2(f["fake_b_r2"]), 1.0))
                  + (1 / (lz_ab + 1e-5) + 1 / (lz_ba + 1e-5)))
    loss_alone.backward()
    alone = {name: [p.grad.clone() for p in getattr(m, name).parameters()]
             for name in ("enc_c", "gen")}
    for name in ("enc_c", "enc_a", "gen"):
        for p, g in zip(getattr(m, name).parameters(), eg[name]):
            p.grad = g
        step(name)
    for name in ("enc_c", "gen"):
        for p, g in zip(getattr(m, name).parameters(), alone[name]):
            p.grad = g
        step(name)
    return loss_g.detach(), loss_alone.detach()


def recorded_steps(m: DRIT) -> list:
    """(optimizer name, gradients) of every optimizer step of `m`, in order."""
    record = []
    for name, optimizer in m.optimizers.items():
        def step(*args, _name=name, _opt=optimizer, _step=optimizer.step, **kwargs):
            record.append((_name, [p.grad.clone() for p in getattr(m, _name).parameters()]))
            return _step(*args, **kwargs)
        optimizer.step = step
    return record


def test_the_gradients_are_those_of_the_eager_official_order():
    """One full iteration in float64: every optimizer step of the method (frozen critics,
    autograd.grad for the G-alone loss, D2's real term computed once) gets the gradients of a
    literal transcription of model.py's update_D and update_EG, with the G-alone backward taken
    before the steps; the parameters after the iteration agree."""
    batch = random_batch("unpaired", tiny().config, 2, 5, torch.float64)
    ours, theirs = tiny(torch.float64), tiny(torch.float64)
    ours_steps = recorded_steps(ours)
    with default_dtype(torch.float64):
        torch.manual_seed(7)
        losses = ours.train_step(batch, 0)
        torch.manual_seed(7)
        their_steps = []
        loss_g, loss_alone = official_iteration(theirs, batch["a"], batch["b"], their_steps)
    assert float(losses["g_total"]) == pytest.approx(float(loss_g), rel=1e-12)
    assert float(losses["g_alone_total"]) == pytest.approx(float(loss_alone), rel=1e-12)
    assert [name for name, _ in ours_steps] == [name for name, _ in their_steps] == [
        "dis_a", "dis_a2", "dis_b", "dis_b2", "dis_content", "enc_c", "enc_a", "gen", "enc_c",
        "gen"]
    # Per parameter, the largest difference of its gradients summed over its steps.
    gradient_gap: dict[int, float] = {}
    for (name, got), (_, expected) in zip(ours_steps, their_steps):
        for param, g, e in zip(getattr(ours, name).parameters(), got, expected):
            torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-13, msg=name)
            gradient_gap[id(param)] = gradient_gap.get(id(param), 0.0) + float((g - e).abs().max())
    # Parameters: the biases of the convs before instance norms have gradients that are zero up
    # to rounding (~1e-16, its exact value depending on the order of the sums); Adam divides
    # such a gradient by about eps (its square root of v is smaller still), so the two rounding
    # noises move the parameter apart by up to lr · (difference of the gradients) / eps per
    # step: that bound, on top of 1e-11.
    lr, eps = ours.config.lr, 1e-8
    keys = {id(param): key for key, param in ours.named_parameters()}
    bound = {keys[i]: 1e-11 + 2 * lr * gap / eps for i, gap in gradient_gap.items()}
    for (key, p), q in zip(ours.state_dict().items(), theirs.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=bound.get(key, 1e-11), msg=key)


def test_the_literal_official_order_fails_on_current_pytorch():
    """Why the update is reordered: backward_G_alone after the steps of E_c, E_a, G goes through
    tensors the steps changed in place (DRIT issue #62). With torch.optim.Adam's default
    implementations; the fused one (RunContext's default) does not bump the parameters' version
    counters (torch 2.14), so there the same order would run silently, through stepped weights."""
    with default_dtype(torch.float64):
        torch.manual_seed(0)
        m = DRIT(resolve_config(DRIT, "tiny"), RunContext(fused_optimizers=False))
    batch = random_batch("unpaired", m.config, 2, 5, torch.float64)
    with default_dtype(torch.float64), pytest.raises(RuntimeError,
                                                     match="modified by an inplace operation"):
        official_iteration(m, batch["a"], batch["b"], [], steps_first=True)


# ----- backends, modes, translate -----

def test_reference_and_fused_backends_agree_with_misins_and_content_only_iterations():
    """The MisINS generator, content-only and full iterations alternating (d_iter 2): float64
    over 4 iterations, float32 over 2 (tolerances: i2i_fast.testing.runs). The default
    configuration (concat, every iteration a full one) is compared the same way by
    tests/test_method_equivalence.py, which runs every built-in method."""
    config = resolve_config(DRIT, "tiny", {"d_iter": 2, **MISINS})
    fused, m_fused = train_losses(DRIT, config, 4, "cpu", torch.float64)
    reference, m_ref = train_losses(DRIT, config, 4, "reference", torch.float64)
    assert [list(s) == ["d_content"] for s in fused] == [True, False, True, False]
    problems = loss_differences(fused, reference, FLOAT64)
    assert not problems, "\n".join(problems)
    x = random_batch("multi_domain", config, 2, 9, torch.float64)["image"]
    with default_dtype(torch.float64):
        torch.testing.assert_close(
            m_fused.translate(x, n_styles=2, generator=torch.Generator().manual_seed(0)),
            m_ref.translate(x, n_styles=2, generator=torch.Generator().manual_seed(0)),
            rtol=1e-6, atol=1e-6)
    fused32, _ = train_losses(DRIT, config, 2, "cpu", torch.float32)
    reference32, _ = train_losses(DRIT, config, 2, "reference", torch.float32)
    problems = loss_differences(fused32, reference32, float32_tolerances(2))
    assert not problems, "\n".join(problems)


def test_mode_seeking_off_drops_the_second_random_translation():
    method = tiny(mode_seeking=False)
    losses = method.train_step(random_batch("unpaired", method.config, 2, 0), 0)
    assert "g_ms_ab" not in losses and "g_adv2_a" in losses
    with_ms = tiny().train_step(random_batch("unpaired", method.config, 2, 0), 0)
    assert float(with_ms["d_a2"]) > 1.5 * float(losses["d_a2"])  # two full D2 losses


def test_the_shared_content_block_adds_unit_noise_in_training_only():
    method = tiny()
    x = torch.rand(2, 3, 48, 48) * 2 - 1
    enc = method.enc_c
    clean = enc.shared[0](enc.conv_a(x))
    torch.manual_seed(11)
    noisy = enc.encode_a(x)
    torch.manual_seed(11)
    torch.testing.assert_close(noisy - clean, torch.randn(clean.shape), rtol=1e-5, atol=1e-5)
    enc.eval()
    torch.testing.assert_close(enc.encode_a(x), clean)


def test_translate_random_and_reference_attributes_both_directions():
    for overrides in ({}, MISINS):
        method = tiny(**overrides)
        x = torch.rand(3, 3, 48, 48) * 2 - 1
        out = method.translate(x, n_styles=4, generator=torch.Generator().manual_seed(5))
        assert out.shape == (3, 4, 3, 48, 48) and out.abs().max() <= 1
        assert not torch.allclose(out[:, 0], out[:, 1])
        back = method.translate(x, n_styles=2, target_domain="a",
                                generator=torch.Generator().manual_seed(5))
        assert back.shape == (3, 2, 3, 48, 48)
        assert not torch.allclose(back[:, 0], out[:, 0])  # G_A, not G_B
        ref = method.translate(x, reference=x[:1])
        assert ref.shape == (3, 1, 3, 48, 48)
        torch.testing.assert_close(ref, method.translate(x, reference=x[:1]))  # the mean code
        per_input = method.translate(x, reference=x.flip(0), target_domain="a")
        assert per_input.shape == (3, 1, 3, 48, 48)
    method = tiny()
    sampled = [method.translate(x, reference=x[:1], sample_reference=True,
                                generator=torch.Generator().manual_seed(s)) for s in (1, 2)]
    assert not torch.allclose(sampled[0], sampled[1])
    with pytest.raises(ValueError, match="x: expected H and W multiples of 4"):
        method.translate(torch.zeros(1, 3, 50, 48))
    assert method.training


def test_sample_visuals():
    method = tiny()
    visuals = method.sample_visuals(random_batch("unpaired", method.config, 2, 0),
                                    torch.Generator().manual_seed(0))
    assert list(visuals) == ["x_a", "x_ab", "x_ab_random", "x_aa", "x_aba", "x_b", "x_ba",
                             "x_ba_random", "x_bb", "x_bab"]
    assert all(v.shape == (2, 3, 48, 48) for v in visuals.values())
    assert method.training


def test_a_batch_without_real_images_for_the_second_discriminators_is_refused():
    method = tiny()
    batch = random_batch("unpaired", method.config, 1, 0)
    with pytest.raises(ValueError, match=r"batch: expected as many images of a as of b, more "
                                         r"than n_encoded \(1\), got 1 and 1"):
        method.train_step(batch, 0)


@pytest.mark.slow
def test_check_method_misins():
    """The misins configuration (tests/test_method_conformance.py runs check_method on every
    registered method at its tiny configuration: drit's default, concat, is checked there)."""
    check_method(DRIT, config={**DRIT.configs["tiny"], **MISINS})


@pytest.mark.slow
def test_replicas_stay_identical_with_two_processes(tmp_path):
    """DDP (2 gloo processes, each on its own batches): every parameter is the same on both
    ranks after content-only and full iterations."""
    tests = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests.parent), str(tests)]),
           "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    env.pop("RANK", None)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node", "2", str(tests / "drit_ddp_worker.py"),
                           str(tmp_path)], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    rank0, rank1 = (torch.load(tmp_path / f"drit_rank{r}.pt", weights_only=True)
                    for r in (0, 1))
    assert rank0["losses"] != rank1["losses"]  # each rank saw its own batches
    for key, value in rank0["state"].items():
        assert torch.equal(value, rank1["state"][key]), key


@pytest.fixture(scope="module")
def trained_on_folders(tmp_path_factory):
    """Three iterations of the tiny configuration through the Trainer on a folder data set (70x90
    images): (the transform the trainer opened the data with, the run's last checkpoint, the
    folder of domain A's images)."""
    import numpy as np
    from PIL import Image

    import i2i_fast.train.trainer as trainer_module
    from i2i_fast.train import TrainOptions, Trainer

    root = tmp_path_factory.mktemp("drit_folders")
    rng = np.random.default_rng(0)
    for folder in ("trainA", "trainB"):
        (root / "data" / folder).mkdir(parents=True)
        for i in range(3):
            pixels = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / "data" / folder / f"{i}.png")
    opened = []
    open_dataset = trainer_module.open_dataset

    def spy(*args, **kwargs):
        opened.append(open_dataset(*args, **kwargs))
        return opened[-1]

    options = TrainOptions("drit", config="tiny", data=str(root / "data"), device="cpu",
                           workers=0, run_dir=str(root / "run"), progress=False,
                           overrides=["max_iter=3", "d_iter=3", "iterations_per_epoch=100"],
                           log_every=3, sample_every=3, checkpoint_every=3)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trainer_module, "open_dataset", spy)
        result = Trainer(options, stream=io.StringIO()).run()
    assert result.step == 3
    checkpoint = root / "run" / "checkpoints" / "step_000000003.pt"
    assert checkpoint.is_file()
    return opened[0].a.transform, checkpoint, root / "data" / "trainA"


def test_the_trainer_reads_folders_with_the_drit_transform(trained_on_folders):
    """Folder images are resized to 256/216 of the crop (bicubic), then randomly cropped and
    flipped (dataset.py), not MUNIT's default transform of unpaired sets."""
    transform, _, _ = trained_on_folders
    assert (transform.name, transform.resize, transform.size) == ("drit", 57, 48)
    assert transform.interpolation == "bicubic" and transform.crop and transform.flip


def test_translate_command_random_attributes_and_a_reference_both_directions(
        trained_on_folders, tmp_path, capsys):
    """`i2i-fast translate` on a DRIT checkpoint: random attributes (--n-styles), the attributes
    of a reference image, A to B (the default) and B to A (--target-domain a)."""
    from PIL import Image

    from i2i_fast import cli

    _, checkpoint, images = trained_on_folders
    written = {}
    for name, extra in (("ab", ["--n-styles", "2"]),
                        ("ba", ["--n-styles", "2", "--target-domain", "a"]),
                        ("ab_ref", ["--reference", str(images / "0.png")]),
                        ("ba_ref", ["--reference", str(images / "0.png"),
                                    "--target-domain", "a"])):
        out = tmp_path / name
        status = cli.main(["translate", "--checkpoint", str(checkpoint), "--input", str(images),
                           "--out", str(out), *extra])
        assert status == 0, capsys.readouterr().err
        written[name] = {p.name: Image.open(p) for p in out.iterdir()}
    stems = ("0", "1", "2")
    assert sorted(written["ab"]) == sorted(written["ba"]) == sorted(
        [f"{s}_style{k}.png" for s in stems for k in (1, 2)] + ["grid.png"])
    assert sorted(written["ab_ref"]) == sorted(written["ba_ref"]) == sorted(
        [f"{s}_ref.png" for s in stems] + ["grid.png"])
    assert written["ab"]["1_style1.png"].size == (48, 48)  # the configuration's image_size
    assert written["ab_ref"]["grid.png"].size == (3 * 48 + 2 * 2, 3 * 48 + 2 * 2)  # in|ref|out
    # two random codes give two images; G_A is not G_B; with and without a reference differ
    assert written["ab"]["0_style1.png"].tobytes() != written["ab"]["0_style2.png"].tobytes()
    assert written["ab"]["0_style1.png"].tobytes() != written["ba"]["0_style1.png"].tobytes()
    assert written["ab_ref"]["0_ref.png"].tobytes() != written["ba_ref"]["0_ref.png"].tobytes()


def test_benchmarks_time_whole_cycles_of_the_d_iter_schedule(monkeypatch):
    """`i2i-fast bench method` and `compare` time d_iter iterations at a time (2 content-only,
    1 full), so their per-iteration figure is the mean over the schedule, not the median of the
    cheap content-only iterations."""
    import i2i_fast.methods as methods
    from i2i_fast.bench import method_bench

    def create(name, config, overrides, context):
        return DRIT(resolve_config(DRIT, config, overrides), context)

    monkeypatch.setattr(methods, "create_method", create)
    runner = method_bench.Runner("drit", "tiny", ["d_iter=3", "iterations_per_epoch=100"],
                                 "fused", "cpu", "fp32", False, "synthetic:shapes")
    assert runner.method.iterations_per_cycle == 3
    assert runner.step() > 0 and runner.step_index == 3
    assert runner.method.optimizers["gen"].state  # the cycle's third iteration was a full one
