"""The method contract (i2i_fast.testing.check_method): every registered method passes it, the
toy plugin of the README passes it unchanged, and a broken method fails it with one message that
names the method and every check it breaks."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
import torch

from i2i_fast.methods import list_methods
from i2i_fast.methods.roles import NetworkRoles
from i2i_fast.testing import CHECKS, MethodCheckError, check_method

PLUGIN = Path(__file__).resolve().parent / "plugins" / "good"

REGISTERED = [info.name for info in list_methods() if info.status != "duplicate"]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks gain nothing from threads, and a busy 2-core machine loses a lot."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def toy_class():
    sys.path.insert(0, str(PLUGIN))
    try:
        from i2i_fast_toy import ToyTranslator

        yield ToyTranslator
    finally:
        sys.path.remove(str(PLUGIN))


@pytest.mark.parametrize("name", REGISTERED)
def test_every_registered_method_passes_check_method(name):
    results = {r.name: r for r in check_method(name)}
    assert list(results) == list(CHECKS)
    # the built-ins declare network roles and reference-guided translation: nothing skipped
    assert all(r.status == "passed" for r in results.values()), [str(r) for r in
                                                                 results.values()]


def test_the_readme_toy_plugin_passes_unchanged(toy_class):
    results = {r.name: r for r in check_method(toy_class)}
    assert results["translate"].status == "passed"
    assert "reference-guided not declared" in results["translate"].detail
    # it declares no roles: the DDP check is skipped, and says why
    assert results["ddp_wrappers"].status == "skipped"
    assert "declares no network roles" in results["ddp_wrappers"].detail
    assert all(r.status == "passed" for name, r in results.items() if name != "ddp_wrappers")


def test_a_config_of_ones_own(toy_class):
    results = check_method(toy_class, config={"dim": 4, "image_size": 8})
    assert {r.status for r in results} <= {"passed", "skipped"}


def broken_method(toy_class):
    """The toy, broken five ways: a loss left attached to the graph, translate ignoring n_styles,
    a config field the trainer cannot use, a generator called around its DDP wrapper, and state
    outside the state dict (it changes the translations, and a resumed run)."""

    @dataclasses.dataclass
    class BrokenConfig(toy_class.Config):
        max_iter: int = 0  # the trainer needs >= 1

    class Broken(toy_class):
        name = "broken_toy"
        Config = BrokenConfig
        configs = {}

        def __init__(self, config, context=None):
            super().__init__(config, context)
            self.declare_networks(NetworkRoles(trained=("g_in", "g_out", "d")))
            self.style_shift = torch.randn(1)  # not a registered buffer: lost by state_dict

        def train_step(self, batch, step):
            losses = super().train_step(batch, step)
            losses["g"] = losses["g"].clone().requires_grad_(True) * 1.0
            return losses

        def generate(self, x, noise):
            # calls g_in directly (not through self.nets.g_in): DDP would not average its grads
            h = self.g_in(torch.cat([x, noise.expand(-1, 1, *x.shape[2:])], 1))
            return torch.tanh(self.g_out(h) + self.style_shift)

        def translate(self, x, *, n_styles=1, reference=None, target_domain=None,
                      generator=None):
            return super().translate(x, n_styles=1, generator=generator)

    return Broken


def test_a_broken_method_fails_with_one_message_naming_each_check(toy_class):
    with pytest.raises(MethodCheckError) as caught:
        check_method(broken_method(toy_class))
    message = str(caught.value)
    assert message.startswith("check_method('broken_toy'): ")
    failed = [line.split(":")[0][2:] for line in message.splitlines() if line.startswith("- ")]
    assert failed == ["configs", "train_step", "resume", "translate", "state_dict",
                      "ddp_wrappers"]
    assert "config.max_iter: expected an int >= 1" in message
    assert "loss 'g' is attached to the autograd graph" in message
    assert "returned shape (2, 1, 3, 16, 16), expected (2, 3, 3, 16, 16)" in message
    assert "the resumed run's next losses differ from the straight run's" in message
    assert "translates differently" in message
    assert "outside the DDP wrapper" in message and "g_in" in message
    assert "trained networks never called through their wrapper: ['g_in', 'g_out', 'd']" in \
        message


def test_bad_arguments_of_check_method():
    with pytest.raises(TypeError, match="name_or_class: expected a registered method name"):
        check_method(42)
    with pytest.raises(MethodCheckError, match="configuration under test does not resolve"):
        check_method("munit", config="no_such_config")
