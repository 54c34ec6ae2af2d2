"""StarGAN v2 through the trainer and the command line: its data kind, a run on the synthetic
K-domain set, resume = the same run, translate with --target-domain; the compiled path with R1
running eagerly."""

from __future__ import annotations

import copy

import pytest
import torch

from i2i_fast import cli
from i2i_fast.data import open_dataset
from i2i_fast.methods.registry import resolve_config
from i2i_fast.methods.stargan_v2 import StarGANv2
from i2i_fast.testing import FLOAT64, default_dtype, loss_differences
from i2i_fast.train import TrainOptions, Trainer
from train_helpers import assert_same_tensors, load

# The small config's structure at 32x32 with narrow networks.
TINY_SET = ["image_size=32", "dim_in=8", "max_conv_dim=16", "style_dim=8", "latent_dim=4",
            "hidden_dim=16", "batch_size=2"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_multi_domain_reference_items():
    ds = open_dataset("synthetic:shapes-k3", kind="multi_domain_reference", resolution=16, size=8,
                      seed=3)
    item = ds.item(0, 5)
    assert set(item) == {"image", "mask", "domain", "ref", "ref_mask", "ref2", "ref2_mask",
                         "ref_domain"}
    assert item["ref"].shape == item["ref2"].shape == (3, 16, 16)
    assert item["ref_domain"].dtype == torch.int64
    again = open_dataset("synthetic:shapes-k3", kind="multi_domain_reference", resolution=16,
                         size=8, seed=3).item(0, 5)
    assert_same_tensors(item, again)  # deterministic by seed
    # the source part is the multi_domain item; the reference is drawn independently of it
    source = open_dataset("synthetic:shapes-k3", kind="multi_domain", resolution=16, size=8,
                          seed=3).item(0, 5)
    torch.testing.assert_close(item["image"], source["image"])
    assert int(item["domain"]) == int(source["domain"])
    pairs = [ds.item(0, i) for i in range(len(ds))]
    assert {int(p["ref_domain"]) for p in pairs} == {0, 1, 2}
    assert any(int(p["ref_domain"]) != int(p["domain"]) for p in pairs)
    assert not all(torch.equal(p["ref"], p["ref2"]) for p in pairs)  # two references


def train(run_dir, **options):
    merged = dict(data="synthetic:shapes-k3", config="small", device="cpu", workers=0,
                  log_every=2, sample_every=2, checkpoint_every=2, n_samples=2,
                  progress=False, run_dir=str(run_dir))
    merged.update(options)
    merged["overrides"] = TINY_SET + merged.get("overrides", [])
    losses = {}
    trainer = Trainer(TrainOptions("stargan_v2", **merged),
                      on_step=lambda step, values: losses.__setitem__(step, values))
    result = trainer.run()
    return result, losses


def test_train_resume_and_translate(tmp_path, capsys):
    straight, straight_losses = train(tmp_path / "straight", overrides=["max_iter=4"])
    assert sorted(straight_losses) == [1, 2, 3, 4]
    assert {"d_latent_reg", "g_ref_cyc", "lambda_ds"} <= set(straight_losses[1])
    first, _ = train(tmp_path / "run", overrides=["max_iter=2"])
    torch.manual_seed(999)  # only the checkpoint's state may count
    resumed, resumed_losses = train(tmp_path / "run", resume="auto", config=None, data=None,
                                    overrides=["max_iter=4"])
    for step in (3, 4):
        assert resumed_losses[step] == straight_losses[step]  # same run, bitwise
    assert resumed_losses[3]["lambda_ds"] == pytest.approx(1 - 2 / 4000)  # schedule continued
    assert_same_tensors(load(resumed.last_checkpoint)["training_state"],
                        load(straight.last_checkpoint)["training_state"])
    saved = load(straight.last_checkpoint)
    networks = saved["training_state"]["networks"]
    assert any(k.startswith("generator_ema.") for k in networks)
    assert any(k.startswith("style_encoder_ema.") for k in networks)

    # translate the sample grid's source images with the trained checkpoint
    images = tmp_path / "inputs"
    images.mkdir()
    from PIL import Image
    for i in range(2):
        Image.new("RGB", (40, 40), (30 * i, 90, 200)).save(images / f"in{i}.png")
    out = tmp_path / "latent"
    status = cli.main(["translate", "--checkpoint", str(straight.last_checkpoint), "--input",
                       str(images), "--target-domain", "night", "--n-styles", "2", "--out",
                       str(out)])
    assert status == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["grid.png", "in0_style1.png",
                                                     "in0_style2.png", "in1_style1.png",
                                                     "in1_style2.png"]
    out = tmp_path / "reference"
    status = cli.main(["translate", "--checkpoint", str(straight.last_checkpoint), "--input",
                       str(images), "--target-domain", "2", "--reference",
                       str(images / "in0.png"), "--out", str(out)])
    assert status == 0, capsys.readouterr().err
    assert (out / "in1_ref.png").exists()
    capsys.readouterr()
    status = cli.main(["translate", "--checkpoint", str(straight.last_checkpoint), "--input",
                       str(images), "--out", str(tmp_path / "none")])
    err = capsys.readouterr().err
    assert status == 2 and "--target-domain: method stargan_v2 translates between" in err
    status = cli.main(["translate", "--checkpoint", str(straight.last_checkpoint), "--input",
                       str(images), "--target-domain", "dusk", "--out", str(tmp_path / "bad")])
    err = capsys.readouterr().err
    assert status == 2 and "target_domain: expected an index in [0, 3) or one of ['day', 'night', "\
        "'sunset'], got 'dusk'" in err


def tiny_method(seed: int = 0) -> StarGANv2:
    torch.manual_seed(seed)
    overrides = dict(item.split("=") for item in TINY_SET)
    overrides = {k: int(v) for k, v in overrides.items()}
    return StarGANv2(resolve_config(StarGANv2, "small", overrides))


def test_compiled_networks_with_r1_outside_the_compiled_graphs():
    """compile_networks(): G, F, E and the fake/critic D compiled; D(x_real) of the D steps runs
    eagerly, as R1 differentiates its input gradient. aot_eager keeps the test quick and goes
    through the same AOTAutograd graphs (not twice differentiable) as inductor. Compared in
    float64 (i2i_fast.testing.runs says why): compiled and eager graphs round differently."""
    torch._dynamo.reset()
    with default_dtype(torch.float64):
        method = tiny_method()
        eager = tiny_method()
    batch = {k: v for k, v in open_dataset("synthetic:shapes-k3", "multi_domain_reference",
                                           resolution=32, size=4).item(0, 0).items()}
    batch = {k: torch.stack([v, v]) for k, v in batch.items()}
    batch = {k: v.double() if v.is_floating_point() else v for k, v in batch.items()}
    method.compile_networks(backend="aot_eager")
    assert method.nets_twice.discriminator.call is method.discriminator  # the R1 branch: eager
    assert method.nets.discriminator.call is not method.discriminator  # a compiled twin
    assert method.critics.discriminator.call is not method.discriminator
    history = {}
    for name, m in (("compiled", method), ("eager", eager)):
        history[name] = []
        for step in range(2):
            torch.manual_seed(step)
            with default_dtype(torch.float64):
                losses = m.train_step(batch, step)
            history[name].append({k: float(v) for k, v in losses.items()})
    assert not loss_differences(history["compiled"], history["eager"], FLOAT64)
    torch._dynamo.reset()


def test_a_compiled_discriminator_cannot_give_r1():
    """Why the R1 branch stays eager: the double backward through a compiled D fails."""
    torch._dynamo.reset()
    method = tiny_method()
    compiled = torch.compile(copy.deepcopy(method.discriminator), backend="aot_eager")
    x = torch.rand(2, 3, 32, 32).requires_grad_(True)
    out = compiled(x)[:, 0].sum()
    (grad,) = torch.autograd.grad(out, x, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward|twice|not supported"):
        grad.pow(2).sum().backward()
    torch._dynamo.reset()


def test_method_benchmark_runs_stargan_v2_iterations():
    from i2i_fast.bench.method_bench import default_data, measure

    data = default_data("stargan_v2", "small", TINY_SET)
    assert data == "synthetic:shapes-k3"  # the set with the config's 3 domains
    result = measure("stargan_v2", "small", TINY_SET, "fused", "cpu", "fp32", False,
                     iterations=2, warmup=0, data=data)
    assert result["iterations"] == 2 and result["batch_size"] == 2
    assert result["images_per_s"] > 0 and result["image_size"] == 32
