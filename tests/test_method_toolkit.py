"""The pieces methods share: latent terms, schedules, moving averages, network roles and their
views, target-domain parsing and translate's argument checks, the base Config."""

from __future__ import annotations

import dataclasses
import functools
import math

import pytest
import torch
from torch import nn

from i2i_fast.losses import (
    gaussian_nll,
    kl_standard_normal,
    latent_regression,
    mode_seeking,
    reparameterize,
)
from i2i_fast.methods import Method, create_method
from i2i_fast.methods.base import MethodConfig
from i2i_fast.methods.roles import NetworkRoles
from i2i_fast.methods.translation import Domains
from i2i_fast.nn.entry_points import EntryPoints
from i2i_fast.optim import (
    MovingAverage,
    constant,
    copy_buffers,
    linear_decay,
    linear_decay_by_epoch,
    lr_scheduler,
    step_decay,
)

# ----- latent terms: values against torch.distributions, gradients by gradcheck -----


def gaussian(shape=(4, 8), seed=0):
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(shape, generator=g, dtype=torch.float64)
    logvar = torch.randn(shape, generator=g, dtype=torch.float64)
    z = torch.randn(shape, generator=g, dtype=torch.float64)
    return mu, logvar, z


def test_kl_standard_normal_is_the_kl_divergence():
    mu, logvar, _ = gaussian()
    posterior = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    prior = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    expected = torch.distributions.kl_divergence(posterior, prior)
    torch.testing.assert_close(kl_standard_normal(mu, logvar), expected.sum())
    torch.testing.assert_close(kl_standard_normal(mu, logvar, "mean"), expected.mean())
    torch.testing.assert_close(kl_standard_normal(mu, logvar, "batch_sum"), expected.sum(1).mean())
    # DRIT / BicycleGAN: 0.01 * the sum; zero at the prior
    zero = torch.zeros(2, 8, dtype=torch.float64)
    assert float(kl_standard_normal(zero, zero)) == 0.0


def test_gaussian_nll_is_the_negative_log_likelihood_without_its_constant():
    mu, logvar, z = gaussian()
    log_prob = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).log_prob(z)
    constant_term = 0.5 * math.log(2 * math.pi)
    expected = -(log_prob + constant_term)
    torch.testing.assert_close(gaussian_nll(z, mu, logvar, "sum"), expected.sum())
    torch.testing.assert_close(gaussian_nll(z, mu, logvar, "mean"), expected.mean())
    torch.testing.assert_close(gaussian_nll(z, mu, logvar), expected.sum(1).mean())


def test_gaussian_nll_stays_finite_for_large_log_variances():
    z = torch.tensor([[1.0, -2.0]], dtype=torch.float32)
    mu = torch.zeros_like(z)
    # (beyond |logvar| ~ 87 the penalty itself, e.g. 2 * exp(120), exceeds float32's range)
    for value in (-80.0, 80.0, 120.0):
        logvar = torch.full_like(z, value).requires_grad_(True)
        loss = gaussian_nll(z, mu, logvar)
        loss.backward()
        assert torch.isfinite(logvar.grad).all(), value
    # very unsure (logvar 120): logvar / 2 per dimension, the squared error weighs nothing
    assert float(gaussian_nll(z, mu, torch.full_like(z, 120.0))) == pytest.approx(120.0)


def test_gaussian_nll_is_finite_where_the_formula_as_written_is_nan():
    """float32, logvar -200: (z - mu)^2 underflows and exp(-logvar) overflows, so the formula
    as written gives 0 * inf = NaN; the loss (on ops.gaussian_nll) gives the true value."""
    z = torch.tensor([[1e-30, 0.0]], dtype=torch.float32)
    mu, logvar = torch.zeros_like(z), torch.full_like(z, -200.0).requires_grad_(True)
    d = float(z[0, 0])  # 1e-30 as float32 holds it
    expected = -200.0 + 0.5 * math.exp(2 * math.log(d) + 200.0)  # about 3.6e26
    loss = gaussian_nll(z, mu, logvar)
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert torch.isfinite(logvar.grad).all()


@pytest.mark.parametrize("fn", ["kl", "nll", "regression", "mode_seeking", "reparameterize"])
def test_latent_terms_have_correct_gradients(fn):
    mu, logvar, z = (t[:2, :3].clone().requires_grad_(True) for t in gaussian())
    noise = torch.randn(2, 3, dtype=torch.float64)
    images = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    calls = {
        "kl": lambda m, v: kl_standard_normal(m, v),
        "nll": lambda m, v: gaussian_nll(z, m, v),
        "regression": lambda m, v: latent_regression(m, v),
        "mode_seeking": lambda m, v: mode_seeking(images, images * 0.5 + 1, m, v),
        "reparameterize": lambda m, v: reparameterize(m, v, noise),
    }
    assert torch.autograd.gradcheck(calls[fn], (mu, logvar))


def test_reparameterize_mode_seeking_and_regression_values():
    mu, logvar, noise = gaussian()
    torch.testing.assert_close(reparameterize(mu, logvar, noise),
                               noise * torch.exp(logvar / 2) + mu)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    torch.testing.assert_close(reparameterize(mu, logvar, generator=g1),
                               reparameterize(mu, logvar, generator=g2))
    a, b = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.5)
    z1, z2 = torch.zeros(2, 8), torch.full((2, 8), 2.0)
    assert float(mode_seeking(a, b, z1, z2)) == pytest.approx(1 / (0.25 + 1e-5))
    assert float(latent_regression(z2, z1)) == 2.0


def test_latent_terms_name_bad_arguments():
    mu = torch.zeros(2, 8)
    with pytest.raises(ValueError, match=r"kl_standard_normal: logvar: expected the shape of mu "
                                         r"\(2, 8\), got \(2, 7\)"):
        kl_standard_normal(mu, torch.zeros(2, 7))
    with pytest.raises(ValueError, match="reduction: expected one of"):
        gaussian_nll(mu, mu, mu, "median")
    with pytest.raises(TypeError, match="expected floating point tensors"):
        latent_regression(mu.long(), mu.long())


# ----- schedules -----


def test_schedules_are_the_official_rules():
    assert [step_decay(s, 3, 0.5) for s in range(6)] == [1, 1, 0.5, 0.5, 0.5, 0.25]
    assert [linear_decay(s, 2, 4) for s in (0, 2, 3, 6, 9)] == [1, 1, 0.75, 0, 0]
    # DRIT: LambdaLR per epoch, 1 - max(0, ep - 600) / 601, here 10 iterations per epoch
    factor = functools.partial(linear_decay_by_epoch, iterations_per_epoch=10, n_constant=600,
                               n_decay=600)
    assert factor(6009) == 1.0 and factor(6010) == pytest.approx(1 - 1 / 601)
    assert factor(11_999) == pytest.approx(1 - 599 / 601)
    # BicycleGAN counts epochs from epoch_count = 1
    assert linear_decay_by_epoch(0, 5, 100, 100, epoch_count=1) == 1.0
    assert linear_decay_by_epoch(500, 5, 100, 100, epoch_count=1) == pytest.approx(1 - 1 / 101)
    assert constant(10**9) == 1.0
    with pytest.raises(ValueError, match="linear_decay: length: expected an int >= 1, got 0"):
        linear_decay(0, 0, 0)


def test_a_schedule_resumes_exactly():
    def run(steps, state=None):
        p = nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=1.0)
        sched = lr_scheduler(opt, functools.partial(step_decay, step_size=2, gamma=0.1))
        if state:
            opt.load_state_dict(state[0])
            sched.load_state_dict(state[1])
        lrs = []
        for _ in range(steps):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return lrs, (opt.state_dict(), sched.state_dict())

    straight, _ = run(6)
    first, state = run(3)
    rest, _ = run(3, state)
    assert first + rest == straight == pytest.approx([1, 0.1, 0.1, 0.01, 0.01, 0.001])


# ----- moving averages -----


def test_moving_average_lerps_parameters_and_copies_at_start():
    torch.manual_seed(0)
    net, avg = nn.BatchNorm1d(3), nn.BatchNorm1d(3)
    with torch.no_grad():
        net.weight.fill_(2.0)
        net.running_mean.fill_(5.0)
    rule = MovingAverage(0.9, start=2, copy_at_start=True)
    rule.update([(net, avg)], 1)  # before start: nothing
    assert torch.equal(avg.weight, torch.ones(3))
    rule.update([(net, avg)], 2)  # at start: a copy, buffers too
    assert torch.equal(avg.weight, net.weight) and torch.equal(avg.running_mean,
                                                               net.running_mean)
    with torch.no_grad():
        net.weight.fill_(3.0)
    rule.update([(net, avg)], 3)
    torch.testing.assert_close(avg.weight.detach(), torch.full((3,), 3.0 + 0.9 * (2.0 - 3.0)))
    with pytest.raises(ValueError, match=r"beta: expected a value in \[0, 1\], got 1.5"):
        MovingAverage(1.5)
    with pytest.raises(ValueError, match="expected two instances of the same architecture"):
        MovingAverage(0.5).update([(nn.Linear(2, 2), nn.Linear(2, 3))], 0)
    copy_buffers(net, avg)


# ----- roles and views -----


class TwoEntries(EntryPoints):
    entry_points = ("double", "add")

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)

    def double(self, x):
        return 2 * self.lin(x)

    def add(self, x, y):
        return self.lin(x) + y


@dataclasses.dataclass
class TinyConfig(MethodConfig):
    batch_size: int = 2
    image_size: int = 8
    max_iter: int = 1


class WithRoles(Method):
    name = "with_roles"
    Config = TinyConfig

    def __init__(self, config, context=None, roles=None):
        super().__init__(config, context)
        self.gen = TwoEntries()
        self.dis = nn.Linear(2, 1)
        self.gen_avg = TwoEntries().requires_grad_(False)
        if roles is not None:
            self.declare_networks(roles, MovingAverage(0.5) if roles.averages else None)

    def train_step(self, batch, step):
        return {}

    def translate(self, x, *, n_styles=1, reference=None, target_domain=None, generator=None):
        return x[:, None]

    def sample_visuals(self, batch, generator=None):
        return {}


def test_views_route_entry_points_through_forward_and_critics_are_unwrapped():
    calls = []

    class Recording(nn.Module):
        def __init__(self, module):
            super().__init__()
            self.module = module

        def forward(self, *args, **kwargs):
            calls.append(kwargs.get("entry"))
            return self.module(*args, **kwargs)

    from i2i_fast.methods import RunContext

    class Context(RunContext):
        def wrap(self, module):
            return Recording(module)

    roles = NetworkRoles(trained=("gen", "dis"), critics=("dis",),
                         averages={"gen_avg": "gen"})
    method = WithRoles(TinyConfig(), Context(), roles)
    x = torch.randn(3, 2)
    torch.testing.assert_close(method.nets.gen.double(x), 2 * method.gen.lin(x))
    method.nets.gen.add(x, y=x)
    method.nets.dis(x)
    assert calls == ["double", "add", None]
    assert method.critics.dis.call is method.dis  # not wrapped
    with method.frozen_critics():
        assert not method.dis.weight.requires_grad
    assert method.dis.weight.requires_grad
    assert set(method.training_networks()) == {"gen", "dis"}
    with pytest.raises(AttributeError, match="has no entry point 'encode'"):
        method.nets.gen.encode(x)
    with pytest.raises(ValueError, match=r"frozen_critics: \['gen'\] are not critics"):
        method.frozen_critics("gen")
    before = method.gen_avg.lin.weight.detach().clone()
    method.update_averages(0)  # beta 0.5
    net = method.gen.lin.weight.detach()
    torch.testing.assert_close(method.gen_avg.lin.weight, net + 0.5 * (before - net))
    with pytest.raises(RuntimeError, match="roles are already declared"):
        method.declare_networks(roles)


def test_roles_are_checked():
    with pytest.raises(ValueError, match="'disc' is not a network of the method"):
        WithRoles(TinyConfig(), roles=NetworkRoles(trained=("gen", "disc")))
    with pytest.raises(ValueError, match="differentiated_twice: 'dis' is not a trained network"):
        WithRoles(TinyConfig(), roles=NetworkRoles(trained=("gen",),
                                                   differentiated_twice=("dis",)))
    with pytest.raises(ValueError, match="moving_average: expected the update rule"):
        WithRoles(TinyConfig()).declare_networks(
            NetworkRoles(trained=("gen",), averages={"gen_avg": "gen"}))
    plain = WithRoles(TinyConfig())
    assert plain.roles is None
    assert set(plain.training_networks()) == {"gen", "dis", "gen_avg"}  # every child, as before
    with pytest.raises(RuntimeError, match="no network roles declared"):
        plain.nets


# ----- domains and translate's arguments -----


def test_domains_of_two_domain_and_multi_domain_methods():
    two = Domains("m", 2, ("a", "b"), default=1)
    assert [two.index(v) for v in (0, 1, "a", "b", "A", "B", "1")] == [0, 1, 0, 1, 0, 1, 1]
    assert two.single(None) == 1 and two.single(torch.tensor([0, 0])) == 0
    with pytest.raises(ValueError, match="expected one target domain for the whole batch"):
        two.single(torch.tensor([0, 1]))
    many = Domains("m", 3, ("day", "night", "sunset"))
    assert many.per_input("night", 2).tolist() == [1, 1]
    assert many.per_input(torch.tensor([2, 0]), 2).tolist() == [2, 0]
    for bad, error in ((None, "expected the target domain"), (3, "got 3"), ("dusk", "'dusk'"),
                       (torch.tensor([0, 5]), r"indices in \[0, 3\)"),
                       (torch.tensor([0.5, 1.0]), "integer tensor of shape"),
                       (True, "got bool")):
        with pytest.raises((ValueError, TypeError), match=error):
            many.per_input(bad, 2)
    unnamed = Domains("m", 4)
    assert unnamed.index("3") == 3
    with pytest.raises(ValueError, match=r"expected an index in \[0, 4\), got 'x'"):
        unnamed.index("x")


def test_translate_arguments_are_checked_for_every_method():
    method = create_method("munit", "tiny")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    for kwargs, error in (({"n_styles": 0}, "n_styles: expected an int >= 1, got 0"),
                          ({"n_styles": True}, "n_styles: expected an int >= 1, got True"),
                          ({"reference": x[0]}, r"reference: expected a floating point tensor"),
                          ({"reference": x[:1, :1]}, r"reference: expected shape \(1 or 2, 3"),
                          ({"target_domain": "c"}, "target_domain: expected")):
        with pytest.raises(ValueError, match=error):
            method.translate(x, **kwargs)
    with pytest.raises(TypeError, match="x: expected a tensor"):
        method.translate([1, 2])
    with pytest.raises(ValueError, match=r"x: expected a floating point tensor \(N, C, H, W\)"):
        method.translate(x[0])
    with pytest.raises(TypeError, match="takes x and keyword arguments only"):
        method.translate(x, 2)
    # a plugin's own translate gets the same checks (the base class wraps it)
    plugin = WithRoles(TinyConfig())
    with pytest.raises(ValueError, match="with_roles: translate: n_styles"):
        plugin.translate(torch.rand(1, 3, 8, 8), n_styles=-1)
    assert plugin.translate(torch.rand(1, 3, 8, 8), target_domain="a").shape == (1, 1, 3, 8, 8)


def test_the_base_config_declares_what_the_trainer_reads():
    fields = {f.name: f.default for f in dataclasses.fields(MethodConfig)}
    assert set(fields) == {"batch_size", "image_size", "max_iter"}
    for name in ("munit", "stargan_v2"):
        method = create_method(name, "tiny")
        assert isinstance(method.config, MethodConfig)


# ----- config field checks (i2i_fast.methods.config_checks) -------------------------------------


def _config_error(method_cls, **changes) -> str:
    with pytest.raises(ValueError) as caught:
        method_cls.check_config(dataclasses.replace(method_cls.Config(), **changes))
    return str(caught.value)


@pytest.mark.parametrize("method, changes, message", [
    ("tunit", {"num_clusters": True}, "tunit: num_clusters: expected an int >= 1, got True"),
    ("tunit", {"gen_dim": 0}, "tunit: gen_dim: expected None (the official width) or an int >= 1, "
                              "got 0"),
    ("tunit", {"separated": -1}, "tunit: separated: expected an int >= 0 (an iteration), got -1"),
    ("tunit", {"jitter_hue": 0.7}, "tunit: jitter_hue: expected a value in [0, 0.5], got 0.7"),
    ("tunit", {"lr": float("nan")}, "tunit: lr: expected a value >= 0, got nan"),
    ("drit", {"d_iter": 1.5}, "drit: d_iter: expected an int >= 1, got 1.5"),
    ("stargan_v2", {"ema_beta": 2}, "stargan_v2: ema_beta: expected a value in [0, 1], got 2"),
    ("bicyclegan", {"nz": 0}, "bicyclegan: nz: expected an int >= 1, got 0"),
])
def test_config_field_checks_name_the_field(method, changes, message):
    from i2i_fast.methods.registry import get_method_class

    assert _config_error(get_method_class(method), **changes) == message


def test_smallest_power_of_two_run_keeps_the_random_state_and_names_the_method():
    from i2i_fast.methods import sizes

    def run_at(side: int) -> None:
        torch.randn(3)  # building networks draws
        if side < 8:
            raise ValueError("too small")

    torch.manual_seed(5)
    expected = torch.rand(1)
    torch.manual_seed(5)
    assert sizes.smallest_power_of_two_run("m", run_at) == 8
    assert torch.equal(torch.rand(1), expected)

    def never(side: int) -> None:
        raise RuntimeError("no")

    with pytest.raises(ValueError, match=f"^m: these networks run at no image size up to "
                                         f"{sizes.LIMIT}$"):
        sizes.smallest_power_of_two_run("m", never)
