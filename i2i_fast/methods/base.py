"""The contract every method implements, built-in or plugin.

A method is a ``torch.nn.Module`` subclass that owns its networks, optimizers, schedulers (and EMA
copies, where it uses them), and knows how to run one training iteration and how to translate:

    class MyMethod(Method):
        name = "my_method"
        Config = MyConfig            # dataclass; defaults = the official configuration
        data_kind = "unpaired"       # one of DATA_KINDS (see i2i_fast.data)
        loss_names = ("d", "g")
        configs = {"small": {"gen": {"dim": 16}}}   # named configurations (overrides)

        def __init__(self, config, context=None): ...           # build nets, optimizers
        def train_step(self, batch, step) -> dict[str, Tensor]: ... # one whole iteration
        def translate(self, x, *, n_styles=1, reference=None, target_domain=None,
                      generator=None) -> Tensor: ...              # (N, K, 3, H, W)
        def sample_visuals(self, batch, generator=None) -> dict[str, Tensor]: ...

Checkpoints use ``training_state()`` / ``load_training_state()`` (networks, EMA, optimizers,
schedulers: everything needed to continue the same run); ``state_dict()`` is the usual
nn.Module state (networks and buffers, what inference needs).

The trainer gives the method a ``RunContext``: where and how to run (device, precision,
channels-last, distributed). Methods use its helpers so every method gets mixed precision, fused
Adam and DDP the same way: ``context.autocast()`` around forward passes,
``context.optimizer_step(loss, optimizer)`` for backward + step, ``context.adam(...)`` to build
optimizers, and ``context.wrap(module)`` for each network whose ``forward`` is called in training
(it becomes a DistributedDataParallel module when training with several processes).
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import functools
import inspect
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar

import torch

from ..optim.ema import MovingAverage
from .roles import NetworkRoles, TrainingViews, Views
from .translation import Domains, check_translate_arguments

PRECISIONS = ("fp32", "bf16", "fp16")
DATA_KINDS = ("unpaired", "multi_domain", "multi_domain_reference", "paired", "unlabelled")


@dataclasses.dataclass
class RunContext:
    """How a method runs. The defaults are what inference and tests need: CPU, float32.

    Several processes (``torchrun``, one process per GPU; ``world_size > 1``): the trainer starts
    the process group before it builds the method, and every process builds the same method from
    the same seed. ``batch_size`` in a method's Config is per process (the global batch is
    ``batch_size * world_size``). Rules for method authors, checked by tests/test_train_ddp.py:

    1. ``wrap`` each network that is trained, once, in ``__init__`` (after ``prepare``), and call
       it in training through the wrapper, i.e. its ``forward`` (``self.gen(x)``). Calling any
       other method of the inner network (``unwrap(self.gen).encode(x)``) bypasses
       DistributedDataParallel: that network's gradients are then not averaged across processes,
       silently, and the replicas drift apart. A network with several entry points (MUNIT's
       encode and decode) routes them through ``forward`` (``forward(x, mode="encode")``) or is
       split into networks wrapped separately.
    2. A wrapped network may be called several times before one backward (MUNIT encodes real and
       translated images in one generator update; a discriminator sees a real and a fake batch):
       autograd sums the contributions of all the calls into each parameter's gradient first,
       and DDP averages that sum once. This holds because ``wrap`` leaves
       ``find_unused_parameters`` off; with it on, several calls before one backward fail
       ("Expected to mark a variable ready only once") whenever the last call does not reach
       every parameter an earlier call reached.
    3. After a call with gradients enabled, the backward that follows must reach every parameter
       of that network; otherwise DDP stops at the network's next call with "Expected to have
       finished reduction in the prior iteration". Calls under ``torch.no_grad()`` do not count
       (fakes for a discriminator update, EMA updates, sampling), and may be made on one process
       only (the trainer samples on rank 0 only, under ``Method.evaluating()``).
    4. A network that is called in an update whose optimizer does not step it (the
       discriminator inside the generator loss) gets its gradients averaged too (wasted work,
       correct result) unless its parameters are set ``requires_grad_(False)`` for that update;
       its gradients must be zeroed before its own update, as without DDP.

    Checkpoints are the same with and without DDP: ``Method.state_dict()`` leaves out the
    ``module.`` level of wrapped networks, and ``load_state_dict`` puts it back.
    """

    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))
    precision: str = "fp32"
    channels_last: bool = False
    fused_optimizers: bool = True
    world_size: int = 1
    rank: int = 0

    def __post_init__(self) -> None:
        self.device = torch.device(self.device)
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision: expected one of {PRECISIONS}, got {self.precision!r}")
        if self.precision == "fp16" and self.device.type != "cuda":
            raise ValueError("precision: fp16 needs a CUDA device (use bf16 on the CPU)")
        self._scaler = (torch.amp.GradScaler("cuda") if self.precision == "fp16" else None)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[self.precision]

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision for forward passes (a no-op in fp32)."""
        dtype = self.autocast_dtype
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        """An input batch tensor on the run's device and memory format."""
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def prepare(self, module: torch.nn.Module) -> torch.nn.Module:
        """A freshly built network on the run's device and memory format."""
        module = module.to(self.device)
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        return module

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """The network for training: DistributedDataParallel when running on several processes."""
        if not self.distributed or not any(p.requires_grad for p in module.parameters()):
            return module
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.device.index] if self.device.type == "cuda" else None
        # Buffers are synchronised once, at construction, and never again in forward (each
        # process keeps its own running statistics). torch >= 2.15 names that
        # forward_sync_buffers=False and deprecates broadcast_buffers=False.
        if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters:
            no_buffer_sync = {"forward_sync_buffers": False}
        else:
            no_buffer_sync = {"broadcast_buffers": False}
        return DistributedDataParallel(module, device_ids=device_ids, **no_buffer_sync)

    def adam(self, params: Iterable[torch.nn.Parameter], lr: float, betas: tuple[float, float],
             weight_decay: float = 0.0) -> torch.optim.Adam:
        """torch.optim.Adam, fused where the device supports it (same update rule)."""
        params = list(params)
        fused = self.fused_optimizers and self.device.type in ("cuda", "cpu")
        if fused:
            try:
                return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay,
                                        fused=True)
            except (RuntimeError, TypeError):
                pass  # older torch without fused Adam for this device: the foreach version
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay)

    def optimizer_step(self, loss: torch.Tensor,
                       optimizer: torch.optim.Optimizer | Sequence[torch.optim.Optimizer]
                       ) -> None:
        """backward, then a step of the optimizer (or of each optimizer of a sequence: one loss
        updating several networks, e.g. StarGAN v2's G, F and E), with loss scaling in fp16.
        Gradients must have been zeroed."""
        optimizers = ([optimizer] if isinstance(optimizer, torch.optim.Optimizer)
                      else list(optimizer))
        if self._scaler is None:
            loss.backward()
            for opt in optimizers:
                opt.step()
        else:
            self._scaler.scale(loss).backward()
            for opt in optimizers:
                self._scaler.step(opt)

    def end_iteration(self) -> None:
        """After a whole train_step: the fp16 loss scale is updated once per iteration, after
        every optimizer step of it (as PyTorch documents for several optimizers). The trainer
        calls this; a method does not."""
        if self._scaler is not None:
            self._scaler.update()

    def scaler_state(self) -> dict | None:
        return self._scaler.state_dict() if self._scaler is not None else None

    def load_scaler_state(self, state: dict | None) -> None:
        if self._scaler is not None and state:
            self._scaler.load_state_dict(state)


@contextlib.contextmanager
def frozen(*modules: torch.nn.Module) -> Iterator[None]:
    """Parameters of `modules` with requires_grad False inside the block (those that were
    trainable are restored after): gradients flow through the modules, not into them."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """The network inside a DistributedDataParallel wrapper (or the module itself)."""
    return getattr(module, "module", module)


def _wrapped_prefixes(method: torch.nn.Module, prefix: str) -> list[str]:
    """State-dict prefixes ("gen.") of the DistributedDataParallel submodules of `method`."""
    from torch.nn.parallel import DistributedDataParallel

    return [f"{prefix}{name}." for name, module in method.named_modules()
            if name and isinstance(module, DistributedDataParallel)]


def _rename_keys(state_dict: dict, rename) -> None:
    """Rename the keys of a state dict and of its ``_metadata`` in place, keeping their order."""
    for mapping in (state_dict, getattr(state_dict, "_metadata", None)):
        if mapping is not None:
            items = [(rename(key), value) for key, value in mapping.items()]
            mapping.clear()
            mapping.update(items)


def _state_dict_without_ddp(method, state_dict, prefix, local_metadata) -> None:
    """state_dict post-hook: "gen.module.conv.weight" -> "gen.conv.weight" for a wrapped gen."""
    for wrapped in _wrapped_prefixes(method, prefix):
        inner = wrapped + "module."

        def rename(key: str) -> str:
            if key.startswith(inner):
                return wrapped + key[len(inner):]
            return wrapped[:-1] if key == inner[:-1] else key

        _rename_keys(state_dict, rename)


def _load_state_dict_into_ddp(method, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
    """load_state_dict pre-hook: the inverse of _state_dict_without_ddp (keys that already carry
    "module." are left as they are)."""
    for wrapped in _wrapped_prefixes(method, prefix):
        inner = wrapped + "module."

        def rename(key: str) -> str:
            if key.startswith(wrapped) and not key.startswith(inner):
                return inner + key[len(wrapped):]
            return inner[:-1] if key == wrapped[:-1] else key

        _rename_keys(state_dict, rename)


@dataclasses.dataclass
class MethodConfig:
    """What the trainer reads from every method's Config; a method's Config subclasses it and
    sets the official values (a Config that does not subclass it still works if it has these
    three fields)."""

    batch_size: int = 1  # items per process and iteration
    image_size: int = 256  # side of the square training images
    max_iter: int = 100_000  # iterations of a run


def _checked_translate(translate: Any) -> Any:
    """A subclass's translate, with its arguments checked first (translation.py)."""

    @functools.wraps(translate)
    def checked(self, x, *args, n_styles=1, reference=None, target_domain=None, **kwargs):
        if args:
            raise TypeError(f"{self.name}: translate: takes x and keyword arguments only, got "
                            f"{len(args)} more positional argument(s)")
        check_translate_arguments(self, x, n_styles, reference, target_domain)
        return translate(self, x, n_styles=n_styles, reference=reference,
                         target_domain=target_domain, **kwargs)

    checked.__i2i_fast_checked__ = True
    return checked


class Method(torch.nn.Module, metaclass=abc.ABCMeta):
    """Base class of all methods (see the module docstring for the contract)."""

    name: ClassVar[str] = ""
    Config: ClassVar[type] = type(None)
    data_kind: ClassVar[str] = "unpaired"
    loss_names: ClassVar[tuple[str, ...]] = ()
    configs: ClassVar[dict[str, dict]] = {}
    # Optional declarations read by i2i_fast.testing.check_method and ``i2i-fast compare``:
    # whether translate takes a reference image's style; the named configuration that trains on
    # the CPU in minutes and the bundled synthetic set it trains on.
    reference_guided: ClassVar[bool] = False
    demo_config: ClassVar[str | None] = None
    demo_data: ClassVar[str | None] = None
    # The transform the trainer applies to folder data (a preset name of i2i_fast.data.transforms
    # or an ImageTransform; None: the data kind's default); a property where the config decides.
    data_transform: ClassVar[Any] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        translate = cls.__dict__.get("translate")
        if translate is not None and not getattr(translate, "__i2i_fast_checked__", False) \
                and not getattr(translate, "__isabstractmethod__", False):
            cls.translate = _checked_translate(translate)

    def __init__(self, config: Any, context: RunContext | None = None) -> None:
        super().__init__()
        if not isinstance(config, self.Config):
            raise TypeError(f"{self.name}: config: expected {self.Config.__name__}, "
                            f"got {type(config).__name__}")
        self.config = config
        self.context = context or RunContext()
        self._optimizers: dict[str, torch.optim.Optimizer] = {}
        self._schedulers: dict[str, Any] = {}
        self._views: TrainingViews | None = None
        self._moving_average: MovingAverage | dict[str, MovingAverage] | None = None
        # The same state dict with and without DistributedDataParallel (see RunContext).
        self.register_state_dict_post_hook(_state_dict_without_ddp)
        self.register_load_state_dict_pre_hook(_load_state_dict_into_ddp)

    @classmethod
    def check_config(cls, config: Any) -> None:
        """Raise ValueError naming the first field of `config` this method cannot take (what was
        expected and what came). Called by the method's __init__ and, for every named
        configuration, by check_method; the default accepts everything."""

    # ----- what subclasses register -----

    def add_optimizer(self, name: str, optimizer: torch.optim.Optimizer,
                      scheduler: Any | None = None) -> None:
        """Register an optimizer (and its LR scheduler) so checkpoints hold their state."""
        self._optimizers[name] = optimizer
        if scheduler is not None:
            self._schedulers[name] = scheduler

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return dict(self._optimizers)

    @property
    def schedulers(self) -> dict[str, Any]:
        return dict(self._schedulers)

    def declare_networks(self, roles: NetworkRoles,
                         moving_average: MovingAverage | dict[str, MovingAverage] | None = None
                         ) -> None:
        """Declare the roles of the method's networks (i2i_fast.methods.roles), once, in __init__
        after ``context.prepare``: builds the training views ``nets``, ``critics`` and
        ``nets_twice`` (DDP wrappers through ``context.wrap``), and with `moving_average` the
        update of the ``roles.averages`` copies (``update_averages``): one rule for all of them,
        or {average name: rule} when they differ (TUNIT: C_EMA from the start, G_EMA later)."""
        if self._views is not None:
            raise RuntimeError(f"{self.name}: declare_networks: the roles are already declared")
        roles.check(self)
        if roles.averages and moving_average is None:
            raise ValueError(f"{self.name}: declare_networks: moving_average: expected the "
                             f"update rule of the averages {sorted(roles.averages)}, got None")
        if isinstance(moving_average, dict) and set(moving_average) != set(roles.averages):
            raise ValueError(f"{self.name}: declare_networks: moving_average: expected one rule "
                             f"per average {sorted(roles.averages)}, got {sorted(moving_average)}")
        self._views = TrainingViews(self, roles, self.context)
        self._moving_average = moving_average

    @property
    def roles(self) -> NetworkRoles | None:
        """The declared network roles, or None for a method that declares none."""
        return self._views.roles if self._views is not None else None

    def _declared_views(self) -> TrainingViews:
        if self._views is None:
            raise RuntimeError(f"{self.name}: no network roles declared (declare_networks)")
        return self._views

    @property
    def nets(self) -> Views:
        """The trained networks as training calls them (DDP wrappers; compiled after
        compile_networks)."""
        return self._declared_views().nets

    @property
    def critics(self) -> Views:
        """The critics, unwrapped, for calls inside another network's update (frozen)."""
        return self._declared_views().critics

    @property
    def nets_twice(self) -> Views:
        """The networks differentiated twice, eager, for the calls whose input gradient is
        differentiated again (R1)."""
        return self._declared_views().nets_twice

    def frozen_critics(self, *names: str) -> contextlib.AbstractContextManager:
        """The critics named (default: every critic) frozen inside the block."""
        views = self._declared_views()
        if not names:
            return frozen(*views.critic_modules)
        unknown = [n for n in names if n not in views.roles.critics]
        if unknown:
            raise ValueError(f"{self.name}: frozen_critics: {unknown} are not critics "
                             f"{views.roles.critics}")
        return frozen(*(getattr(self, n) for n in names))

    def update_averages(self, step: int) -> None:
        """After iteration `step`: the moving averages of the roles (their update rule)."""
        views = self._declared_views()
        if isinstance(self._moving_average, dict):
            for average, network in views.roles.averages.items():
                self._moving_average[average].update(
                    [(getattr(self, network), getattr(self, average))], step)
        elif self._moving_average is not None:
            self._moving_average.update(views.average_pairs, step)

    # ----- domains -----

    @property
    def iterations_per_cycle(self) -> int:
        """Training iterations that make up one period of the method's schedule when its
        iterations differ in kind (DRIT: d_iter − 1 content-discriminator-only iterations and a
        full one); 1 otherwise. Benchmarks time whole cycles."""
        return 1

    @property
    def first_full_iteration(self) -> int:
        """The first iteration (0-based) that does everything the method's training iterations
        do from then on: 0, unless training begins with a phase that trains only some networks
        (TUNIT: the guiding network alone before ``separated``). Benchmarks start there, so that
        they time the iterations that make up most of a run."""
        return 0

    @property
    def domains(self) -> Domains:
        """The domains this method translates between (names, count, default target)."""
        return Domains.of(self)

    # ----- the contract -----

    @abc.abstractmethod
    def train_step(self, batch: dict[str, torch.Tensor], step: int
                   ) -> dict[str, torch.Tensor | float]:
        """One training iteration (all its discriminator and generator updates); the losses,
        as detached 0-d tensors (read by the trainer once per log interval, so no host sync per
        step) or floats."""

    @abc.abstractmethod
    def translate(self, x: torch.Tensor, *, n_styles: int = 1,
                  reference: torch.Tensor | None = None, target_domain: Any = None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
        """Translations of x (N, 3, H, W): (N, K, 3, H, W), K random styles or the reference's.
        Its arguments are checked before it runs (i2i_fast.methods.translation)."""

    @abc.abstractmethod
    def sample_visuals(self, batch: dict[str, torch.Tensor],
                       generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Named image batches (N, 3, H, W) in [-1, 1] for sample grids."""

    def training_networks(self) -> dict[str, torch.nn.Module]:
        """The networks whose forward training calls (unwrapped), by name: the trained networks
        of the declared roles, else every direct child module."""
        if self._views is not None:
            return dict(self._views.networks)
        return dict(self.named_children())

    def dataset_options(self) -> dict[str, Any]:
        """Keyword arguments of ``i2i_fast.data.open_dataset`` this method's training data needs
        beyond its kind and resolution (the trainer and ``bench method`` pass them): the
        ``transform`` of ``data_transform`` when the method names one. An override adds its own
        to ``super().dataset_options()`` (TUNIT's semi-supervised mode asks for labelled images
        with {"labelled_fraction": p_semi})."""
        transform = self.data_transform
        return {} if transform is None else {"transform": transform}

    def compile_networks(self, **options: Any) -> None:
        """torch.compile the training networks in place (nn.Module.compile: names, state_dicts
        and DDP wrappers stay as they are); with declared roles, the networks differentiated
        twice stay eager and get compiled twins for their other calls.

        Static shapes unless ``dynamic`` is given: a network is called at a few fixed batch sizes
        per iteration, each compiled once, and with dynamic shapes inductor (torch 2.14) fails to
        compile the backward of MUNIT's and DRIT's generators ("Cannot convert expression to
        float", at the first recompilation)."""
        options.setdefault("dynamic", False)
        if self._views is not None:
            self._views.compile(**options)
            return
        for module in self.training_networks().values():
            module.compile(**options)

    # ----- full training state -----

    def training_state(self) -> dict:
        return {
            "networks": self.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self._optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self._schedulers.items()},
        }

    def load_training_state(self, state: dict) -> None:
        self.load_state_dict(state["networks"])
        for name, opt_state in state.get("optimizers", {}).items():
            if name not in self._optimizers:
                raise KeyError(f"{self.name}: checkpoint has optimizer {name!r}, the method has "
                               f"{sorted(self._optimizers)}")
            self._optimizers[name].load_state_dict(opt_state)
        for name, sched_state in state.get("schedulers", {}).items():
            self._schedulers[name].load_state_dict(sched_state)

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[None]:
        """eval() mode and no_grad for the block, restoring the previous mode."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self.train(was_training)
