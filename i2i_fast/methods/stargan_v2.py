"""StarGAN v2: Diverse Image Synthesis for Multiple Domains (Choi, Uh, Yoo, Ha, CVPR 2020), as the
official implementation (clovaai/stargan-v2: core/model.py, core/solver.py, main.py) defines it.

Networks (children named as in the official Solver, so state-dict keys are the official ones):

- ``generator`` G(x, s): 3x3 conv to dim_in; encoder PreActResBlocks with IN (affine) that halve
  the resolution, then 2 at the bottleneck; decoder AdaIN ResBlocks (``(1 + gamma)`` modulation from
  a Linear of s per AdaIN layer) mirroring them (nearest upsampling); to_rgb = IN (affine) →
  LeakyReLU → 1x1 conv to 3, no tanh. With w_hpf = 0 each decoder block adds its shortcut and
  divides by √2; with w_hpf > 0 it returns its residual alone, the encoder has one more block, and
  high-pass filtered encoder features, masked, are added to the decoder's at 32², 64², 128²
  (mask_a at the smallest, mask_b at the others).
- ``mapping_network`` F(z, y): 4 × [Linear 512, ReLU] shared, per domain 3 × [Linear 512, ReLU] +
  Linear → style_dim; the head of domain y.
- ``style_encoder`` E(x, y): 3x3 conv; PreActResBlocks without norm halving to 4x4; LeakyReLU;
  4x4 conv; LeakyReLU; per-domain Linear → style_dim; the head of domain y.
- ``discriminator`` D(x): E's trunk, then a 1x1 conv to one logit per domain: (N, K). The head of
  domain y is taken by ``gan_loss(..., domain=y)``.
- ``generator_ema``, ``mapping_network_ema``, ``style_encoder_ema``: moving averages
  (beta 0.999) of G, F, E, updated after every iteration; ``translate`` and ``sample_visuals`` use
  them by default. As in the official code they are copied from the networks *before* the He
  initialisation, so they start from PyTorch's default initialisation (``ema_init``
  "pytorch_default"; "copy" starts them equal to the initialised networks).

One iteration (solver.py ``train``), with z_trg, z_trg2 ~ N(0, I) drawn first (global RNG) and
(x_ref, x_ref2, y_trg) the reference pair of the batch:

1. D, latent-guided: BCE(D(x_real)[y_org], 1) + lambda_reg · R1 + BCE(D(G(x_real, F(z_trg,
   y_trg)))[y_trg], 0); R1 = 0.5 · mean_n Σ (∂ Σ_n D(x_real)[y_org] / ∂x_real)², the gradient
   taken with create_graph=True; the fake under no_grad. Adam step of D.
2. D, reference-guided: the same with s_trg = E(x_ref, y_trg).
3. G, latent-guided: adv BCE(D(x_fake)[y_trg], 1) + lambda_sty · |E(x_fake, y_trg) − s_trg|
   − lambda_ds · |x_fake − G(x_real, F(z_trg2, y_trg)).detach()| + lambda_cyc · |G(x_fake,
   E(x_real, y_org)) − x_real|; Adam steps of G, F and E.
4. G, reference-guided: the same with s_trg = E(x_ref, y_trg), s_trg2 = E(x_ref2, y_trg);
   Adam step of G only.
5. EMA of G, F, E: ema = lerp(param, ema, 0.999).

lambda_ds decays linearly: lambda_ds(step) = initial · max(0, 1 − step / ds_iter), a pure function
of the step (the official loop subtracts initial / ds_iter after each iteration and restarts from
the initial value on resume; here a resumed run continues the schedule). Adam: lr 1e-4 for G, E
and D, f_lr 1e-6 for F, betas (0, 0.99), weight decay 1e-4. He init (kaiming_normal_, fan_in,
relu gain) of every conv and linear weight, biases 0.

Exact equivalences used for speed (the gradients of the updated networks are the official ones):
the D inside the generator steps and the E of the reference-guided generator step run with their
parameters frozen (the official code computes their parameter gradients and discards them);
E(x_ref), E(x_ref2) and E(x_real) of the reference-guided step and the detached x_fake2 run under
no_grad (nothing updated depends on their gradients).

High-pass masks (w_hpf > 0, the CelebA-HQ configuration): the official code computes them with a
face-landmark network (FAN, "wing.ckpt") whose weights cannot be fetched here. Masks come from
(first that applies): a callable ``masks(x) -> (mask_a, mask_b)`` (``config.hpf_masks`` =
"package.module:function", or ``method.mask_fn = callable``), called on x_real and, for the cycle
term, on x_fake, as the official code calls FAN; else the batch's "hpf_mask_a"/"hpf_mask_b"
(precomputed masks carried by the items of a user's dataset, e.g. read from mask files next to
the images; the bundled folder datasets do not read such files), used for x_real and, lacking a
network to recompute them, for x_fake too. Masks are (N, 1, h, w) in [0, 1], resized bilinearly to each skip. Without
masks a run with w_hpf > 0 stops with an error saying how to provide them.

R1 and torch.compile: double backward does not run through torch.compile'd graphs. After
``compile_networks()``, G, F and E are compiled in place and D has a compiled twin (the same
parameters) that computes every D output except the one on real images in the discriminator
steps: that one, whose input gradient R1 differentiates again, runs D eagerly.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .. import ops
from ..config import code_reference
from ..losses import l1
from ..nn import init_weights
from ..nn.generators import Masks, PreActStyleGenerator, check_masks
from ..nn.multi_domain import (
    MappingNetwork,
    MultiHeadDiscriminator,
    MultiHeadStyleEncoder,
    select_domain,
)
from ..optim import MovingAverage, linear_decay
from .base import Method, MethodConfig, RunContext
from .config_checks import FieldChecks
from .roles import NetworkRoles
from . import sizes
from .errors import MethodUsageError

MaskFn = Callable[[torch.Tensor], Masks]
EMA_INITS = ("pytorch_default", "copy")


@dataclasses.dataclass
class StarGANv2Config(MethodConfig):
    """Defaults = main.py of the official implementation (its defaults are the CelebA-HQ setup)."""

    # networks
    image_size: int = 256
    num_domains: int = 2
    latent_dim: int = 16
    hidden_dim: int = 512  # width of the mapping network (the official code hard-codes 512)
    style_dim: int = 64
    dim_in: int | None = None  # width of the first conv; None: 2**14 // image_size (official)
    max_conv_dim: int = 512
    w_hpf: float = 1.0  # weight of the high-pass skips; 0 turns them off (AFHQ)
    hpf_resolutions: tuple[int, ...] = (32, 64, 128)  # where the skips are added (mask_a at min)
    # "package.module:function" giving masks(x) -> (mask_a, mask_b); a code reference: never
    # read from a file or a checkpoint (i2i_fast.config)
    hpf_masks: str = code_reference("")
    domain_names: tuple[str, ...] = ()  # names accepted as a target_domain (e.g. "cat")
    # loss weights
    lambda_reg: float = 1.0  # R1
    lambda_cyc: float = 1.0
    lambda_sty: float = 1.0
    lambda_ds: float = 1.0  # initial weight of the diversity-sensitive loss
    ds_iter: int = 100_000  # iterations over which lambda_ds decays linearly to 0
    # optimisation
    max_iter: int = 100_000  # total_iters
    batch_size: int = 8
    lr: float = 1e-4  # G, E, D
    f_lr: float = 1e-6  # mapping network
    beta1: float = 0.0
    beta2: float = 0.99
    weight_decay: float = 1e-4
    ema_beta: float = 0.999
    ema_init: str = "pytorch_default"  # "pytorch_default" (official) | "copy"
    # data: random resized crop (p 0.5, scale 0.8-1, ratio 0.9-1.1), resize, flip, [-1, 1]
    # (the "stargan_v2" transform of i2i_fast.data)
    n_sample_domains: int = 5  # latent-guided columns of sample grids (official: min(K, 5))


_SMALLEST_SIZES: dict[tuple, int] = {}


def smallest_image_size(cfg: StarGANv2Config) -> int:
    """The smallest power of two at which G, E and D built for that size run (G giving back its
    input's size): tried with one channel per layer (widths do not change which sizes get through
    the architecture), on the CPU; kept per architecture."""
    key = (cfg.w_hpf > 0, tuple(cfg.hpf_resolutions))

    def run_at(side: int) -> None:
        x = torch.zeros(1, 3, side, side)
        y = torch.zeros(1, dtype=torch.int64)
        masks = (torch.ones(1, 1, side, side),) * 2 if cfg.w_hpf > 0 else None
        generator = PreActStyleGenerator(side, 1, 1, cfg.w_hpf, 1, cfg.hpf_resolutions)
        with torch.no_grad():
            if generator(x, torch.zeros(1, 1), masks).shape != x.shape:
                raise ValueError("the output's size differs from the input's")
            MultiHeadStyleEncoder(side, 1, 1, 1, 1)(x, y)
            MultiHeadDiscriminator(side, 1, 1, 1)(x)

    if key not in _SMALLEST_SIZES:
        _SMALLEST_SIZES[key] = sizes.smallest_power_of_two_run("stargan_v2", run_at)
    return _SMALLEST_SIZES[key]


def import_mask_fn(path: str) -> MaskFn:
    """The callable named by "package.module:function" (config.hpf_masks)."""
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"stargan_v2: hpf_masks: expected 'package.module:function', got "
                         f"{path!r}")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"stargan_v2: hpf_masks: cannot import {path!r}: "
                         f"{type(error).__name__}: {error}") from error
    if not callable(obj):
        raise ValueError(f"stargan_v2: hpf_masks: {path!r} is {type(obj).__name__}, expected "
                         f"a callable masks(x) -> (mask_a, mask_b)")
    return obj


class StarGANv2(Method):
    name = "stargan_v2"
    Config = StarGANv2Config
    data_kind = "multi_domain_reference"
    loss_names = ("d_latent_real", "d_latent_fake", "d_latent_reg", "d_ref_real", "d_ref_fake",
                  "d_ref_reg", "g_latent_adv", "g_latent_sty", "g_latent_ds", "g_latent_cyc",
                  "g_ref_adv", "g_ref_sty", "g_ref_ds", "g_ref_cyc", "lambda_ds")
    configs = {
        # main.py's defaults with the README's CelebA-HQ command (w_hpf 1, 2 domains, lambda_ds 1)
        "celeba_hq": {"domain_names": ["female", "male"]},
        # the README's AFHQ command
        "afhq": {"num_domains": 3, "w_hpf": 0.0, "lambda_ds": 2.0,
                 "domain_names": ["cat", "dog", "wild"]},
        # The CPU config for the bundled 3-domain synthetic set (synthetic:shapes-k3): the
        # official architecture, losses and optimiser at 64x64 with narrower networks (first
        # width 32, at most 128; style 16, latent 8, mapping width 128), batch 8, a 4000-step
        # run over which lambda_ds decays; the EMA starts equal to the initialised networks
        # (the official default-init start would still weigh 0.999^4000 = 2% at the end).
        "small": {"image_size": 64, "num_domains": 3, "w_hpf": 0.0, "dim_in": 32,
                  "max_conv_dim": 128, "style_dim": 16, "latent_dim": 8, "hidden_dim": 128,
                  "lambda_ds": 1.0, "ds_iter": 4000, "max_iter": 4000, "batch_size": 8,
                  "ema_init": "copy", "domain_names": ["day", "night", "sunset"]},
        # The smallest networks of the official structure (32x32, widths 8 to 16), for tests
        # and check_method.
        "tiny": {"image_size": 32, "num_domains": 3, "w_hpf": 0.0, "dim_in": 8,
                 "max_conv_dim": 16, "style_dim": 8, "latent_dim": 4, "hidden_dim": 16,
                 "batch_size": 2, "ds_iter": 10, "max_iter": 10},
    }

    reference_guided = True
    demo_config = "small"
    demo_data = "synthetic:shapes-k3"

    def __init__(self, config: StarGANv2Config, context: RunContext | None = None):
        super().__init__(config, context)
        cfg = config
        self.check_config(cfg)
        self.generator = PreActStyleGenerator(cfg.image_size, cfg.style_dim, cfg.max_conv_dim,
                                              cfg.w_hpf, cfg.dim_in, cfg.hpf_resolutions)
        self.mapping_network = MappingNetwork(cfg.latent_dim, cfg.style_dim, cfg.num_domains,
                                              cfg.hidden_dim)
        self.style_encoder = MultiHeadStyleEncoder(cfg.image_size, cfg.style_dim,
                                                   cfg.num_domains, cfg.max_conv_dim, cfg.dim_in)
        self.discriminator = MultiHeadDiscriminator(cfg.image_size, cfg.num_domains,
                                                    cfg.max_conv_dim, cfg.dim_in)
        official_ema = cfg.ema_init == "pytorch_default"
        if official_ema:  # build_model copies the networks before the Solver initialises them
            emas = self._ema_copies()
        for net in (self.generator, self.mapping_network, self.style_encoder, self.discriminator):
            init_weights(net, "kaiming")
        if not official_ema:
            emas = self._ema_copies()
        self.generator_ema, self.mapping_network_ema, self.style_encoder_ema = emas
        for ema in emas:
            ema.requires_grad_(False)
        self.context.prepare(self)

        ctx, betas = self.context, (cfg.beta1, cfg.beta2)
        for name in ("generator", "mapping_network", "style_encoder", "discriminator"):
            lr = cfg.f_lr if name == "mapping_network" else cfg.lr
            self.add_optimizer(name, ctx.adam(getattr(self, name).parameters(), lr, betas,
                                              cfg.weight_decay))
        # D and E also run frozen in the generator steps; R1 differentiates D's input gradient.
        self.declare_networks(
            NetworkRoles(trained=("generator", "mapping_network", "style_encoder",
                                  "discriminator"),
                         critics=("discriminator", "style_encoder"),
                         differentiated_twice=("discriminator",),
                         averages={"generator_ema": "generator",
                                   "mapping_network_ema": "mapping_network",
                                   "style_encoder_ema": "style_encoder"}),
            MovingAverage(cfg.ema_beta))
        self._mask_fn: MaskFn | None = import_mask_fn(cfg.hpf_masks) if cfg.hpf_masks else None

    def _ema_copies(self) -> tuple[nn.Module, nn.Module, nn.Module]:
        return (copy.deepcopy(self.generator), copy.deepcopy(self.mapping_network),
                copy.deepcopy(self.style_encoder))

    @classmethod
    def check_config(cls, cfg: StarGANv2Config) -> None:
        check = FieldChecks("stargan_v2", cfg)
        fail = check.fail

        for key in ("num_domains", "latent_dim", "hidden_dim", "style_dim", "max_conv_dim",
                    "ds_iter", "batch_size", "n_sample_domains"):
            if getattr(cfg, key) < 1:
                fail(key, "an int >= 1", getattr(cfg, key))
        if cfg.dim_in is not None and cfg.dim_in < 1:
            fail("dim_in", "None (2**14 // image_size) or an int >= 1", cfg.dim_in)
        if not cfg.w_hpf >= 0:
            fail("w_hpf", "a weight >= 0 (0: no high-pass skips)", cfg.w_hpf)
        if cfg.w_hpf > 0 and (not cfg.hpf_resolutions or min(cfg.hpf_resolutions) < 1):
            fail("hpf_resolutions", "sizes >= 1 (where the high-pass skips go)",
                 cfg.hpf_resolutions)
        if cfg.hpf_masks and cfg.w_hpf == 0:
            fail("hpf_masks", "'' with w_hpf = 0 (masks are only used by the high-pass skips)",
                 cfg.hpf_masks)
        check.within("ema_beta", low=0.0, high=1.0)
        if cfg.ema_init not in EMA_INITS:
            fail("ema_init", f"one of {EMA_INITS}", cfg.ema_init)
        names = list(cfg.domain_names)
        if names and (len(names) != cfg.num_domains or len(set(names)) != len(names)):
            fail("domain_names", f"() or {cfg.num_domains} distinct names (num_domains)", names)
        check.at_least("lambda_reg", "lambda_cyc", "lambda_sty", "lambda_ds", "lr", "f_lr",
                       "weight_decay")
        smallest = smallest_image_size(cfg)  # from the networks, after the checks they rely on
        if not sizes.is_power_of_two(cfg.image_size) or cfg.image_size < smallest:
            fail("image_size", f"a power of two >= {smallest} (the sides these networks are built "
                 f"for, found by trying them)", cfg.image_size)

    # ----- masks -----

    @property
    def mask_fn(self) -> MaskFn | None:
        """The callable giving the high-pass masks of a batch of images (None: none set)."""
        return self._mask_fn

    @mask_fn.setter
    def mask_fn(self, fn: MaskFn | None) -> None:
        if fn is not None and not callable(fn):
            raise TypeError(f"stargan_v2: mask_fn: expected a callable masks(x) -> (mask_a, "
                            f"mask_b) or None, got {type(fn).__name__}")
        if fn is not None and self.config.w_hpf == 0:
            raise ValueError("stargan_v2: mask_fn: masks are only used with w_hpf > 0, this "
                             "method has w_hpf = 0")
        self._mask_fn = fn

    def _no_masks_error(self, where: str) -> ValueError:
        return MethodUsageError(
            f"stargan_v2: {where}: w_hpf = {self.config.w_hpf} needs the masks of the high-pass "
            f"skips (the official code computes them with a face-landmark network whose weights "
            f"are not bundled). Provide them by setting config hpf_masks='package.module:"
            f"function' (masks(x) -> (mask_a, mask_b), each (N, 1, h, w) in [0, 1]) or "
            f"method.mask_fn, or precomputed masks in the batch (a dataset whose items carry "
            f"'hpf_mask_a' and 'hpf_mask_b'), or pass masks= to translate; or train "
            f"without the skips (w_hpf=0)")

    def _masks_of(self, x: torch.Tensor) -> Masks:
        masks = self._mask_fn(x)
        check_masks("stargan_v2: mask_fn(x)", masks, x)
        return tuple(self.context.to_device(m.detach()) for m in masks)

    def _batch_masks(self, batch: dict[str, torch.Tensor], x_real: torch.Tensor
                     ) -> tuple[Masks | None, bool]:
        """(masks of x_real, whether x_fake's are computed by mask_fn) for a training batch."""
        if self.config.w_hpf == 0:
            return None, False
        if self._mask_fn is not None:
            with torch.no_grad():
                return self._masks_of(x_real), True
        if "hpf_mask_a" in batch and "hpf_mask_b" in batch:
            masks = (self.context.to_device(batch["hpf_mask_a"]),
                     self.context.to_device(batch["hpf_mask_b"]))
            check_masks("stargan_v2: batch['hpf_mask_a'/'hpf_mask_b']", masks, x_real)
            return masks, False
        raise self._no_masks_error("train_step")

    def _fake_masks(self, x_fake: torch.Tensor, masks: Masks | None, recompute: bool
                    ) -> Masks | None:
        """The masks of the cycle term's G(x_fake, ·): mask_fn(x_fake) (the official code runs
        FAN on x_fake), else those of x_real."""
        if masks is None or not recompute:
            return masks
        with torch.no_grad():
            return self._masks_of(x_fake.detach())

    # ----- training -----

    def lambda_ds(self, step: int) -> float:
        """The diversity-sensitive weight of iteration `step` (0-based)."""
        return self.config.lambda_ds * linear_decay(step, 0, self.config.ds_iter)

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, Any]:
        """One official iteration: 2 D steps, 2 G steps, EMA. batch: the multi_domain_reference
        items {"image", "domain", "ref", "ref2", "ref_domain"} (+ "hpf_mask_a", "hpf_mask_b")."""
        cfg, ctx = self.config, self.context
        x_real = ctx.to_device(batch["image"])
        y_org = batch["domain"].to(ctx.device)
        x_ref, x_ref2 = ctx.to_device(batch["ref"]), ctx.to_device(batch["ref2"])
        y_trg = batch["ref_domain"].to(ctx.device)
        n = x_real.shape[0]
        z_trg = torch.randn(n, cfg.latent_dim, device=ctx.device)
        z_trg2 = torch.randn(n, cfg.latent_dim, device=ctx.device)
        masks, recompute = self._batch_masks(batch, x_real)
        lambda_ds = self.lambda_ds(step)

        losses = {}
        losses.update(self._discriminator_step("d_latent", x_real, y_org, y_trg, masks,
                                               z_trg=z_trg))
        losses.update(self._discriminator_step("d_ref", x_real, y_org, y_trg, masks,
                                               x_ref=x_ref))
        losses.update(self._generator_step("g_latent", x_real, y_org, y_trg, masks, recompute,
                                           lambda_ds, z_trgs=(z_trg, z_trg2)))
        losses.update(self._generator_step("g_ref", x_real, y_org, y_trg, masks, recompute,
                                           lambda_ds, x_refs=(x_ref, x_ref2)))
        self.update_averages(step)
        losses["lambda_ds"] = lambda_ds
        return losses

    def _zero_grad(self) -> None:
        """The official _reset_grad: every optimizer's gradients, before every backward."""
        for optimizer in self._optimizers.values():
            optimizer.zero_grad(set_to_none=True)

    def _discriminator_step(self, prefix: str, x_real: torch.Tensor, y_org: torch.Tensor,
                            y_trg: torch.Tensor, masks: Masks | None,
                            z_trg: torch.Tensor | None = None,
                            x_ref: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        cfg, ctx, nets = self.config, self.context, self.nets
        self._zero_grad()
        x_in = x_real.detach().requires_grad_(True)
        with ctx.autocast():
            out = self.nets_twice.discriminator(x_in)  # R1 differentiates its input gradient
            loss_real = ops.gan_loss(out, "real", "nsgan", domain=y_org)
        # R1 on the logits of the true domains: 0.5 · mean_n Σ (∂ Σ_n D(x)[y_org] / ∂x)²
        (grad,) = torch.autograd.grad(select_domain(out, y_org).sum(), x_in, create_graph=True)
        loss_reg = ops.r1_penalty(grad, weight=0.5)
        with torch.no_grad(), ctx.autocast():
            if z_trg is not None:
                s_trg = nets.mapping_network(z_trg, y_trg)
            else:
                s_trg = nets.style_encoder(x_ref, y_trg)
            x_fake = nets.generator(x_real, s_trg, masks)
        with ctx.autocast():
            loss_fake = ops.gan_loss(nets.discriminator(x_fake), "fake", "nsgan",
                                     domain=y_trg)
        loss = loss_real + loss_fake + cfg.lambda_reg * loss_reg
        ctx.optimizer_step(loss, self._optimizers["discriminator"])
        return {f"{prefix}_real": loss_real.detach(), f"{prefix}_fake": loss_fake.detach(),
                f"{prefix}_reg": loss_reg.detach()}

    def _generator_step(self, prefix: str, x_real: torch.Tensor, y_org: torch.Tensor,
                        y_trg: torch.Tensor, masks: Masks | None, recompute_masks: bool,
                        lambda_ds: float,
                        z_trgs: tuple[torch.Tensor, torch.Tensor] | None = None,
                        x_refs: tuple[torch.Tensor, torch.Tensor] | None = None
                        ) -> dict[str, torch.Tensor]:
        cfg, ctx, nets, critics = self.config, self.context, self.nets, self.critics
        latent = z_trgs is not None
        self._zero_grad()
        # The reference-guided step updates G alone: E runs frozen (through E(x_fake)) or
        # without gradients at all; D always runs frozen here.
        frozen_critics = ("discriminator",) if latent else ("discriminator", "style_encoder")
        style_encoder = nets.style_encoder if latent else critics.style_encoder
        with self.frozen_critics(*frozen_critics), ctx.autocast():
            if latent:
                s_trg = nets.mapping_network(z_trgs[0], y_trg)
            else:
                with torch.no_grad():
                    s_trg = nets.style_encoder(x_refs[0], y_trg)
            x_fake = nets.generator(x_real, s_trg, masks)
            loss_adv = ops.gan_loss(critics.discriminator(x_fake), "generator", "nsgan",
                                    domain=y_trg)
            loss_sty = l1(style_encoder(x_fake, y_trg), s_trg)
            with torch.no_grad():  # x_fake2 is detached in the official loss
                if latent:
                    s_trg2 = nets.mapping_network(z_trgs[1], y_trg)
                else:
                    s_trg2 = nets.style_encoder(x_refs[1], y_trg)
                x_fake2 = nets.generator(x_real, s_trg2, masks)
            loss_ds = l1(x_fake, x_fake2)
            fake_masks = self._fake_masks(x_fake, masks, recompute_masks)
            if latent:
                s_org = nets.style_encoder(x_real, y_org)
            else:
                with torch.no_grad():
                    s_org = nets.style_encoder(x_real, y_org)
            x_rec = nets.generator(x_fake, s_org, fake_masks)
            loss_cyc = l1(x_rec, x_real)
            loss = (loss_adv + cfg.lambda_sty * loss_sty - lambda_ds * loss_ds
                    + cfg.lambda_cyc * loss_cyc)
        if latent:
            optimizers = [self._optimizers[k] for k in ("generator", "mapping_network",
                                                        "style_encoder")]
        else:
            optimizers = [self._optimizers["generator"]]
        ctx.optimizer_step(loss, optimizers)
        return {f"{prefix}_adv": loss_adv.detach(), f"{prefix}_sty": loss_sty.detach(),
                f"{prefix}_ds": loss_ds.detach(), f"{prefix}_cyc": loss_cyc.detach()}

    # ----- inference -----

    def _inference_nets(self, ema: bool) -> tuple[nn.Module, nn.Module, nn.Module]:
        if ema:
            return self.generator_ema, self.mapping_network_ema, self.style_encoder_ema
        return self.generator, self.mapping_network, self.style_encoder

    def _inference_masks(self, x: torch.Tensor, masks: Masks | None) -> Masks | None:
        if self.config.w_hpf == 0:
            if masks is not None:
                raise ValueError("stargan_v2: masks: expected None with w_hpf = 0 (no high-pass "
                                 "skips), got masks")
            return None
        if masks is not None:
            masks = tuple(self.context.to_device(m) for m in masks) \
                if isinstance(masks, (tuple, list)) else masks
            check_masks("stargan_v2: translate", masks, x)
            return masks
        if self._mask_fn is not None:
            return self._masks_of(x)
        raise self._no_masks_error("translate")

    def translate(self, x: torch.Tensor, *, n_styles: int = 1,
                  reference: torch.Tensor | None = None, target_domain: Any = None,
                  generator: torch.Generator | None = None, masks: Masks | None = None,
                  ema: bool = True) -> torch.Tensor:
        """x (N, 3, H, W) → (N, K, 3, H, W) in target_domain (an index, a name of
        config.domain_names, or an (N,) integer tensor of per-input domains).

        Latent-guided (no reference): K = n_styles random z ~ N(0, I) (from `generator`) through
        the mapping network. Reference-guided: K = 1, the style the style encoder extracts from
        `reference` (one image for every input, or one per input), read as an image of the target
        domain. ema: use the moving-average networks (the official sampling and evaluation).
        masks: (mask_a, mask_b) of x for w_hpf > 0 (default: mask_fn(x)).
        The generator has no tanh: its images are clamped to [-1, 1] here (the official code
        clamps when it saves them).
        """
        ctx = self.context
        x = ctx.to_device(x)
        n = x.shape[0]
        y = self.domains.per_input(target_domain, n, ctx.device)
        gen, mapping, style_encoder = self._inference_nets(ema)
        with self.evaluating(), ctx.autocast():
            masks = self._inference_masks(x, masks)
            if reference is not None:
                reference = ctx.to_device(reference)
                s = style_encoder(reference.expand(n, -1, -1, -1), y)
                return gen(x, s, masks).float().clamp(-1, 1).unsqueeze(1)
            z = torch.randn(n * n_styles, self.config.latent_dim, device=ctx.device,
                            generator=generator)
            s = mapping(z, y.repeat_interleave(n_styles))
            x_rep = x.repeat_interleave(n_styles, dim=0)
            if masks is not None:
                masks = tuple(m.repeat_interleave(n_styles, dim=0) for m in masks)
            out = gen(x_rep, s, masks).float().clamp(-1, 1)
        return out.reshape(n, n_styles, *out.shape[1:])

    def sample_visuals(self, batch: dict[str, torch.Tensor],
                       generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The official debug images, with the EMA networks: source, reference, the
        reference-guided translation and its reconstruction (cycle), then one latent-guided
        translation per domain (the first n_sample_domains), one z per domain for all rows."""
        cfg, ctx = self.config, self.context
        x = ctx.to_device(batch["image"])
        y_src = batch["domain"].to(ctx.device)
        x_ref = ctx.to_device(batch["ref"])
        y_ref = batch["ref_domain"].to(ctx.device)
        n = x.shape[0]
        gen, mapping, style_encoder = self._inference_nets(True)
        with self.evaluating(), ctx.autocast():
            masks = self._sample_masks(batch, x)
            x_fake = gen(x, style_encoder(x_ref, y_ref), masks)
            fake_masks = self._masks_of(x_fake) if (masks is not None
                                                   and self._mask_fn is not None) else masks
            visuals = {"source": x, "reference": x_ref, "reference_guided": x_fake,
                       "cycle": gen(x_fake, style_encoder(x, y_src), fake_masks)}
            names = list(cfg.domain_names) or [str(d) for d in range(cfg.num_domains)]
            for d in range(min(cfg.num_domains, cfg.n_sample_domains)):
                z = torch.randn(1, cfg.latent_dim, device=ctx.device, generator=generator)
                y = torch.full((n,), d, dtype=torch.int64, device=ctx.device)
                visuals[f"latent_{names[d]}"] = gen(x, mapping(z.expand(n, -1), y), masks)
        return {k: v.float() for k, v in visuals.items()}

    def _sample_masks(self, batch: dict[str, torch.Tensor], x: torch.Tensor) -> Masks | None:
        if self.config.w_hpf == 0:
            return None
        if self._mask_fn is not None:
            return self._masks_of(x)
        if "hpf_mask_a" in batch and "hpf_mask_b" in batch:
            return (self.context.to_device(batch["hpf_mask_a"]),
                    self.context.to_device(batch["hpf_mask_b"]))
        raise self._no_masks_error("sample_visuals")
