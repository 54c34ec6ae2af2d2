"""The GAN losses as torch operators: opcheck, gradcheck, gradgradcheck for R1, torch.compile,
a full discriminator step with R1 against the reference, autocast, inference mode."""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F

import i2i_fast.ops as ops
from helpers import channels_last
from loss_helpers import MODE_TARGETS, REDUCTIONS, close, make_domain, make_outputs

lib = torch.ops.i2i_fast


def _target_args(target):
    return (target, 0.0) if isinstance(target, str) else ("label", float(target))


def _gan_loss_samples():
    """(operator, args) for gan_loss on small inputs: every mode/target, reductions, heads."""
    samples = []
    scales = make_outputs(2, [(1, 3, 3), (1, 2, 2)], torch.float32)
    heads = make_outputs(3, [(4, 2, 2)], torch.float32)
    domain = make_domain(3, 4)
    for (mode, target) in MODE_TARGETS:
        t, label = _target_args(target)
        samples.append((lib.gan_loss.default, (scales, mode, t, label, None, "mean")))
    for reduction in REDUCTIONS:
        samples.append((lib.gan_loss.default, (scales, "lsgan", "real", 0.0, None, reduction)))
        samples.append((lib.gan_loss.default, (heads, "hinge", "fake", 0.0, domain, reduction)))
    return samples


@pytest.mark.parametrize("sample", range(len(_gan_loss_samples())))
def test_opcheck_gan_loss(sample):
    op, args = _gan_loss_samples()[sample]
    args = ([x.clone().requires_grad_() for x in args[0]], *args[1:])
    torch.library.opcheck(op, args)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_opcheck_r1_penalty(reduction, layout):
    grads = make_outputs(2, [(3, 4, 5)], torch.float32)[0]
    if layout == "channels_last":
        grads = channels_last(grads)
    torch.library.opcheck(lib.r1_penalty.default,
                          (grads.clone().requires_grad_(), 0.5, reduction))


def test_opcheck_backward_operators():
    scales = make_outputs(2, [(1, 3, 3), (1, 2, 2)], torch.float32)
    heads = make_outputs(3, [(4, 2, 2)], torch.float32)
    domain = make_domain(3, 4)
    torch.library.opcheck(lib.gan_loss_backward.default,
                          (torch.tensor(1.5), scales, "nsgan", "label", 0.5, None, "mean"))
    torch.library.opcheck(lib.gan_loss_backward.default,
                          (torch.rand(3), heads, "hinge", "real", 0.0, domain, "none"))
    grads = make_outputs(2, [(3, 4, 5)], torch.float32)[0]
    for reduction, g in (("mean", torch.tensor(2.0)), ("none", torch.rand(2))):
        torch.library.opcheck(lib.r1_penalty_backward.default,
                              (g.requires_grad_(), grads.clone().requires_grad_(), 0.5,
                               reduction))
    torch.library.opcheck(lib.r1_penalty_backward.default,
                          (torch.tensor(1.0), channels_last(grads), 1.0, "sum"))


@pytest.mark.parametrize("mode_target", MODE_TARGETS, ids=lambda mt: f"{mt[0]}-{mt[1]}")
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck_float64(mode_target, reduction):
    mode, target = mode_target
    scales = [x.requires_grad_() for x in make_outputs(2, [(1, 3, 3), (1, 1, 1)],
                                                       torch.float64, spread=0.5)]
    heads = make_outputs(3, [(4, 2)], torch.float64, spread=0.5)[0].requires_grad_()
    domain = make_domain(3, 4)
    # Hinge's kink at ±1 is a non-differentiable point: keep the samples away from it.
    assert all(((x.abs() - 1).abs() > 1e-3).all() for x in [*scales, heads])
    assert torch.autograd.gradcheck(
        lambda a, b: ops.gan_loss([a, b], target, mode, reduction=reduction), scales)
    assert torch.autograd.gradcheck(
        lambda h: ops.gan_loss(h, target, mode, domain=domain, reduction=reduction), (heads,))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("weight", [0.5, 1.0])
def test_r1_gradcheck_and_gradgradcheck(reduction, layout, weight):
    grads = make_outputs(3, [(2, 3, 4)], torch.float64)[0]
    if layout == "channels_last":
        grads = channels_last(grads)
    grads.requires_grad_()
    fn = lambda g: ops.r1_penalty(g, weight, reduction)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (grads,))
    assert torch.autograd.gradgradcheck(fn, (grads,))


def test_gan_loss_double_backward_is_an_error_naming_the_operator():
    x = make_outputs(2, [(1, 3, 3)], torch.float64)[0].requires_grad_()
    (gx,) = torch.autograd.grad(ops.gan_loss(x, "real", "lsgan"), x, create_graph=True)
    with pytest.raises(RuntimeError, match="gan_loss_backward"):
        gx.sum().backward()


# ----- gan_loss's autograd node ------------------------------------------------------------------


def test_gan_loss_node_saves_its_outputs_and_frees_them_after_backward():
    x = make_outputs(2, [(1, 3, 3)], torch.float64)[0].requires_grad_()
    h = make_outputs(2, [(4,)], torch.float64)[0].requires_grad_()
    packed = []

    def pack(t):
        packed.append(t.shape)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = ops.gan_loss(x, "real", "lsgan") + ops.gan_loss(
            h, "fake", "hinge", domain=torch.tensor([3, 1]))
    assert loss.grad_fn.next_functions[0][0].name() == "GanLossBackward"
    assert packed == [x.shape, h.shape, (2,)]  # the outputs and the domain
    first = torch.autograd.grad(loss, [x, h], retain_graph=True)
    again = torch.autograd.grad(loss, [x, h])
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        torch.autograd.grad(loss, [x, h])


def test_gan_loss_node_sees_inplace_changes_of_its_outputs():
    leaf = make_outputs(2, [(1, 3, 3)], torch.float32)[0].requires_grad_()
    x = leaf * 1.0
    loss = ops.gan_loss(x, "real", "lsgan")
    x.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_forward_mode_ad_gives_the_reference_tangent():
    """(It was refused before; tests/test_ops_forward_mode_ad.py covers every case.)"""
    import torch.autograd.forward_ad as fwAD

    x = make_outputs(2, [(1, 3, 3)], torch.float64)[0].requires_grad_()
    t = make_outputs(2, [(1, 3, 3)], torch.float64, seed=1)[0]
    _, expected = torch.func.jvp(lambda z: ops.reference.gan_loss(z, "real", "lsgan"), (x,), (t,))
    with fwAD.dual_level():
        loss = ops.gan_loss(fwAD.make_dual(x, t), "real", "lsgan")
        tangent = fwAD.unpack_dual(loss).tangent
    assert close(tangent, expected) < 1e-12


@pytest.mark.parametrize("compiler", ["eager", "inductor"])
def test_gan_loss_under_compiled_autograd(compiler):
    from torch._dynamo import compiled_autograd

    scales = [x.requires_grad_() for x in make_outputs(4, [(1, 4, 4), (1, 2, 2)], torch.float32)]
    heads = make_outputs(4, [(3,)], torch.float32)[0].requires_grad_()
    domain = make_domain(4, 3)

    def grads():
        loss = (ops.gan_loss(scales, "real", "lsgan")
                + ops.gan_loss(heads, "fake", "nsgan", domain=domain, reduction="none").sum())
        return torch.autograd.grad(loss, [*scales, heads])

    expected = grads()
    torch._dynamo.reset()
    with compiled_autograd._enable(torch.compile(backend=compiler)):
        got = grads()
    torch._dynamo.reset()
    for g, e in zip(got, expected):
        assert close(g, e) < 1e-6


# ----- a discriminator step with R1, against the reference losses ------------------------------


class HeadsDiscriminator(torch.nn.Module):
    """A small StarGAN v2 / TUNIT-like discriminator: conv trunk, one logit per domain (N, K)."""

    def __init__(self, heads=3, width=8):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, width, 3, stride=2, padding=1)
        self.conv2 = torch.nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)
        self.head = torch.nn.Conv2d(2 * width, heads, 4)

    def forward(self, x):
        h = F.leaky_relu(self.conv1(x), 0.2)
        h = F.leaky_relu(self.conv2(h), 0.2)
        return self.head(h).flatten(1)  # (N, K) at 16x16 input


def d_step_with_r1(d, x_real, y_real, x_fake, y_fake, mode, r1_weight, lambda_reg, losses,
                   d_fake=None):
    """StarGAN v2's (nsgan, weight 0.5) or TUNIT's (hinge, weight 1 x w_gp 10) D loss with R1.

    ``losses`` is i2i_fast.ops or i2i_fast.ops.reference; ``d_fake`` (default d) runs the fake
    branch, so a compiled copy of D can take it while the R1 branch runs D eagerly.
    """
    x_real = x_real.detach().requires_grad_()
    out_real = d(x_real)
    loss_real = losses.gan_loss(out_real, "real", mode, domain=y_real)
    selected = out_real.gather(1, y_real[:, None])
    (grad_real,) = torch.autograd.grad(selected.sum(), x_real, create_graph=True)
    loss_reg = losses.r1_penalty(grad_real, weight=r1_weight)
    out_fake = (d if d_fake is None else d_fake)(x_fake)
    loss_fake = losses.gan_loss(out_fake, "fake", mode, domain=y_fake)
    loss = loss_real + loss_fake + lambda_reg * loss_reg
    grads = torch.autograd.grad(loss, list(d.parameters()))
    return loss.detach(), loss_reg.detach(), grads


@pytest.mark.parametrize("method", ["stargan_v2", "tunit"])
def test_discriminator_step_with_r1_matches_the_reference(method):
    mode, r1_weight, lambda_reg = {"stargan_v2": ("nsgan", 0.5, 1.0),
                                   "tunit": ("hinge", 1.0, 10.0)}[method]
    torch.manual_seed(0)
    d = HeadsDiscriminator().double()
    x_real, x_fake = torch.randn(4, 3, 16, 16).double(), torch.randn(4, 3, 16, 16).double()
    y_real, y_fake = make_domain(4, 3, seed=1), make_domain(4, 3, seed=2)
    args = (d, x_real, y_real, x_fake, y_fake, mode, r1_weight, lambda_reg)
    loss, reg, grads = d_step_with_r1(*args, losses=ops)
    ref_loss, ref_reg, ref_grads = d_step_with_r1(*args, losses=ops.reference)
    assert reg > 0
    assert close(loss, ref_loss) < 1e-12 and close(reg, ref_reg) < 1e-12
    for (name, _), g, rg in zip(d.named_parameters(), grads, ref_grads):
        assert close(g, rg) < 1e-10, name
    # The R1 term really reaches D's parameters: without it the gradients differ.
    _, _, no_reg = d_step_with_r1(*args[:-1], 0.0, losses=ops)
    assert any(close(g, n) > 1e-6 for g, n in zip(grads, no_reg))


def test_r1_branch_eager_while_the_rest_is_compiled():
    """The documented pattern: torch.compile has no double backward, so the R1 branch (D on
    real images, create_graph=True) runs D eagerly; the fake branch may run a compiled D."""
    torch.manual_seed(0)
    d = HeadsDiscriminator()
    d_compiled = torch.compile(d)
    x_real, x_fake = torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)
    y_real, y_fake = make_domain(4, 3, seed=1), make_domain(4, 3, seed=2)
    args = (d, x_real, y_real, x_fake, y_fake, "nsgan", 0.5, 1.0)
    loss, reg, grads = d_step_with_r1(*args, losses=ops, d_fake=d_compiled)
    ref_loss, ref_reg, ref_grads = d_step_with_r1(*args, losses=ops.reference)
    assert close(loss, ref_loss) < 1e-5 and close(reg, ref_reg) < 1e-5
    for g, rg in zip(grads, ref_grads):
        assert close(g, rg) < 1e-4


def test_compiled_discriminator_cannot_take_the_r1_double_backward():
    """Why the R1 branch must run D eagerly (README). If this starts failing, torch.compile
    has gained double backward and the README's note can be relaxed."""
    torch.manual_seed(0)
    d_compiled = torch.compile(HeadsDiscriminator())
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    # Depending on what torch.compile did with the graph, it refuses either the create_graph
    # (donated buffers) or the second backward itself.
    with pytest.raises(RuntimeError, match="double backward|create_graph=False"):
        (g,) = torch.autograd.grad(d_compiled(x).sum(), x, create_graph=True)
        ops.r1_penalty(g).backward()


# ----- torch.compile of a module using gan_loss --------------------------------------------------


class MultiScaleDLoss(torch.nn.Module):
    """A 2-scale PatchGAN discriminator (MUNIT/BicycleGAN style) and a K-head one, with their
    losses through i2i_fast.ops."""

    def __init__(self):
        super().__init__()
        self.scales = torch.nn.ModuleList(
            torch.nn.Sequential(torch.nn.Conv2d(3, 8, 4, 2, 1), torch.nn.LeakyReLU(0.2),
                                torch.nn.Conv2d(8, 1, 1)) for _ in range(2))
        self.heads = HeadsDiscriminator(heads=3)

    def forward(self, real, fake, y):
        outs_real, outs_fake = [], []
        for i, net in enumerate(self.scales):
            outs_real.append(net(real))
            outs_fake.append(net(fake))
            if i == 0:
                real, fake = (F.avg_pool2d(t, 3, 2, 1, count_include_pad=False)
                              for t in (real, fake))
        lsgan = ops.gan_loss(outs_real, "real", "lsgan") + ops.gan_loss(outs_fake, "fake", "lsgan")
        hinge = (ops.gan_loss(self.heads(real), "real", "hinge", domain=y, reduction="none").sum()
                 + ops.gan_loss(self.heads(fake), "fake", "hinge", domain=y))
        return lsgan + hinge


def _compile_inputs():
    torch.manual_seed(0)
    return torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32), make_domain(2, 3)


def test_compile_fullgraph_matches_eager_with_gradients():
    model = MultiScaleDLoss()
    real, fake, y = _compile_inputs()
    eager = model(real, fake, y)
    eager_grads = torch.autograd.grad(eager, list(model.parameters()))
    compiled = torch.compile(model, fullgraph=True)
    out = compiled(real, fake, y)
    grads = torch.autograd.grad(out, list(model.parameters()))
    assert close(out, eager) < 1e-5
    for g, e in zip(grads, eager_grads):
        assert close(g, e) < 1e-4


def test_compile_graph_contains_the_fused_operator():
    seen = []

    def backend(gm, example_inputs):
        seen.extend(str(node.target) for node in gm.graph.nodes if node.op == "call_function")
        return gm.forward

    torch.compile(MultiScaleDLoss(), fullgraph=True, backend=backend)(*_compile_inputs())
    assert sum("i2i_fast.gan_loss" in t for t in seen) == 4, seen


def test_compiled_module_still_checks_domain_range_in_the_kernel():
    model = torch.compile(MultiScaleDLoss(), fullgraph=True)
    real, fake, _ = _compile_inputs()
    model(real, fake, torch.tensor([0, 2]))
    with pytest.raises(ValueError, match=r"gan_loss: domain: expected indices in \[0, 3\)"):
        model(real, fake, torch.tensor([0, 3]))


# ----- autocast, inference mode, what gets a gradient --------------------------------------------


def test_autocast_bfloat16_outputs_give_a_float32_loss():
    torch.manual_seed(0)
    model = MultiScaleDLoss()
    real, fake, y = _compile_inputs()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(real, fake, y)
        with ops.use_backend("reference"):
            ref = model(real, fake, y)
    assert loss.dtype == torch.float32
    assert close(loss, ref) < 1e-5
    grads = torch.autograd.grad(loss, list(model.parameters()))
    assert all(torch.isfinite(g).all() for g in grads)


def test_inference_mode():
    outputs = make_outputs(2, [(1, 4, 4), (1, 2, 2)], torch.float32)
    with torch.inference_mode():
        loss = ops.gan_loss(outputs, "generator", "lsgan")
        reg = ops.r1_penalty(outputs[0], 0.5)
    assert close(loss, ops.reference.gan_loss(outputs, "generator", "lsgan")) < 1e-6
    assert close(reg, ops.reference.r1_penalty(outputs[0], 0.5)) < 1e-6


def test_only_outputs_that_require_grad_get_one():
    a, b = make_outputs(2, [(1, 4, 4), (1, 2, 2)], torch.float32)
    a.requires_grad_()
    loss = ops.gan_loss([a, b], "real", "nsgan")
    assert loss.requires_grad
    (ga,) = torch.autograd.grad(loss, a)
    assert ga.shape == a.shape and b.grad is None
    assert not ops.gan_loss([b], "real", "nsgan").requires_grad


# ----- sigmoid_bce (DRIT) under torch.compile ----------------------------------------------------


@pytest.mark.parametrize("backend", ["automatic", "reference"])
@pytest.mark.parametrize("dynamic", [None, True], ids=["default", "dynamic"])
def test_sigmoid_bce_under_fullgraph_compile_with_changing_labels(dynamic, backend):
    """DRIT's labels 1, 0 and 0.5 in turn on changing sizes: each call as eager, with its
    gradient; a label outside [0, 1] is still refused, naming the argument."""
    torch._dynamo.reset()

    def loss(x, label):
        return ops.gan_loss([x, F.avg_pool2d(x, 2)], label, "sigmoid_bce")

    compiled = torch.compile(loss, fullgraph=True, dynamic=dynamic)
    forced = ops.use_backend("reference") if backend == "reference" else contextlib.nullcontext()
    sides = (6, 6, 6) if dynamic is None else (6, 8, 10)
    with forced:
        for side, label in zip(sides, (1.0, 0.0, 0.5)):
            x = make_outputs(2, [(1, side, side)], torch.float32, spread=6.0)[0]
            eager_x, compiled_x = x.clone().requires_grad_(), x.clone().requires_grad_()
            expected = loss(eager_x, label)
            got = compiled(compiled_x, label)
            assert close(got, expected) < 1e-6, (side, label)
            (g,), (e,) = (torch.autograd.grad(got, compiled_x),
                          torch.autograd.grad(expected, eager_x))
            assert close(g, e) < 1e-6, (side, label)
        with pytest.raises((ValueError, RuntimeError),
                           match=r"gan_loss: target: expected a label in \[0, 1\]"):
            compiled(x, 1.5)
    torch._dynamo.reset()
