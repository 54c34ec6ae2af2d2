"""LPIPS (the real lpips package) and the FID hook, checked with randomly initialised backbones
whose weights are written to local files and loaded back the way users' weights are."""

from __future__ import annotations

import math

import pytest
import torch

torchvision = pytest.importorskip("torchvision")
lpips_package = pytest.importorskip("lpips")

from i2i_fast.metrics import (  # noqa: E402
    FIDUnavailable,
    IdentityBaseline,
    InceptionFeatures,
    LPIPSDistance,
    LPIPSUnavailable,
    OracleBaseline,
    RandomBaseline,
    evaluate,
    fid_from_features,
    frechet_distance,
    lpips_or_reason,
    pairwise_mean,
)
from i2i_fast.metrics.fid import feature_statistics  # noqa: E402


def images(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1


@pytest.fixture(scope="module")
def alexnet_file(tmp_path_factory):
    """A torchvision AlexNet state dict (random weights), as a user's downloaded file would be."""
    with torch.random.fork_rng():
        torch.manual_seed(7)
        state = torchvision.models.alexnet(weights=None).state_dict()
    path = tmp_path_factory.mktemp("lpips") / "alexnet.pth"
    torch.save(state, path)
    return path, state


def test_lpips_backbone_loads_from_a_torchvision_file(alexnet_file):
    path, state = alexnet_file
    distance = LPIPSDistance(path)
    backbone = distance.model.net.state_dict()
    for name, tensor in backbone.items():  # slice<j>.<i>.<p> <- features.<i>.<p>
        _, index, param = name.split(".")
        assert torch.equal(tensor, state[f"features.{index}.{param}"]), name
    assert str(path) in distance.description


def test_lpips_linear_layers_are_the_packages_calibrated_weights(alexnet_file):
    from pathlib import Path

    shipped = torch.load(Path(lpips_package.__file__).parent / "weights/v0.1/alex.pth",
                         map_location="cpu", weights_only=True)
    model = LPIPSDistance(alexnet_file[0]).model
    loaded = model.state_dict()
    for name, tensor in shipped.items():
        assert torch.equal(loaded[name], tensor), name


def test_lpips_backbone_loads_from_lpips_keys(alexnet_file, tmp_path):
    path, _ = alexnet_file
    reference = LPIPSDistance(path)
    keyed = tmp_path / "lpips_keys.pth"
    torch.save({f"net.{k}": v for k, v in reference.model.net.state_dict().items()}, keyed)
    x, y = images(2), images(2, seed=1)
    assert torch.equal(LPIPSDistance(keyed)(x, y), reference(x, y))


def test_lpips_mechanics(alexnet_file):
    distance = LPIPSDistance(alexnet_file[0])
    x, y = images(4), images(4, seed=1)
    assert torch.equal(distance(x, x), torch.zeros(4))
    d_xy, d_yx = distance(x, y), distance(y, x)
    assert torch.allclose(d_xy, d_yx, rtol=1e-6, atol=1e-7)
    assert (d_xy > 0).all()
    assert d_xy.shape == (4,) and d_xy.dtype == torch.float32
    # a small change is closer than an unrelated image
    assert (distance(x, (x + 0.05).clamp(-1, 1)) < d_xy).all()


def test_lpips_random_backbone_only_when_asked():
    distance, reason = lpips_or_reason(None)
    assert distance is None and reason.startswith("unavailable: no LPIPS backbone weights given")
    with pytest.raises(LPIPSUnavailable, match="no LPIPS backbone weights given"):
        LPIPSDistance(None)
    random = LPIPSDistance(None, random_backbone=True)
    assert "RANDOM backbone" in random.description
    x = images(2)
    assert torch.equal(random(x, x), torch.zeros(2))


def test_lpips_bad_files_and_inputs(alexnet_file, tmp_path):
    with pytest.raises(LPIPSUnavailable, match="does not exist"):
        LPIPSDistance(tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"junk")
    with pytest.raises(LPIPSUnavailable, match=r"could not be read with torch.load\("):
        LPIPSDistance(junk)
    vgg_like = tmp_path / "partial.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, vgg_like)
    with pytest.raises(LPIPSUnavailable, match="not a backbone of this LPIPS network; missing"):
        LPIPSDistance(vgg_like)
    with pytest.raises(ValueError, match="net: expected one of alex, vgg, squeeze"):
        LPIPSDistance(alexnet_file[0], net="resnet")
    distance = LPIPSDistance(alexnet_file[0])
    with pytest.raises(ValueError, match=r"expected H, W >= 32 for the alex backbone, got \(16, "):
        distance(images(1, 16), images(1, 16))
    with pytest.raises(ValueError, match="a, b: expected the same shape"):
        distance(images(1), images(2))


def test_pairwise_lpips_diversity(alexnet_file):
    distance = LPIPSDistance(alexnet_file[0])
    x = images(2)
    same = x.unsqueeze(1).repeat(1, 3, 1, 1, 1)
    assert torch.equal(pairwise_mean(same, distance), torch.zeros(2))
    different = torch.stack([images(2, seed=s) for s in range(3)], dim=1)
    expected = torch.stack([distance(different[:, i], different[:, j])
                            for i, j in ((0, 1), (0, 2), (1, 2))]).mean(0)
    assert torch.allclose(pairwise_mean(different, distance), expected)


def test_engine_reports_lpips_diversity(alexnet_file, metrics_cache):
    distance = LPIPSDistance(alexnet_file[0])
    common = {"resolution": 32, "n_inputs": 3, "n_styles": 3, "cache_dir": metrics_cache,
              "lpips": distance, "log": lambda m: None, "directions": ["a2b"]}
    oracle = evaluate(OracleBaseline("synthetic:shapes", 32), "synthetic:shapes", **common)
    identity = evaluate(IdentityBaseline(), "synthetic:shapes", **common)
    assert oracle.tasks[0].diversity_lpips > 0
    assert identity.tasks[0].diversity_lpips == 0
    assert oracle.lpips == distance.description


# ----- FID -----


def test_frechet_distance_closed_forms():
    torch.manual_seed(0)
    mu1, mu2 = torch.randn(5, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    a, b = torch.rand(5, dtype=torch.float64) + 0.1, torch.rand(5, dtype=torch.float64) + 0.1
    # diagonal covariances: |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2
    expected = float((mu1 - mu2).square().sum() + (a.sqrt() - b.sqrt()).square().sum())
    value = frechet_distance(mu1, torch.diag(a), mu2, torch.diag(b))
    assert value == pytest.approx(expected, rel=1e-10)
    m = torch.randn(5, 5, dtype=torch.float64)
    s = m @ m.T + torch.eye(5, dtype=torch.float64)
    assert frechet_distance(mu1, s, mu1, s) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_matches_scipy_sqrtm():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    g = torch.Generator().manual_seed(1)
    f1 = torch.randn(40, 6, generator=g, dtype=torch.float64)
    f2 = torch.randn(40, 6, generator=g, dtype=torch.float64) * 1.5 + 0.3
    (mu1, s1), (mu2, s2) = feature_statistics(f1), feature_statistics(f2)
    covmean = scipy_linalg.sqrtm((s1 @ s2).numpy()).real
    expected = float((mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * covmean.trace())
    assert fid_from_features(f1, f2) == pytest.approx(expected, rel=1e-8)


def test_fid_sample_space_route_equals_the_covariance_route():
    g = torch.Generator().manual_seed(2)
    for m1, m2 in ((5, 7), (3, 3), (12, 4)):
        f1 = torch.randn(m1, 16, generator=g, dtype=torch.float64)
        f2 = torch.randn(m2, 16, generator=g, dtype=torch.float64) * 0.7 + 0.2
        expected = frechet_distance(*feature_statistics(f1), *feature_statistics(f2))
        # (the covariance route takes square roots of rank-deficient matrices: ~1e-8 round-off)
        assert fid_from_features(f1, f2) == pytest.approx(expected, rel=1e-6)
    assert fid_from_features(f1, f1) == pytest.approx(0.0, abs=1e-9)


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory):
    """torchvision Inception3 weights (random, with the auxiliary head, as torchvision ships)."""
    with torch.random.fork_rng():
        torch.manual_seed(3)
        net = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    path = tmp_path_factory.mktemp("fid") / "inception.pth"
    torch.save(net.state_dict(), path)
    return path, net


@pytest.fixture
def one_thread():
    """Inception at its smallest input is still 23M parameters: on a busy 2-core machine one
    thread runs it several times faster than two."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_inception_features_from_a_local_file(inception_file, one_thread):
    path, net = inception_file
    features = InceptionFeatures(path, input_size=75)
    x = images(4, 40)
    out = features(x)
    assert out.shape == (4, 2048) and out.dtype == torch.float64
    net.eval()
    net.fc = torch.nn.Identity()
    with torch.no_grad():
        expected = net(torch.nn.functional.interpolate(x, size=(75, 75), mode="bilinear",
                                                       align_corners=False))
    assert torch.allclose(out.float(), expected, rtol=1e-4, atol=1e-5)
    same = fid_from_features(out, out)
    assert same == pytest.approx(0.0, abs=1e-6)
    other = features(images(4, 40, seed=9) * 0.2)
    assert fid_from_features(out, other) > 0 and math.isfinite(fid_from_features(out, other))


def test_fid_unavailable_and_bad_files(tmp_path):
    with pytest.raises(FIDUnavailable, match="no Inception weights given"):
        InceptionFeatures(None)
    with pytest.raises(FIDUnavailable, match="does not exist"):
        InceptionFeatures(tmp_path / "missing.pth")
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(1)}, wrong)
    with pytest.raises(FIDUnavailable, match="not a state dict of torchvision's Inception3"):
        InceptionFeatures(wrong)
    with pytest.raises(ValueError, match="features: expected \\(M >= 2, D\\)"):
        feature_statistics(torch.zeros(1, 4))


def test_engine_reports_fid(inception_file, metrics_cache, one_thread):
    features = InceptionFeatures(inception_file[0], input_size=75)
    common = {"resolution": 32, "n_inputs": 4, "n_styles": 2, "cache_dir": metrics_cache,
              "fid": features, "log": lambda m: None, "directions": ["a2b"]}
    oracle = evaluate(OracleBaseline("synthetic:shapes", 32), "synthetic:shapes", **common)
    noise = evaluate(RandomBaseline(), "synthetic:shapes", **common)
    assert oracle.fid == features.description
    assert 0 <= oracle.tasks[0].fid < noise.tasks[0].fid
    assert oracle.summary()["latent"]["fid"] == oracle.tasks[0].fid
