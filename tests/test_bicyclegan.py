"""BicycleGAN: the official architecture (counts, shapes, z at every U-Net level), the official
losses written out by hand, the latent L1 updating G only, the schedule, the data options
(direction, grayscale input, transform), translate; check_method; fused and reference backends
agree. (The outputs and one float64 iteration were also compared with the official code itself,
outside the project: README, "BicycleGAN".)"""

from __future__ import annotations

import contextlib
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import i2i_fast.ops as ops
import i2i_fast.train.trainer as trainer_module
from i2i_fast.data import open_dataset
from i2i_fast.data.transforms import to_tensor
from i2i_fast.methods.bicyclegan import BicycleGAN, BicycleGANConfig
from i2i_fast.methods.registry import resolve_config
from i2i_fast.nn import LatentConv2d, LatentUNetGenerator, VariationalResNetEncoder
from i2i_fast.testing import (
    FLOAT64,
    check_method,
    default_dtype,
    float32_tolerances,
    loss_differences,
    random_batch,
    train_losses,
)
from i2i_fast.train import TrainOptions, Trainer


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny networks gain nothing from threads, and a busy 2-core machine loses a lot."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make(overrides: dict | None = None, config: str = "tiny", seed: int = 0) -> BicycleGAN:
    torch.manual_seed(seed)
    return BicycleGAN(resolve_config(BicycleGAN, config, copy.deepcopy(overrides or {})))


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def batch_of(cfg, n: int = 2, seed: int = 0, dtype=torch.float32) -> dict[str, torch.Tensor]:
    return random_batch("paired", cfg, n, seed, dtype)


# ----- the official networks -----

def test_parameter_counts_equal_the_official_implementation():
    method = BicycleGAN(BicycleGANConfig())
    counts = {name: n_params(getattr(method, name)) for name in ("gen", "enc", "dis", "dis2")}
    assert counts == {"gen": 54_794_627, "enc": 2_590_032, "dis": 3_458_978, "dis2": 3_458_978}
    assert n_params(method) == 64_302_615
    assert [n_params(cnn) for cnn in method.dis.cnns] == [2_764_737, 694_241]  # half width
    assert n_params(method.enc.fc) == n_params(method.enc.fc_var) == 2_056
    # edges2shoes: a one-channel input
    gen = LatentUNetGenerator(1, 3, 8, 8, 64, dropout=True)
    assert n_params(gen) == 54_792_579


def test_official_structure_and_shapes_at_256():
    method = BicycleGAN(BicycleGANConfig(ngf=4))  # the official layout, narrower (cheap)
    gen, level, downs = method.gen, method.gen.model, []
    while level is not None:
        downs.append((level.down.in_channels, level.down.latent_channels,
                      level.down.out_channels, level.dropout is not None))
        level = level.inner
    # z (8 channels) enters all 8 levels; no dropout by default
    assert downs == [(11, 8, 4, False), (12, 8, 8, False), (16, 8, 16, False),
                     (24, 8, 32, False), (40, 8, 32, False), (40, 8, 32, False),
                     (40, 8, 32, False), (40, 8, 32, False)]
    assert all(isinstance(m, LatentConv2d) for m in (gen.model.down, gen.model.inner.down))
    x, z = torch.rand(1, 3, 256, 256) * 2 - 1, torch.randn(1, 8)
    with torch.no_grad():
        y = gen(x, z)
        assert y.shape == (1, 3, 256, 256) and y.abs().max() <= 1
        assert [tuple(o.shape) for o in method.dis(x)] == [(1, 1, 30, 30), (1, 1, 14, 14)]
        mu, logvar = method.enc(x)
        assert mu.shape == logvar.shape == (1, 8)
    assert len(method.enc.blocks) == 4  # resnet_256: n_blocks 5


def test_sizes_follow_the_image_size_and_bad_sizes_name_the_ones_that_work():
    m128 = BicycleGAN(resolve_config(BicycleGAN, "tiny", {"image_size": 128, "load_size": 143}))
    assert m128.gen.num_downs == 7 and len(m128.enc.blocks) == 3  # unet_128, resnet_128
    assert m128.enc.input_size == 128
    for size in (100, 32, 96):
        with pytest.raises(ValueError, match=r"image_size: expected a power of two >= 64 "
                                             r"\(64, 128, 256, 512, \.\.\.\)"):
            BicycleGAN(resolve_config(BicycleGAN, "tiny", {"image_size": size}))
    enc = VariationalResNetEncoder(3, 8, 4, n_blocks=3)
    with pytest.raises(ValueError,
                       match=r"x: expected \(N, C, 64, 64\).*8x8.*got \(1, 3, 32, 32\)"):
        enc(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match="multiples of 64"):
        make().gen(torch.randn(1, 3, 48, 48), torch.randn(1, 8))


def test_official_init_xavier_gain_002():
    method = make({"ngf": 16})
    w = method.gen.model.inner.down.weight  # 72 -> 32 channels, 4x4
    fan_in, fan_out = w.shape[1] * 16, w.shape[0] * 16
    expected = 0.02 * (2.0 / (fan_in + fan_out)) ** 0.5
    assert abs(w.std().item() / expected - 1) < 0.1
    assert all((m.bias == 0).all() for m in method.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)))


# ----- the training step -----

def official_losses(net: BicycleGAN, batch: dict[str, torch.Tensor], seed: int) -> dict:
    """bicycle_gan_model.py's forward, backward_EG, backward_G_alone and backward_D losses
    written out (two separate generator calls, MSELoss / L1Loss, the KL sum)."""
    cfg = net.config
    half = batch["a"].shape[0] // 2
    a_enc, b_enc, b_rand = batch["a"][:half], batch["b"][:half], batch["b"][half:]
    torch.manual_seed(seed)
    with ops.use_backend("reference"):
        mu, logvar = net.enc(b_enc)
        std = logvar.mul(0.5).exp()
        z_enc = torch.randn(std.shape).mul(std).add(mu)
        z_rand = torch.randn(half, cfg.nz)
        fake_enc, fake_rand = net.gen(a_enc, z_enc), net.gen(a_enc, z_rand)
        mu2, _ = net.enc(fake_rand)

        def mse(outputs, label):
            return sum(F.mse_loss(o, torch.full_like(o, label)) for o in outputs)

        return {
            "g_gan": mse(net.dis(fake_enc), 1.0) * cfg.lambda_gan,
            "g_gan2": mse(net.dis2(fake_rand), 1.0) * cfg.lambda_gan2,
            "kl": torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) * (-0.5 * cfg.lambda_kl),
            "g_l1": F.l1_loss(fake_enc, b_enc) * cfg.lambda_l1,
            "z_l1": F.l1_loss(mu2, z_rand) * cfg.lambda_z,
            "d": mse(net.dis(fake_enc.detach()), 0.0) + mse(net.dis(b_enc), 1.0),
            "d2": mse(net.dis2(fake_rand.detach()), 0.0) + mse(net.dis2(b_rand), 1.0),
        }


def test_losses_are_the_official_formulas():
    with default_dtype(torch.float64):
        method = make({"ngf": 8})
        with torch.no_grad():  # a posterior far enough from N(0, I) to make the KL term visible
            method.enc.fc.bias.normal_(0, 1.0)
            method.enc.fc_var.bias.normal_(0, 1.0)
        before = copy.deepcopy(method)
        batch = batch_of(method.config, dtype=torch.float64)
        expected = official_losses(before, batch, seed=7)
        torch.manual_seed(7)
        got = method.train_step(batch, 0)
    for name, value in expected.items():
        torch.testing.assert_close(got[name], value.detach(), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(got["g_total"], sum(expected[k] for k in (
        "g_gan", "g_gan2", "kl", "g_l1", "z_l1")).detach(), rtol=1e-9, atol=1e-12)
    assert float(got["kl"]) > 1e-3


def gradients_after_one_step(overrides: dict, freeze_encoder: bool = True) -> dict:
    """G's and E's gradients of the G and E update of one iteration (kept after the step)."""
    method = make({"ngf": 8, **overrides})
    if not freeze_encoder:  # E left trainable in the latent L1: what the official code avoids
        frozen_critics = method.frozen_critics  # by switching E's requires_grad off

        def all_but_the_encoder(*names):
            names = tuple(n for n in names if n != "enc")
            return frozen_critics(*names) if names else contextlib.nullcontext()

        method.frozen_critics = all_but_the_encoder
    torch.manual_seed(3)
    method.train_step(batch_of(method.config, seed=3), 0)
    return {name: [p.grad.clone() for p in getattr(method, name).parameters()]
            for name in ("gen", "enc")}


def test_the_latent_l1_updates_the_generator_only():
    with_z = gradients_after_one_step({"lambda_z": 0.5})
    without_z = gradients_after_one_step({"lambda_z": 0.0})
    for a, b in zip(with_z["enc"], without_z["enc"]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # E: no gradient from the latent L1
    assert any(not torch.equal(a, b) for a, b in zip(with_z["gen"], without_z["gen"]))
    # the check can fail: with E trainable in that call, E's gradients change
    leaky = gradients_after_one_step({"lambda_z": 0.5}, freeze_encoder=False)
    assert any(not torch.equal(a, b) for a, b in zip(leaky["enc"], without_z["enc"]))


def test_discriminators_are_frozen_in_the_generator_update_and_d2_sees_the_other_half():
    method = make()
    seen = []
    method.dis2.register_forward_pre_hook(lambda m, args: seen.append(
        (args[0].detach().clone(), any(p.requires_grad for p in m.parameters()))))
    batch = batch_of(method.config, seed=4)
    method.train_step(batch, 0)
    (fake_g, trainable_g), (fake_and_real, trainable_d) = seen  # D's update: cat[fake, real]
    assert not trainable_g and trainable_d
    fake_d, real_d = fake_and_real.chunk(2)
    torch.testing.assert_close(fake_g, fake_d)  # D2's fake: from before G's step
    torch.testing.assert_close(real_d, batch["b"][1:])  # D2's real: B of the random half



def test_the_discriminator_update_on_one_batch_has_the_official_gradients():
    """Each D update runs cat[fake, real] through D once; its gradients are those of the
    official backward_D (D(fake) and D(real) in two calls, MSELoss), in float64."""
    with default_dtype(torch.float64):
        method = make({"ngf": 8})
        official = {name: copy.deepcopy(getattr(method, name)) for name in ("dis", "dis2")}
        gen = torch.Generator().manual_seed(5)
        fake_enc, b_enc, fake_rand, b_rand = (torch.randn(1, 3, 64, 64, generator=gen)
                                              for _ in range(4))
        got = method._dis_update(fake_enc, b_enc, fake_rand, b_rand)
        for name, fake, real, loss_name in (("dis", fake_enc, b_enc, "d"),
                                            ("dis2", fake_rand, b_rand, "d2")):
            net = official[name]
            with ops.use_backend("reference"):
                loss = (sum(F.mse_loss(o, torch.zeros_like(o)) for o in net(fake))
                        + sum(F.mse_loss(o, torch.ones_like(o)) for o in net(real)))
            loss.backward()
            torch.testing.assert_close(got[loss_name], loss.detach(), rtol=1e-9, atol=1e-12)
            for ours, theirs in zip(getattr(method, name).parameters(), net.parameters()):
                torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-9, atol=1e-12)

@pytest.mark.filterwarnings(r"ignore:Detected call of `lr_scheduler.step\(\)`")
def test_learning_rate_is_the_official_linear_decay_per_epoch():
    method = make()  # tiny: epoch_size 4, batch 2 (2 iterations an epoch), niter 2, decay 3
    cfg = method.config
    lrs = []
    for _ in range(cfg.max_iter):
        lrs.append([o.param_groups[0]["lr"] for o in method.optimizers.values()])
        for scheduler in method.schedulers.values():
            scheduler.step()
    # the official LambdaLR stepped after each epoch (epochs counted from epoch_count = 1)
    official = [1 - max(0, epoch + 1 - cfg.niter) / (cfg.niter_decay + 1)
                for epoch in range(cfg.niter + cfg.niter_decay)]
    assert [row[0] for row in lrs] == pytest.approx(
        [cfg.lr * official[step // 2] for step in range(cfg.max_iter)])
    assert all(len(set(row)) == 1 for row in lrs) and len(lrs[0]) == 4  # G, E, D, D2
    assert sorted(method.optimizers) == ["dis", "dis2", "enc", "gen"]


def test_direction_btoa_swaps_the_pair():
    forward = make({"ngf": 8})
    backward = make({"ngf": 8, "direction": "BtoA"})
    batch = batch_of(forward.config, seed=5)
    torch.manual_seed(1)
    losses = forward.train_step(batch, 0)
    torch.manual_seed(1)
    swapped = backward.train_step({"a": batch["b"], "b": batch["a"]}, 0)
    assert losses == swapped
    x = batch["a"][:1]
    out = backward.translate(x, n_styles=1, generator=torch.Generator().manual_seed(0))
    assert out.shape == (1, 1, 3, 64, 64)
    backward.translate(x, target_domain="a")  # its target
    with pytest.raises(ValueError, match=r"translates to domain 'a' \(direction BtoA\)"):
        backward.translate(x, target_domain="b")
    with pytest.raises(ValueError, match=r"translates to domain 'b' \(direction AtoB\)"):
        forward.translate(x, target_domain="a")


def test_grayscale_input_with_input_nc_1():
    method = make({"input_nc": 1})
    assert method.gen.model.down.in_channels == 1 + 8
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    gray = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]
    out = method.translate(x, n_styles=2, generator=torch.Generator().manual_seed(0))
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = method.eval().gen(gray.repeat_interleave(2, 0), z)
    torch.testing.assert_close(out, expected.reshape(2, 2, 3, 64, 64))
    method.train()
    losses = method.train_step(batch_of(method.config), 0)
    assert all(torch.isfinite(v) for v in losses.values())


def test_translate_random_codes_and_encoded_reference():
    method = make()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    target = torch.rand(2, 3, 64, 64) * 2 - 1
    out = method.translate(x, n_styles=3, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 3, 3, 64, 64)
    encoded = method.translate(x, reference=target)
    with torch.no_grad():
        mu, _ = method.eval().enc(target)  # the official test: z = E's mu, no sampling
        expected = method.gen(x, mu)
    torch.testing.assert_close(encoded[:, 0], expected)
    torch.testing.assert_close(method.encode(target), mu)
    with pytest.raises(ValueError, match=r"reference: expected target images \(N, 3, 64, 64\)"):
        method.translate(x, reference=torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match=r"x: expected RGB images"):
        method.translate(torch.rand(1, 1, 64, 64), n_styles=1)
    visuals = method.sample_visuals(batch_of(method.config))
    assert sorted(visuals) == ["encoded", "input", "random", "target"]
    assert all(v.shape == (2, 3, 64, 64) for v in visuals.values())


# ----- configurations -----

def test_named_configurations():
    e2s = resolve_config(BicycleGAN, "edges2shoes")
    assert (e2s.load_size, e2s.image_size, e2s.input_nc, e2s.no_flip, e2s.use_dropout,
            e2s.niter, e2s.niter_decay, e2s.direction) == (256, 256, 1, True, True, 30, 30,
                                                            "AtoB")
    assert e2s.max_iter == 60 * (49_825 // 2)
    defaults = BicycleGANConfig()
    assert (defaults.nz, defaults.lr, defaults.beta1, defaults.lambda_l1, defaults.lambda_gan,
            defaults.lambda_gan2, defaults.lambda_z, defaults.lambda_kl, defaults.batch_size,
            defaults.gan_mode, defaults.init_gain, defaults.num_ds) == (
        8, 2e-4, 0.5, 10.0, 1.0, 1.0, 0.5, 0.01, 2, "lsgan", 0.02, 2)
    for name in BicycleGAN.configs:
        BicycleGAN.check_config(resolve_config(BicycleGAN, name))
    assert make({"use_dropout": True}).gen.model.inner.inner.inner.inner.dropout is not None


def test_data_transform_is_the_official_aligned_transform():
    default = make().data_transform
    assert (default.resize, default.crop, default.flip, default.interpolation) == (
        72, True, True, "bicubic")
    cfg = resolve_config(BicycleGAN, "edges2shoes")
    e2s = BicycleGAN.data_transform.fget(type("M", (), {"config": cfg})())
    assert (e2s.size, e2s.resize, e2s.flip) == (256, 256, False)
    # the trainer and `bench method` open the data with dataset_options, which carries it
    assert make().dataset_options() == {"transform": default}


@pytest.mark.parametrize("overrides, message", [
    ({"batch_size": 3}, "batch_size: expected an even int >= 2"),
    ({"output_nc": 1}, "output_nc: expected 3"),
    ({"input_nc": 2}, "input_nc: expected 1"),
    ({"direction": "AB"}, "direction: expected 'AtoB' or 'BtoA'"),
    ({"gan_mode": "wgangp"}, "gan_mode: expected 'lsgan' or 'vanilla'"),
    ({"lambda_gan2": 0.0}, r"lambda_gan2: expected > 0 \(with 0 the official code drops"),
    ({"load_size": 32}, "load_size: expected >= image_size 64"),
    ({"max_iter": 11}, r"max_iter: expected <= 10 \(\(niter \+ niter_decay"),
    ({"epoch_size": 1}, "epoch_size: expected an int >= batch_size 2"),
])
def test_invalid_configurations_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        make(overrides)


def test_vanilla_gan_mode_is_bce_with_logits():
    method = make({"gan_mode": "vanilla"})
    losses = method.train_step(batch_of(method.config), 0)
    # D's outputs start near 0: BCE-with-logits(0, 1) = log 2 per scale, 2 scales
    assert float(losses["g_gan"]) == pytest.approx(2 * torch.log(torch.tensor(2.0)).item(),
                                                   rel=1e-2)


# ----- the contract -----

def test_check_method():
    results = check_method(BicycleGAN)
    assert {r.name: r.status for r in results}["backends"] in ("passed", "skipped")
    assert all(r.status != "failed" for r in results)


def test_reference_and_fused_backends_agree():
    config = resolve_config(BicycleGAN, "tiny")
    fused, _ = train_losses(BicycleGAN, config, 4, "cpu", torch.float64)
    reference, _ = train_losses(BicycleGAN, config, 4, "reference", torch.float64)
    assert set(fused[0]) == set(BicycleGAN.loss_names)
    assert not loss_differences(fused, reference, FLOAT64)
    fused32, _ = train_losses(BicycleGAN, config, 2, "cpu", torch.float32)
    reference32, _ = train_losses(BicycleGAN, config, 2, "reference", torch.float32)
    assert not loss_differences(fused32, reference32, float32_tolerances(2))


# ----- data -----

def aligned_folder(root, count: int = 4, size: int = 64):
    """root/train/ with `count` side-by-side A | B images, size x (2 size); returns root."""
    folder = root / "train"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size, 2 * size, 3), dtype=np.uint8)).save(
            folder / f"{i}.png")
    return root


def test_the_trainer_reads_folders_with_the_methods_transform(tmp_path, monkeypatch):
    data = aligned_folder(tmp_path / "data")
    seen = {}

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return open_dataset(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "open_dataset", spy)
    # (the registry of an environment installed before bicyclegan existed does not list it)
    monkeypatch.setattr(trainer_module, "get_method_class", lambda name: BicycleGAN)
    options = TrainOptions(method="bicyclegan", data=str(data), config="tiny",
                           overrides=["max_iter=1", "no_flip=true", "load_size=64"],
                           run_dir=str(tmp_path / "run"), device="cpu", workers=0,
                           progress=False, sample_every=1, checkpoint_every=1, n_samples=2)
    Trainer(options).run()
    transform = seen["transform"]
    assert (transform.size, transform.resize, transform.flip) == (64, 64, False)
    # with load_size = crop size and no flip, the halves come through unchanged
    item = open_dataset(data, "paired", transform=transform, resolution=64)[0]
    image = Image.open(sorted((data / "train").iterdir())[0]).convert("RGB")
    torch.testing.assert_close(item["a"], to_tensor(image.crop((0, 0, 64, 64))))
    torch.testing.assert_close(item["b"], to_tensor(image.crop((64, 0, 128, 64))))
