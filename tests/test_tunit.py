"""TUNIT: the method contract, the schedule, the reference and fused backends agree in float64,
translation by reference and by cluster."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from i2i_fast.methods import resolve_config
from i2i_fast.methods.tunit import TUNIT, TUNITConfig
from i2i_fast.testing import (
    FLOAT64,
    check_method,
    loss_differences,
    random_batch,
    run_steps,
    train_losses,
)


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**overrides) -> TUNITConfig:
    return dataclasses.replace(resolve_config(TUNIT, "tiny"), **overrides)


def test_check_method_passes():
    check_method(TUNIT)


@pytest.mark.parametrize("overrides", [{}, {"p_semi": 0.5, "separated": 1},
                                       {"overclusters": 5, "iic_entropy_weight": 1.5,
                                        "separated": 1}])
def test_reference_and_fused_backends_agree_in_float64(overrides):
    config = tiny(**overrides)
    fused, m_fused = train_losses(TUNIT, config, 3, "cpu", torch.float64)
    reference, m_ref = train_losses(TUNIT, config, 3, "reference", torch.float64)
    problems = loss_differences(fused, reference, FLOAT64)
    assert not problems, "\n".join(problems)
    assert set(fused[-1]) <= set(TUNIT.loss_names) and "d_gp" in fused[-1]
    for a, b in zip(m_fused.state_dict().values(), m_ref.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9)


def test_default_config_is_the_official_one():
    cfg = TUNITConfig()
    assert (cfg.image_size, cfg.num_clusters, cfg.style_dim, cfg.batch_size) == (128, 10, 128, 32)
    assert (cfg.w_gp, cfg.w_rec, cfg.w_adv, cfg.w_vec) == (10.0, 0.1, 1.0, 0.01)
    assert (cfg.queue_size, cfg.moco_temperature, cfg.ema_beta) == (1024, 0.07, 0.999)
    assert (cfg.separated, cfg.ema_start, cfg.max_iter) == (65_000, 66_000, 200_000)
    # torchvision ColorJitter(0.4, 0.4, 0.4, 0.125) of datasets/datasetgetter.py
    assert (cfg.jitter_brightness, cfg.jitter_contrast, cfg.jitter_saturation,
            cfg.jitter_hue) == (0.4, 0.4, 0.4, 0.125)
    # calc_iic_loss's lamb 1, one cluster head, one learning rate for the three networks
    assert (cfg.iic_entropy_weight, cfg.overclusters, cfg.guide_lr, cfg.lr) == (1.0, 0, None, 1e-4)
    assert cfg.cluster_head_init_std == 0.01  # models/guidingNet.py: Linear weights N(0, 0.01)
    assert TUNIT(tiny()).guiding_network.disc_over is None
    assert TUNIT(tiny()).dataset_options() == {"colour_jitter": (0.4, 0.4, 0.4, 0.125)}


def test_the_colour_jitter_of_the_config_reaches_the_training_pairs():
    from i2i_fast.data import open_dataset

    method = TUNIT(tiny(jitter_brightness=0.1, jitter_contrast=0.2, jitter_saturation=0.3,
                        jitter_hue=0.0))
    data = open_dataset("synthetic:shapes-k3", "unlabelled", "train", 32, size=2,
                        **method.dataset_options())
    aug = data.augmentation
    assert (aug.brightness, aug.contrast, aug.saturation, aug.hue) == (0.1, 0.2, 0.3, 0.0)
    with pytest.raises(ValueError, match="jitter_hue"):
        TUNIT(tiny(jitter_hue=0.6))
    with pytest.raises(ValueError, match="jitter_contrast"):
        TUNIT(tiny(jitter_contrast=-0.1))


def test_schedule_is_a_function_of_the_iteration():
    method = TUNIT(tiny(separated=3, epoch_length=4, ema_start=5))
    kinds = [method.iteration_kind(step) for step in range(8)]
    assert [k.gan for k in kinds] == [False] * 3 + [True] * 5
    assert [k.epoch_end for k in kinds] == [False, False, False, True] * 2
    assert not any(k.supervised for k in kinds)
    semi = TUNIT(tiny(p_semi=0.5, epoch_length=4, unsup_start=200, separated=0))
    # before unsup_start: supervised epochs of max(int(4 · 0.5), 100) iterations
    assert all(semi.iteration_kind(s).supervised for s in range(200))
    assert semi.iteration_kind(99).epoch_end and not semi.iteration_kind(98).epoch_end
    # then each epoch of 4 starts with int(4 · 0.5) = 2 supervised iterations
    assert [semi.iteration_kind(s).supervised for s in range(200, 208)] == [True, True, False,
                                                                           False] * 2
    assert semi.dataset_options() == {"labelled_fraction": 0.5,
                                      "colour_jitter": (0.4, 0.4, 0.4, 0.125)}


def test_only_the_guiding_network_trains_before_separated():
    method = TUNIT(tiny(separated=2))
    d_before = [p.clone() for p in method.discriminator.parameters()]
    losses = run_steps(method, 1)
    assert set(losses[0]) == {"c_total", "c_moco", "c_iic"}
    assert all(torch.equal(a, b) for a, b in zip(d_before, method.discriminator.parameters()))
    losses = run_steps(method, 1, first_step=2)
    assert {"d_total", "g_total", "g_sty"} <= set(losses[0])


def test_iic_options_reach_the_guiding_network_loss():
    """iic_entropy_weight is IIC's λ in C's loss, and an over-clustering head adds its own IIC
    term: c_total = MoCo + 5 (IIC + IIC_over) in a C-only iteration, the head is trained then and
    C_EMA follows it; pseudo-labels and clusters stay the main head's."""
    import copy

    import torch.nn.functional as F

    from i2i_fast.losses import iic_loss
    from i2i_fast.testing import default_dtype

    with default_dtype(torch.float64):
        method = TUNIT(tiny(separated=3, iic_entropy_weight=2.0, overclusters=6))
        batch = random_batch("unlabelled", method.config, 4, seed=0, dtype=torch.float64)
        before = copy.deepcopy(method.guiding_network)
        _, logits, over = before(batch["image"], with_overclusters=True)
        _, logits_tf, over_tf = before(batch["image_tf"], with_overclusters=True)
        losses = method.train_step(batch, 0)
    iic = iic_loss(F.softmax(logits, 1), F.softmax(logits_tf, 1), entropy_weight=2.0)
    iic_over = iic_loss(F.softmax(over, 1), F.softmax(over_tf, 1), entropy_weight=2.0)
    plain = iic_loss(F.softmax(logits, 1), F.softmax(logits_tf, 1))
    assert iic.item() != pytest.approx(plain.item())
    assert float(losses["c_iic"]) == pytest.approx(iic.item(), rel=1e-9, abs=1e-15)
    assert float(losses["c_iic_over"]) == pytest.approx(iic_over.item(), rel=1e-9, abs=1e-15)
    assert float(losses["c_total"]) == pytest.approx(
        float(losses["c_moco"]) + 5 * (iic.item() + iic_over.item()), rel=1e-12)
    head, head_ema = method.guiding_network.disc_over, method.guiding_network_ema.disc_over
    assert not torch.equal(head.weight, before.disc_over.weight)
    assert not torch.equal(head_ema.weight, before.disc_over.weight)
    assert method.cluster(batch["image"]).max() < 3


def test_the_demo_starts_the_cluster_head_wider():
    """The demo's one departure from the official init (README, TUNIT): the cluster head's
    weights from N(0, 0.1); every other linear layer keeps N(0, 0.01)."""
    assert resolve_config(TUNIT, "demo").cluster_head_init_std == 0.1
    torch.manual_seed(0)
    guide = TUNIT(tiny(cluster_head_init_std=0.1, style_dim=64, guide_dim=16)).guiding_network
    assert guide.disc.weight.std().item() == pytest.approx(0.1, rel=0.1)
    assert guide.cont.weight.std().item() == pytest.approx(0.01, rel=0.1)
    assert TUNIT(tiny(guide_dim=16)).guiding_network.disc.weight.std().item() == pytest.approx(
        0.01, rel=0.1)


def test_guide_lr_is_the_guiding_networks_own():
    method = TUNIT(tiny(guide_lr=3e-4))
    assert method.optimizers["guiding_network"].param_groups[0]["lr"] == 3e-4
    assert method.optimizers["generator"].param_groups[0]["lr"] == 1e-4
    assert method.optimizers["discriminator"].param_groups[0]["lr"] == 1e-4
    assert TUNIT(tiny()).optimizers["guiding_network"].param_groups[0]["lr"] == 1e-4


def test_queue_fills_and_restarts_each_epoch():
    method = TUNIT(tiny(separated=10, epoch_length=2, queue_size=16))
    run_steps(method, 1)
    # filled with the first batch's keys, then this iteration's keys joined
    assert len(method.queue) == 8
    run_steps(method, 1, first_step=1)
    assert len(method.queue) == 12
    run_steps(method, 1, first_step=2)  # a new epoch: back to the first keys, then 4 more
    assert len(method.queue) == 8
    torch.testing.assert_close(method.queue.keys()[:4], method.first_keys)


def test_translate_by_reference_and_by_cluster():
    method = TUNIT(tiny())
    run_steps(method, 2)
    x = random_batch("multi_domain", method.config, 3, seed=5)["image"]
    out = method.translate(x, reference=x[:1])
    assert out.shape == (3, 1, 3, 32, 32)
    out = method.translate(x, n_styles=3, target_domain=1,
                           generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, 3, 3, 32, 32)
    clusters = method.cluster(x)
    assert clusters.shape == (3,) and int(clusters.max()) < 3
    method.estimate_cluster_styles(x)
    assert float(method.cluster_styles.weight.sum()) == 3.0
    with pytest.raises(ValueError, match="target_domain"):
        method.translate(x, target_domain=3)


def test_benchmarks_time_gan_iterations(monkeypatch):
    """`i2i-fast bench method` and `compare` start at the first full iteration (the GAN with
    G_EMA averaged), not at the guiding network's iterations before `separated`."""
    import i2i_fast.methods as methods
    from i2i_fast.bench import method_bench

    def create(name, config, overrides, context):
        return TUNIT(resolve_config(TUNIT, config, overrides), context)

    monkeypatch.setattr(methods, "create_method", create)
    runner = method_bench.Runner("tunit", "tiny", ["separated=5", "ema_start=7"], "fused", "cpu",
                                 "fp32", False, "synthetic:shapes-k3")
    assert runner.method.first_full_iteration == 7
    runner.times.append(runner.step())
    assert runner.step_index == 8
    assert runner.method.optimizers["discriminator"].state  # a GAN iteration was timed
    assert runner.result()["first_iteration"] == 7


@pytest.mark.parametrize("overrides, field", [
    ({"num_clusters": 0}, "num_clusters"), ({"p_semi": 1.0}, "p_semi"),
    ({"unsup_start": 10}, "unsup_start"), ({"image_size": 48}, "image_size"),
    ({"moco_temperature": 0.0}, "moco_temperature"), ({"gen_dim": True}, "gen_dim"),
    ({"iic_entropy_weight": 0.0}, "iic_entropy_weight"), ({"overclusters": -1}, "overclusters"),
    ({"overclusters": 2.5}, "overclusters"), ({"guide_lr": 0.0}, "guide_lr"),
    ({"cluster_head_init_std": 0.0}, "cluster_head_init_std"),
])
def test_bad_configs_are_named(overrides, field):
    with pytest.raises(ValueError, match=f"tunit: {field}"):
        TUNIT.check_config(tiny(**overrides))


def test_each_average_follows_its_own_rule():
    """C_EMA averages C from the first iteration; G_EMA is G's copy until ema_start."""
    method = TUNIT(tiny(ema_start=3))
    run_steps(method, 1)
    c, c_ema = method.guiding_network, method.guiding_network_ema
    assert not torch.equal(c.cont.weight, c_ema.cont.weight)
    run_steps(method, 2, first_step=1)  # G_EMA ← G after iteration ema_start - 1 = 2
    g_ema = dict(method.generator_ema.named_parameters())
    for name, p in method.generator.named_parameters():
        torch.testing.assert_close(g_ema[name], p)

    class OneRuleMissing(TUNIT):
        def declare_networks(self, roles, moving_average=None):
            super().declare_networks(roles, {"guiding_network_ema":
                                             moving_average["guiding_network_ema"]})

    with pytest.raises(ValueError, match="one rule per average"):
        OneRuleMissing(tiny())
