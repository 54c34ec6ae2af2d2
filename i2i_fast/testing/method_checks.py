"""``check_method``: the contract every method (built-in or plugin) passes, checked in seconds on
the CPU, in the spirit of scikit-learn's ``check_estimator``.

    from i2i_fast.testing import check_method
    check_method("my_method")                 # its "tiny" named configuration, else its defaults
    check_method(MyMethod, config={"dim": 4}) # a class and a configuration of one's own

Each check runs on its own; every failure is collected and reported at the end in one
``MethodCheckError`` naming the method and each failed check. On success the function returns
the list of ``CheckResult`` (passed, and skipped with the reason: a check that applies only to
methods declaring network roles, a reference-guided translation the method does not declare, a
float64 run the method cannot do).

The checks:

- ``configs``: every named configuration resolves and passes ``check_config``; the method builds
  from the configuration under test;
- ``train_step``: two iterations return finite, detached losses named in ``loss_names``;
- ``backends``: the reference backend and each fused backend that runs CPU tensors give the same
  losses for two iterations: in float64 to 1e-9 (relative), in float32 at the first iteration to
  1e-3 (i2i_fast.testing.runs says why those tolerances);
- ``resume``: after ``training_state()`` is saved (torch.save) and loaded
  (torch.load(weights_only=True)) into a method built from another seed, with the random state
  restored, the next iteration's losses equal those of the run that went straight on, exactly;
- ``translate``: (N, K, C, H, W) in [-1, 1]; K random styles that differ; the same generator seed
  gives the same images; reference-guided (where declared: ``reference_guided``) one output per
  input that depends on the reference; a bad target_domain and a wrongly shaped reference are
  ValueError/TypeError; the training mode is restored;
- ``state_dict``: it loads strictly into a fresh instance, which then translates identically;
- ``ddp_wrappers`` (methods that declare network roles): in an iteration, every trained network
  runs through its DDP wrapper whenever its trainable parameters take part in a computation with
  gradients (RunContext's rule 1), and each one's wrapper is used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import math
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from ..methods.base import Method, RunContext
from ..methods.registry import get_method_class, resolve_config
from ..methods.translation import Domains
from .runs import (
    FLOAT32_FIRST,
    FLOAT64,
    build_method,
    default_dtype,
    loss_differences,
    random_batch,
    run_steps,
)

STEPS = 2  # iterations of the train_step and backends checks
N_TRANSLATE = 2  # inputs of the translate checks
K_STYLES = 3


class MethodCheckError(AssertionError):
    """check_method found methods breaking the contract: the message names each failed check."""


class CheckSkipped(Exception):
    """A check that does not apply to this method (the message says why)."""


@dataclasses.dataclass
class CheckResult:
    name: str
    status: str  # "passed" | "failed" | "skipped"
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.name}: {self.status}" + (f" ({self.detail})" if self.detail else "")


def _method_class(name_or_class: str | type) -> type:
    if isinstance(name_or_class, str):
        return get_method_class(name_or_class)
    if isinstance(name_or_class, type) and issubclass(name_or_class, Method):
        return name_or_class
    raise TypeError(f"check_method: name_or_class: expected a registered method name or a "
                    f"subclass of i2i_fast.methods.Method, got {name_or_class!r}")


def _config_under_test(cls: type, config: Any) -> Any:
    if config is not None:
        return resolve_config(cls, config)
    if "tiny" in cls.configs:
        return resolve_config(cls, "tiny")
    return resolve_config(cls, None)


@contextlib.contextmanager
def _preserved_random_state() -> Iterator[None]:
    state = torch.get_rng_state()
    try:
        yield
    finally:
        torch.set_rng_state(state)


class _Checker:
    """The checks of one method and configuration (one method per check, each independent)."""

    def __init__(self, cls: type, config: Any) -> None:
        self.cls = cls
        self.config = config
        self.name = cls.name or cls.__name__

    def build(self, seed: int = 0, context: RunContext | None = None) -> Method:
        return build_method(self.cls, self.config, seed, context)

    def images(self, n: int, seed: int) -> torch.Tensor:
        return random_batch("multi_domain", self.config, n, seed)["image"]

    # ----- configs -----

    def check_configs(self) -> str:
        for name in self.cls.configs:
            resolved = resolve_config(self.cls, name)
            try:
                self.cls.check_config(resolved)
            except ValueError as error:
                raise AssertionError(f"named configuration {name!r} fails check_config: "
                                     f"{error}") from None
        for field in ("batch_size", "image_size", "max_iter"):
            value = getattr(self.config, field, None)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise AssertionError(f"config.{field}: expected an int >= 1 (the trainer reads "
                                     f"it), got {value!r}")
        self.build()
        return f"{len(self.cls.configs)} named configuration(s)"

    # ----- train_step -----

    def check_train_step(self) -> str:
        method = self.build()
        n = self.config.batch_size
        for step in range(STEPS):
            batch = random_batch(method.data_kind, self.config, n, seed=step)
            losses = method.train_step(batch, step)
            if not isinstance(losses, dict) or not losses:
                raise AssertionError(f"train_step returned {type(losses).__name__} "
                                     f"{losses!r:.80}, expected a non-empty dict of losses")
            unknown = sorted(set(losses) - set(self.cls.loss_names))
            if self.cls.loss_names and unknown:
                raise AssertionError(f"losses {unknown} are not in loss_names "
                                     f"{self.cls.loss_names}")
            for key, value in losses.items():
                if isinstance(value, torch.Tensor):
                    if value.numel() != 1:
                        raise AssertionError(f"loss {key!r}: expected a 0-d tensor or a float, "
                                             f"got shape {tuple(value.shape)}")
                    if value.requires_grad or value.grad_fn is not None:
                        raise AssertionError(f"loss {key!r} is attached to the autograd graph: "
                                             f"return value.detach()")
                    value = float(value)
                if not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise AssertionError(f"step {step}: loss {key!r} = {value!r}, expected a "
                                         f"finite number")
        return f"{STEPS} iterations, losses {sorted(losses)}"

    # ----- backends -----

    @staticmethod
    def fused_backends() -> list[str]:
        """The backends other than the reference that the automatic choice may give CPU tensors."""
        from .. import ops

        probe = torch.zeros(1)
        names = []
        for name in ops.backend_names():
            backend = ops.get_backend(name)
            if name == "reference" or backend.unavailable_reason() is not None or not backend.ops:
                continue
            if backend.automatic_reason(next(iter(backend.ops)), probe) is None:
                names.append(name)
        return names

    def losses(self, backend: str, dtype: torch.dtype, steps: int) -> list[dict[str, float]]:
        with default_dtype(dtype):
            method = self.build()
        return run_steps(method, steps, backend=backend, dtype=dtype)

    def check_backends(self) -> str:
        fused = self.fused_backends()
        if not fused:
            raise CheckSkipped("no fused backend runs CPU tensors here (the extension is not "
                               "built)")
        problems, notes = [], []
        try:
            reference64 = self.losses("reference", torch.float64, STEPS)
        except (RuntimeError, TypeError) as error:
            reference64 = None
            notes.append(f"float64 not compared: the method does not run in float64 "
                         f"({type(error).__name__}: {str(error).splitlines()[0][:120]})")
        reference32 = self.losses("reference", torch.float32, 1)
        for backend in fused:
            if reference64 is not None:
                problems += [f"{backend} vs reference, float64, {line}" for line in
                             loss_differences(self.losses(backend, torch.float64, STEPS),
                                              reference64, FLOAT64)]
            problems += [f"{backend} vs reference, float32, {line}" for line in
                         loss_differences(self.losses(backend, torch.float32, 1), reference32,
                                          FLOAT32_FIRST)]
        if problems:
            raise AssertionError("; ".join(problems))
        compared = (f"float64 over {STEPS} iterations ({FLOAT64}), " if reference64 is not None
                    else "")
        return (f"reference vs {', '.join(fused)}: {compared}float32 first iteration "
                f"({FLOAT32_FIRST})" + ("; " + "; ".join(notes) if notes else ""))

    # ----- resume -----

    def check_resume(self) -> str:
        straight = self.build(seed=0)
        run_steps(straight, 1)
        buffer = io.BytesIO()
        torch.save(straight.training_state(), buffer)
        rng = torch.get_rng_state()
        expected = run_steps(straight, 1, first_step=1)
        buffer.seek(0)
        state = torch.load(buffer, weights_only=True)
        resumed = self.build(seed=1)
        resumed.load_training_state(state)
        torch.set_rng_state(rng)
        got = run_steps(resumed, 1, first_step=1)
        if got != expected:
            differences = loss_differences(got, expected, FLOAT64) or ["bitwise differences"]
            raise AssertionError("the resumed run's next losses differ from the straight run's: "
                                 + "; ".join(differences))
        return "training_state through torch.save/torch.load(weights_only=True), exact"

    # ----- translate -----

    def _target(self, method: Method) -> Any:
        domains = Domains.of(method)
        if domains.default is not None:
            return None
        return (domains.count - 1) if domains.count else 0

    def _bad_targets(self, method: Method) -> list[Any]:
        domains = Domains.of(method)
        bad: list[Any] = ["no-such-domain", -1]
        if domains.count is not None:
            bad.append(domains.count)
        return bad

    def _translate(self, method: Method, x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        out = method.translate(x, target_domain=self._target(method), **kwargs)
        if not isinstance(out, torch.Tensor):
            raise AssertionError(f"translate returned {type(out).__name__}, expected a tensor")
        return out

    def check_translate(self) -> str:
        method = self.build()
        x = self.images(N_TRANSLATE, seed=100)
        n, c, h, w = x.shape
        was_training = method.training
        out = self._translate(method, x, n_styles=K_STYLES,
                              generator=torch.Generator().manual_seed(0))
        if tuple(out.shape) != (n, K_STYLES, c, h, w):
            raise AssertionError(f"translate(x {tuple(x.shape)}, n_styles={K_STYLES}) returned "
                                 f"shape {tuple(out.shape)}, expected {(n, K_STYLES, c, h, w)}")
        self._in_range(out, "translate")
        for i in range(K_STYLES):
            for j in range(i + 1, K_STYLES):
                if torch.allclose(out[:, i], out[:, j]):
                    raise AssertionError(f"random styles {i} and {j} give the same images")
        again = self._translate(method, x, n_styles=K_STYLES,
                                generator=torch.Generator().manual_seed(0))
        if not torch.equal(out, again):
            raise AssertionError("translate with the same generator seed gave other images")
        if method.training != was_training:
            raise AssertionError("translate changed the method's training mode")
        done = [f"random styles {tuple(out.shape)}"]
        if self.cls.reference_guided:
            self._check_reference(method, x)
            done.append("reference-guided")
        else:
            done.append("reference-guided not declared (reference_guided = False): not checked")
        self._check_bad_arguments(method, x)
        done.append("bad target_domain and reference refused")
        return ", ".join(done)

    @staticmethod
    def _in_range(out: torch.Tensor, what: str) -> None:
        if not torch.isfinite(out).all():
            raise AssertionError(f"{what}: non-finite values")
        low, high = float(out.min()), float(out.max())
        if low < -1 - 1e-6 or high > 1 + 1e-6:
            raise AssertionError(f"{what}: values in [{low:.4f}, {high:.4f}], expected [-1, 1]")

    def _check_reference(self, method: Method, x: torch.Tensor) -> None:
        n, c, h, w = x.shape
        ref_a, ref_b = self.images(1, seed=101), self.images(1, seed=102)
        out_a = self._translate(method, x, reference=ref_a)
        if tuple(out_a.shape) != (n, 1, c, h, w):
            raise AssertionError(f"translate(x, reference=(1, ...)) returned shape "
                                 f"{tuple(out_a.shape)}, expected {(n, 1, c, h, w)}")
        self._in_range(out_a, "reference-guided translate")
        if not torch.equal(out_a, self._translate(method, x, reference=ref_a)):
            raise AssertionError("reference-guided translate is not deterministic")
        if torch.allclose(out_a, self._translate(method, x, reference=ref_b)):
            raise AssertionError("two references gave the same reference-guided images")
        per_input = self._translate(method, x, reference=self.images(n, seed=103))
        if tuple(per_input.shape) != (n, 1, c, h, w):
            raise AssertionError(f"translate(x, reference=(N, ...)) returned shape "
                                 f"{tuple(per_input.shape)}, expected {(n, 1, c, h, w)}")

    def _check_bad_arguments(self, method: Method, x: torch.Tensor) -> None:
        n = x.shape[0]
        calls: list[tuple[str, Callable[[], Any]]] = [
            (f"target_domain={bad!r}", functools.partial(method.translate, x, target_domain=bad))
            for bad in self._bad_targets(method)]
        target = self._target(method)
        calls += [
            (f"reference of {n + 1} images for {n} inputs",
             functools.partial(method.translate, x, target_domain=target,
                               reference=self.images(n + 1, seed=104))),
            ("a 3-d reference", functools.partial(method.translate, x, target_domain=target,
                                                  reference=x[0])),
            ("n_styles=0", functools.partial(method.translate, x, target_domain=target,
                                             n_styles=0)),
        ]
        for what, call in calls:
            try:
                call()
            except (ValueError, TypeError):
                continue
            except Exception as error:  # noqa: BLE001 - any other error is reported as such
                raise AssertionError(f"translate with {what} raised {type(error).__name__}: "
                                     f"{error}, expected a ValueError or TypeError") from None
            raise AssertionError(f"translate with {what} was accepted, expected a ValueError or "
                                 f"TypeError naming the argument")

    # ----- state_dict -----

    def check_state_dict(self) -> str:
        method = self.build(seed=0)
        run_steps(method, 1)
        fresh = self.build(seed=1)
        fresh.load_state_dict(method.state_dict(), strict=True)
        x = self.images(N_TRANSLATE, seed=105)
        a = self._translate(method, x, n_styles=2, generator=torch.Generator().manual_seed(1))
        b = self._translate(fresh, x, n_styles=2, generator=torch.Generator().manual_seed(1))
        if not torch.equal(a, b):
            raise AssertionError("after load_state_dict(strict=True) the fresh instance "
                                 "translates differently: some state is not in state_dict()")
        return "strict load into a fresh instance, same translations"

    # ----- DDP wrappers -----

    def check_ddp_wrappers(self) -> str:
        recorder = _WrapperRecorder()
        method = self.build(context=_RecordingContext(recorder))
        roles = method.roles
        if roles is None:
            raise CheckSkipped(f"{self.name} declares no network roles (declare_networks), so "
                               f"which networks DDP must wrap is not known here; under torchrun "
                               f"only the networks it passes to context.wrap are wrapped")
        recorder.watch(method, roles.trained)
        try:
            run_steps(method, 1)
        finally:
            recorder.remove_hooks()
        problems = []
        if recorder.bypasses:
            problems.append("trainable parameters used with gradients outside the DDP wrapper "
                            "(call the network through method.nets.<name>, rule 1 of "
                            "RunContext): " + "; ".join(sorted(recorder.bypasses)))
        unused = [name for name in roles.trained if name not in recorder.called]
        if unused:
            problems.append(f"trained networks never called through their wrapper: {unused}")
        if problems:
            raise AssertionError(" ".join(problems))
        return f"{len(roles.trained)} trained network(s) called through their wrappers"


class _WrapperRecorder:
    """Stands in for DistributedDataParallel: records which networks ran inside their wrapper
    and which trainable submodules ran with gradients outside it."""

    def __init__(self) -> None:
        self.active: dict[int, int] = {}  # id(network) -> depth of wrapper calls
        self.called: set[str] = set()
        self.bypasses: set[str] = set()
        self.names: dict[int, str] = {}
        self.hooks: list[Any] = []

    def watch(self, method: nn.Module, trained: tuple[str, ...]) -> None:
        for name in trained:
            network = getattr(method, name)
            self.names[id(network)] = name
            for sub_name, sub in network.named_modules():
                if any(True for _ in sub.parameters(recurse=False)):
                    self.hooks.append(sub.register_forward_pre_hook(
                        self._pre_hook(network, f"{name}.{sub_name}" if sub_name else name)))

    def _pre_hook(self, network: nn.Module, where: str) -> Callable:
        def hook(module: nn.Module, args: Any) -> None:
            if not torch.is_grad_enabled() or self.active.get(id(network), 0):
                return
            if any(p.requires_grad for p in module.parameters(recurse=False)):
                self.bypasses.add(where)
        return hook

    def remove_hooks(self) -> None:
        for hook in self.hooks:
            hook.remove()
        self.hooks.clear()


class _RecordingWrapper(nn.Module):
    def __init__(self, module: nn.Module, recorder: _WrapperRecorder) -> None:
        super().__init__()
        self.module = module
        self._recorder = recorder

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        key = id(self.module)
        self._recorder.active[key] = self._recorder.active.get(key, 0) + 1
        if torch.is_grad_enabled() and key in self._recorder.names:
            self._recorder.called.add(self._recorder.names[key])
        try:
            return self.module(*args, **kwargs)
        finally:
            self._recorder.active[key] -= 1


class _RecordingContext(RunContext):
    """A CPU RunContext whose ``wrap`` gives recording wrappers instead of DDP."""

    def __init__(self, recorder: _WrapperRecorder) -> None:
        super().__init__()
        self._recorder = recorder

    def wrap(self, module: nn.Module) -> nn.Module:
        return _RecordingWrapper(module, self._recorder)


CHECKS = ("configs", "train_step", "backends", "resume", "translate", "state_dict",
          "ddp_wrappers")


def check_method(name_or_class: str | type, config: Any = None) -> list[CheckResult]:
    """Run every check of the method contract (see the module docstring) on the method (a
    registered name or a Method subclass) at `config` (None: its "tiny" named configuration, else
    its defaults; or a name, a dict of overrides, a YAML path, a Config instance).

    Returns the results (passed or skipped with the reason); raises MethodCheckError naming the
    method and every failed check. The global random state and default dtype are restored."""
    cls = _method_class(name_or_class)
    label = cls.name or cls.__name__
    try:
        config = _config_under_test(cls, config)
    except Exception as error:  # noqa: BLE001 - reported as the configs check
        raise MethodCheckError(f"check_method({label!r}): the configuration under test does not "
                               f"resolve: {type(error).__name__}: {error}") from error
    checker = _Checker(cls, config)
    results = []
    with _preserved_random_state(), default_dtype(torch.get_default_dtype()):
        for name in CHECKS:
            try:
                detail = getattr(checker, f"check_{name}")()
                results.append(CheckResult(name, "passed", detail))
            except CheckSkipped as skipped:
                results.append(CheckResult(name, "skipped", str(skipped)))
            except Exception as error:  # noqa: BLE001 - every failure is collected
                message = str(error) if isinstance(error, AssertionError) else (
                    f"{type(error).__name__}: {error}\n"
                    + "".join(traceback.format_exception(error)[-3:]).rstrip())
                results.append(CheckResult(name, "failed", message))
    failed = [r for r in results if r.status == "failed"]
    if failed:
        lines = "\n".join(f"- {r.name}: {r.detail}" for r in failed)
        raise MethodCheckError(f"check_method({label!r}): {len(failed)} of {len(CHECKS)} checks "
                               f"failed:\n{lines}")
    return results


__all__ = ["CHECKS", "CheckResult", "MethodCheckError", "check_method"]
