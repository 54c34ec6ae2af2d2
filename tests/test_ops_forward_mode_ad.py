"""Forward-mode automatic differentiation (torch.func.jvp, torch.autograd.forward_ad) of every
operator on every backend: the tangent of the reference, or an error naming the operator, never a
silent zero.

Every operator in i2i_fast.ops.OPS needs a sample here (the first test fails otherwise), and every
operator of the compiled library must be reached by the samples (test_every_compiled_operator_...),
so a new operator or backend is covered without writing its own forward-mode test.
"""

from __future__ import annotations

import pytest
import torch
import torch.autograd.forward_ad as fwAD
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map

import i2i_fast.ops as ops
from helpers import TOLERANCE, channels_last, rel_err
from loss_helpers import SIGMOID_BCE_EXTREMES, make_domain

F64 = torch.float64


def _randn(*shape, seed, dtype=F64, scale=1.0, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=F64) * scale + shift).to(dtype)


def _positive(*shape, seed, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g, dtype=F64) * 1.5 + 0.25).to(dtype)


# op -> (call(module, *inputs), inputs): module is i2i_fast.ops or i2i_fast.ops.reference, every
# input a float64 tensor that gets a tangent.
SAMPLES = {
    "adain": (lambda m, x, w, b: m.adain(x, w, b, activation="leaky_relu"),
              lambda: (_randn(2, 3, 5, 6, seed=0, scale=2), _positive(2, 3, seed=1),
                       _randn(2, 3, seed=2))),
    "instance_norm": (lambda m, x, w, b: m.instance_norm(x, w, b),
                      lambda: (_randn(2, 3, 5, 6, seed=3, scale=2), _positive(3, seed=4),
                               _randn(3, seed=5))),
    "layer_norm": (lambda m, x, w, b: m.layer_norm(x, w, b, style="munit"),
                   lambda: (_randn(2, 3, 5, 6, seed=6, scale=2), _positive(3, seed=7),
                            _randn(3, seed=8))),
    "batch_norm": (lambda m, x, w, b: m.batch_norm(x, w, b, activation="relu")[0],
                   lambda: (_randn(3, 3, 5, 6, seed=23, scale=2), _positive(3, seed=24),
                            _randn(3, seed=25))),
    "filter_response_norm": (lambda m, x, w, b, t: m.filter_response_norm(x, w, b, t),
                             lambda: (_randn(2, 3, 5, 6, seed=19, scale=2), _positive(3, seed=20),
                                      _randn(3, seed=21), _randn(3, seed=22, scale=0.3))),
    "gan_loss": (lambda m, a, b: m.gan_loss([a, b], "real", "lsgan"),
                 lambda: (_randn(3, 1, 4, 4, seed=9), _randn(3, 1, 2, 2, seed=10))),
    "r1_penalty": (lambda m, g: m.r1_penalty(g, 0.5),
                   lambda: (_randn(3, 2, 4, 5, seed=11),)),
    "gaussian_nll": (lambda m, z, mu, logvar: m.gaussian_nll(z, mu, logvar),
                     lambda: (_randn(3, 8, seed=19), _randn(3, 8, seed=20),
                              _randn(3, 8, seed=21))),
    "gaussian_kl": (lambda m, mu, logvar: m.gaussian_kl(mu, logvar, "batch_sum"),
                    lambda: (_randn(3, 8, seed=22), _randn(3, 8, seed=23))),
    "upsample_nearest": (lambda m, x: m.upsample_nearest(x, 3),
                         lambda: (_randn(2, 3, 5, 6, seed=12),)),
    "avg_pool": (lambda m, x: m.avg_pool(x, 2),
                 lambda: (_randn(2, 3, 7, 9, seed=13),)),
    "max_pool": (lambda m, x: m.max_pool(x, 2),
                 lambda: (_randn(2, 3, 7, 9, seed=23),)),
    "reflection_pad": (lambda m, x: m.reflection_pad(x, 2),
                       lambda: (_randn(2, 3, 5, 6, seed=14),)),
    "latent_conv2d": (lambda m, x, z, w, b: m.latent_conv2d(x, z, w, b, 2, 1, "zeros"),
                      lambda: (_randn(2, 3, 7, 6, seed=15), _randn(2, 4, seed=16),
                               _randn(5, 7, 4, 4, seed=17), _randn(5, seed=18))),
    "latent_conv_transpose2d": (
        lambda m, x, z, w, b: m.latent_conv_transpose2d(x, z, w, b, 2, 1, 1),
        lambda: (_randn(2, 3, 5, 4, seed=19), _randn(2, 4, seed=20), _randn(7, 5, 3, 3, seed=21),
                 _randn(5, seed=22))),
    "output_conv2d": (lambda m, x, w, b: m.output_conv2d(x, w, b, 2, "reflect", "tanh"),
                      lambda: (_randn(2, 3, 7, 6, seed=26), _randn(3, 3, 5, 5, seed=27, scale=0.2),
                               _randn(2, 3, seed=28))),  # a per-sample bias
}
ENTRIES = ("torch.func.jvp", "forward_ad", "forward_ad+requires_grad")


def _tangents(inputs, seed=100):
    return tuple(_randn(*x.shape, seed=seed + i, dtype=x.dtype, shift=0.5)
                 for i, x in enumerate(inputs))


def jvp(fn, inputs, tangents, entry):
    """(output, tangent of the output) of fn at `inputs` along `tangents`, through `entry`; a
    missing output tangent comes back as zeros (what a silent drop means)."""
    if entry == "torch.func.jvp":
        return torch.func.jvp(fn, tuple(inputs), tuple(tangents))
    requires_grad = entry == "forward_ad+requires_grad"
    with fwAD.dual_level():
        duals = [fwAD.make_dual(x.detach().clone().requires_grad_(requires_grad), t)
                 for x, t in zip(inputs, tangents)]
        primal, tangent = fwAD.unpack_dual(fn(*duals))
    if tangent is None:
        tangent = torch.zeros_like(primal)
    return primal.detach(), tangent.detach()


def reference_jvp(op, inputs, tangents):
    call, _ = SAMPLES[op]
    return torch.func.jvp(lambda *a: call(ops.reference, *a), tuple(inputs), tuple(tangents))


def refusal_pattern(op):
    return rf"^{op}: forward-mode automatic differentiation \(torch.func.jvp"


def test_every_operator_has_a_sample():
    assert set(SAMPLES) == set(ops.OPS), (
        "every operator of i2i_fast.ops.OPS needs a forward-mode sample in SAMPLES")


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("backend", ops.backend_names())
@pytest.mark.parametrize("op", sorted(SAMPLES))
def test_forward_mode_matches_the_reference_or_is_refused(op, backend, entry):
    """Each backend either computes the reference's tangent (it says it does: forward_ad_reason
    is None) or refuses the call with an error naming the operator."""
    call, make_inputs = SAMPLES[op]
    inputs = make_inputs()
    why = ops.get_backend(backend).reason(op, inputs[0])
    if why is not None:
        pytest.skip(f"{backend} cannot run {op} here: {why}")
    tangents = _tangents(inputs)
    expected, expected_tangent = reference_jvp(op, inputs, tangents)
    supported = ops.get_backend(backend).forward_ad_reason(op) is None
    with ops.use_backend(backend):
        if not supported:
            with pytest.raises(NotImplementedError, match=refusal_pattern(op)):
                jvp(lambda *a: call(ops, *a), inputs, tangents, entry)
            return
        out, tangent = jvp(lambda *a: call(ops, *a), inputs, tangents, entry)
    assert rel_err(out, expected) <= TOLERANCE[F64]
    assert expected_tangent.abs().max() > 0.01  # a tangent worth checking (a dropped one fails)
    assert rel_err(tangent, expected_tangent) <= TOLERANCE[F64]


@pytest.mark.parametrize("op", sorted(SAMPLES))
def test_reverse_mode_still_works_on_dual_inputs(op):
    """Inputs that carry tangents and require grad: the backward pass is the reference's too."""
    call, make_inputs = SAMPLES[op]
    inputs = make_inputs()
    tangents = _tangents(inputs)
    if ops.get_backend(ops.chosen_backend(op, inputs[0])).forward_ad_reason(op) is not None:
        pytest.skip(f"{op} refuses forward mode on the automatic backend")
    leaves = [x.clone().requires_grad_() for x in inputs]
    expected = torch.autograd.grad(call(ops.reference, *leaves).sum(), leaves)
    leaves = [x.clone().requires_grad_() for x in inputs]
    with fwAD.dual_level():
        out = call(ops, *[fwAD.make_dual(x, t) for x, t in zip(leaves, tangents)])
        got = torch.autograd.grad(fwAD.unpack_dual(out).primal.sum(), leaves)
    for g, e in zip(got, expected):
        assert rel_err(g, e) <= TOLERANCE[F64]


@pytest.mark.parametrize("op", sorted(SAMPLES))
def test_forward_mode_through_torch_compile(op):
    """torch.compile(fullgraph=True) of a torch.func.jvp: the reference's tangent, or the
    refusal naming the operator (raised while compiling)."""
    call, make_inputs = SAMPLES[op]
    inputs = make_inputs()
    tangents = _tangents(inputs)
    expected, expected_tangent = reference_jvp(op, inputs, tangents)
    n = len(inputs)
    compiled = torch.compile(
        lambda *a: torch.func.jvp(lambda *p: call(ops, *p), a[:n], a[n:]), fullgraph=True)
    torch._dynamo.reset()
    try:
        if ops.get_backend(ops.chosen_backend(op, inputs[0])).forward_ad_reason(op) is not None:
            with pytest.raises(RuntimeError, match=f"{op}: forward-mode automatic differentiation"):
                compiled(*inputs, *tangents)
            return
        out, tangent = compiled(*inputs, *tangents)
    finally:
        torch._dynamo.reset()
    assert rel_err(out, expected) <= TOLERANCE[F64]
    assert rel_err(tangent, expected_tangent) <= TOLERANCE[F64]


def test_a_tangent_on_a_parameter_alone_is_refused_too():
    x, w, b = SAMPLES["adain"][1]()
    with pytest.raises(NotImplementedError, match=refusal_pattern("adain")):
        torch.func.jvp(lambda w_: ops.adain(x, w_, b), (w,), (torch.ones_like(w),))


def test_the_refusal_says_how_to_get_the_derivative():
    x, w, b = SAMPLES["instance_norm"][1]()
    (t,) = _tangents((x,))
    with pytest.raises(NotImplementedError, match=r"use_backend\('reference'\)"):
        torch.func.jvp(lambda x_: ops.instance_norm(x_, w, b), (x,), (t,))
    with ops.use_backend("reference"):  # ... which does
        _, tangent = torch.func.jvp(lambda x_: ops.instance_norm(x_, w, b), (x,), (t,))
    assert tangent.abs().max() > 0.1


def test_inputs_without_tangents_inside_a_dual_level_run_as_usual():
    call, make_inputs = SAMPLES["adain"]
    inputs = make_inputs()
    with fwAD.dual_level():
        out = call(ops, *inputs)
    assert fwAD.unpack_dual(out).tangent is None
    assert rel_err(out, call(ops.reference, *inputs)) <= TOLERANCE[F64]


def test_a_new_implementation_takes_tangents_only_when_it_says_so(monkeypatch):
    """The guard does not depend on the operator: a new operator (here one whose implementation
    drops the tangent, as a kernel below autograd does) is refused until it is registered with
    forward_ad=True."""
    from i2i_fast.ops import backends

    cpu = ops.get_backend("cpu")
    monkeypatch.setattr(cpu, "forward_ad_ops", set(cpu.forward_ad_ops))
    monkeypatch.setitem(cpu.ops, "probe_op", None)  # removed again after the test

    def drops_the_tangent(x):
        return x.detach() * 2

    def doubles(x):
        return x * 2

    x, t = _randn(2, 3, seed=70), _randn(2, 3, seed=71)
    ops.implement("cpu", "probe_op", drops_the_tangent)
    with ops.use_backend("cpu"):
        assert torch.equal(ops.select("probe_op", x)(x), x * 2)  # no tangents: runs as usual
        with pytest.raises(NotImplementedError, match=refusal_pattern("probe_op")
                           + r".*the cpu backend does not implement it"):
            torch.func.jvp(lambda z: ops.select("probe_op", z)(z), (x,), (t,))
        ops.implement("cpu", "probe_op", doubles, forward_ad=True)
        _, tangent = torch.func.jvp(lambda z: ops.select("probe_op", z)(z), (x,), (t,))
        assert torch.equal(tangent, t * 2)
        ops.implement("cpu", "probe_op", drops_the_tangent)  # re-registered without: refused
        with pytest.raises(NotImplementedError, match=refusal_pattern("probe_op")):
            torch.func.jvp(lambda z: ops.select("probe_op", z)(z), (x,), (t,))
    backends._forget_automatic_choices()


# ----- the derivatives, case by case, on the automatic backend ---------------------------------


GAN_CASES = [("lsgan", "real"), ("lsgan", "fake"), ("nsgan", "real"), ("nsgan", 0.3),
             ("hinge", "real"), ("hinge", "fake"), ("hinge", "generator"), ("wgan", "fake"),
             ("sigmoid_bce", "real"), ("sigmoid_bce", 0.5)]


@pytest.mark.parametrize("heads", [False, True], ids=["no-domain", "domain"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("mode_target", GAN_CASES, ids=str)
def test_gan_loss_tangent(mode_target, reduction, heads):
    mode, target = mode_target
    shapes = [(4, 3, 3), (4, 1, 1)] if heads else [(1, 5, 5), (1, 2, 2), ()]
    outputs = [_randn(3, *s, seed=20 + i, scale=2, shift=0.1) for i, s in enumerate(shapes)]
    domain = make_domain(3, 4) if heads else None
    tangents = _tangents(outputs)
    tangents[1].zero_()  # one scale with a zero tangent, and one without a tangent at all
    fn = lambda m: lambda *xs: m.gan_loss([*xs, outputs[-1]], target, mode, domain, reduction)  # noqa: E731
    expected = torch.func.jvp(fn(ops.reference), tuple(outputs[:-1]), tangents[:-1])
    got = torch.func.jvp(fn(ops), tuple(outputs[:-1]), tangents[:-1])
    for g, e in zip(got, expected):
        assert g.shape == e.shape and g.dtype == e.dtype
        assert rel_err(g, e) <= TOLERANCE[F64]


@pytest.mark.parametrize("dtype", [F64, torch.float32], ids=str)
@pytest.mark.parametrize("target", ["fake", 0.5])
def test_sigmoid_bce_tangent_where_the_sigmoid_saturates(dtype, target):
    """DRIT's clamps (p exactly 0 or 1, the backward's 1e-12): each element its own sample, the
    tangent that of the reference in the same dtype, element by element."""
    x = torch.tensor(SIGMOID_BCE_EXTREMES, dtype=dtype)[:, None]
    t = torch.linspace(-2.0, 3.0, x.shape[0], dtype=dtype)[:, None]
    fn = lambda m: lambda x: m.gan_loss(x, target, "sigmoid_bce", reduction="none")  # noqa: E731
    _, expected = torch.func.jvp(fn(ops.reference), (x,), (t,))
    _, got = torch.func.jvp(fn(ops), (x,), (t,))
    if dtype == F64:
        assert torch.all((got - expected).abs() <= 1e-12 * expected.abs()), (got, expected)
    else:
        # The reference's float32 tangent passes through denormals where the clamp acts (at
        # x = -50, sigmoid'(x) t ~ 1e-22 times p ~ 1e-22, before the division by 1e-12): its
        # smallest elements are exact only to an absolute ~1e-33.
        assert rel_err(got, expected) <= TOLERANCE[dtype], (got, expected)
        assert torch.equal(got == 0, expected == 0), (got, expected)  # p exactly 0 or 1


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
def test_gan_loss_tangent_in_low_precision(dtype):
    outputs = [_randn(4, 1, 6, 6, seed=30, dtype=dtype), _randn(4, 1, 3, 3, seed=31, dtype=dtype)]
    tangents = _tangents(outputs)
    expected = torch.func.jvp(lambda a, b: ops.reference.gan_loss([a, b], "real", "nsgan"),
                              tuple(x.double() for x in outputs), tuple(t.double() for t in tangents))
    got = torch.func.jvp(lambda a, b: ops.gan_loss([a, b], "real", "nsgan"), tuple(outputs),
                         tangents)
    assert got[1].dtype == torch.float32  # the loss's dtype
    assert rel_err(got[1], expected[1]) <= TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", [F64, torch.float32, torch.float16], ids=str)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_r1_penalty_tangent(reduction, dtype):
    g = _randn(4, 3, 5, 5, seed=40, dtype=dtype)
    t = _randn(4, 3, 5, 5, seed=41, dtype=dtype)
    expected = torch.func.jvp(lambda z: ops.reference.r1_penalty(z, 2.5, reduction), (g.double(),),
                              (t.double(),))
    got = torch.func.jvp(lambda z: ops.r1_penalty(z, 2.5, reduction), (g,), (t,))
    assert got[1].shape == expected[1].shape
    assert rel_err(got[1], expected[1]) <= TOLERANCE[dtype]


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", [F64, torch.float32], ids=str)
@pytest.mark.parametrize("op, amount", [("upsample_nearest", 2), ("upsample_nearest", 1),
                                        ("avg_pool", 3), ("max_pool", 2), ("max_pool", 3),
                                        ("reflection_pad", 1)])
def test_resampling_tangent(op, amount, dtype, layout):
    x = _randn(2, 4, 7, 6, seed=50, dtype=dtype)
    t = _randn(2, 4, 7, 6, seed=51, dtype=dtype)
    if layout == "channels_last":
        x, t = channels_last(x), channels_last(t)
    expected = torch.func.jvp(lambda z: getattr(ops.reference, op)(z, amount), (x.double(),),
                              (t.double(),))
    got = torch.func.jvp(lambda z: getattr(ops, op)(z, amount), (x,), (t,))
    assert rel_err(got[1], expected[1]) <= TOLERANCE[dtype]


def test_nested_jvp_of_a_resampling_operator():
    """A second directional derivative (jvp of jvp): zero for a linear operator, and the inner
    tangent is the operator applied to the inner direction."""
    x, t1, t2 = (_randn(1, 2, 4, 4, seed=s) for s in (60, 61, 62))

    def inner(z):
        return torch.func.jvp(lambda y: ops.avg_pool(y, 2) * ops.avg_pool(y, 2), (z,), (t1,))[1]

    def inner_reference(z):
        return torch.func.jvp(lambda y: ops.reference.avg_pool(y, 2) ** 2, (z,), (t1,))[1]

    got = torch.func.jvp(inner, (x,), (t2,))
    expected = torch.func.jvp(inner_reference, (x,), (t2,))
    for g, e in zip(got, expected):
        assert rel_err(g, e) <= TOLERANCE[F64]


# ----- every operator of the compiled library ----------------------------------------------------


class _RecordCompiledOperators(TorchDispatchMode):
    """Records one call (its arguments, cloned) of every i2i_fast:: operator that runs."""

    def __init__(self):
        super().__init__()
        self.calls = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.namespace == "i2i_fast" and func not in self.calls:
            self.calls[func] = tree_map(
                lambda a: a.detach().clone() if isinstance(a, torch.Tensor) else a, (args, kwargs))
        return func(*args, **kwargs)


# The samples whose gradient is differentiated again, as R1 does (r1_penalty's backward operator;
# filter_response_norm's double backward operator).
DIFFERENTIATED_TWICE = ("r1_penalty", "filter_response_norm")


def _compiled_operator_calls():
    """One recorded call of every compiled operator that the samples reach, forward and backward
    (create_graph=True and a second backward for DIFFERENTIATED_TWICE)."""
    recorder = _RecordCompiledOperators()
    with ops.use_backend("cpu"), recorder:
        for op, (call, make_inputs) in SAMPLES.items():
            leaves = [x.requires_grad_() for x in make_inputs()]
            out = call(ops, *leaves)
            twice = op in DIFFERENTIATED_TWICE
            grads = torch.autograd.grad(out.sum(), leaves, create_graph=twice)
            if twice:
                torch.autograd.grad(grads[0].sum(), leaves, allow_unused=True)
        # max_pool's compiled operator (block_max) runs below autograd only without grad, and
        # the gather by its window positions only in a double backward: called here directly.
        (x,) = SAMPLES["max_pool"][1]()
        with torch.no_grad():
            torch.ops.i2i_fast.block_max(x, 2)
            _, index = torch.ops.i2i_fast.block_max_forward(x, 2)
            torch.ops.i2i_fast.block_max_gather(x, index, 2, *index.shape[2:])
    return recorder.calls


def _takes_tensors(name):
    schema = getattr(torch.ops.i2i_fast, name.split("::")[1]).default._schema
    return any("Tensor" in str(a.type) for a in schema.arguments)


def _shifted(args, tangents, h):
    return [a + h * t if t is not None else a for a, t in zip(args, tangents)]


@pytest.mark.parametrize("requires_grad", [False, True])
def test_every_compiled_operator_differentiates_forward_or_refuses(requires_grad):
    """Every i2i_fast:: operator, public or not, with tangents on all its floating tensor
    arguments: its output tangents match central differences, or it raises an error naming it."""
    if ops.get_backend("cpu").unavailable_reason() is not None:
        pytest.skip(ops.get_backend("cpu").unavailable_reason())
    calls = _compiled_operator_calls()
    defined = {name for name in torch._C._dispatch_get_all_op_names()
               if name.startswith("i2i_fast::") and _takes_tensors(name)}
    reached = {func._schema.name for func in calls} | {f"i2i_fast::{op}" for op in ops.OPS}
    assert defined <= reached, f"no sample reaches {sorted(defined - reached)}: add one to SAMPLES"
    outcomes = {}
    for func, (args, kwargs) in calls.items():
        name = func._schema.name.split("::")[1]
        flat = list(args)
        is_list = [isinstance(a, list) for a in flat]
        # gan_loss and gan_loss_backward take a list of outputs: its first tensor gets a tangent
        tensors = [a[0] if lst else a for a, lst in zip(flat, is_list)]
        tangents = [torch.randn_like(a) if isinstance(a, torch.Tensor) and a.is_floating_point()
                    else None for a in tensors]

        def run(values):
            full = [[v, *a[1:]] if lst else v for v, a, lst in zip(values, flat, is_list)]
            return func(*full, **kwargs)

        try:
            with fwAD.dual_level():
                duals = [fwAD.make_dual(a.clone().requires_grad_(requires_grad), t)
                         if t is not None else a for a, t in zip(tensors, tangents)]
                result = run(duals)
                results = list(result) if isinstance(result, (list, tuple)) else [result]
                got = [fwAD.unpack_dual(r).tangent for r in results]
        except (NotImplementedError, RuntimeError) as error:
            assert name in str(error), f"{name}: the forward-mode error does not name it: {error}"
            outcomes[name] = "refused"
            continue
        h = 1e-6
        plus, minus = run(_shifted(tensors, tangents, h)), run(_shifted(tensors, tangents, -h))
        plus = list(plus) if isinstance(plus, (list, tuple)) else [plus]
        minus = list(minus) if isinstance(minus, (list, tuple)) else [minus]
        for i, (g, p, m) in enumerate(zip(got, plus, minus)):
            numeric = (p - m) / (2 * h)
            g = torch.zeros_like(numeric) if g is None else g.detach()
            assert rel_err(g, numeric) <= 1e-6, f"{name}: output {i}: wrong or missing tangent"
        outcomes[name] = "differentiated"
    # the operators whose forward derivative exists, as documented
    assert {n for n, o in outcomes.items() if o == "differentiated"} >= {
        "gan_loss", "r1_penalty", "r1_penalty_backward", "block_repeat", "block_sum",
        "reflection_pad", "reflection_pad_backward", "block_max", "block_max_scatter",
        "block_max_gather"}
