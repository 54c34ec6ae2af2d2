"""MUNIT: Multimodal Unsupervised Image-to-Image Translation (Huang, Liu, Belongie, Kautz,
ECCV 2018), as the official implementation (NVlabs/MUNIT: networks.py, trainer.py, train.py,
configs/edges2shoes_folder.yaml) defines it.

Each domain has an auto-encoder (AdaINGen) splitting an image into a content code (256×64×64 at
256²) and a style code (8-d, prior N(0, I)), and a multi-scale LSGAN discriminator. One iteration
(train.py): the learning rates are set for the iteration, then a discriminator update, then a
generator update:

  D: gan_w · Σ_scales [mean(D_a(x_ba)²) + mean((D_a(x_a) − 1)²)] + the same for b, with
     x_ba = G_a.dec(c_b, s_a), s_a ~ N(0, I) (the generator is not updated here).
  G: gan_w · (adversarial a + b) + recon_x_w · ‖G.dec(G.enc(x)) − x‖₁ (a, b)
     + recon_s_w · ‖style of the translation − the sampled style‖₁
     + recon_c_w · ‖content of the translation − the content‖₁
     + recon_x_cyc_w · ‖x_aba − x_a‖₁ (0 for edges2shoes, 10 for summer2winter).

Optimisers: Adam(lr 1e-4, betas (0.5, 0.999), weight decay 1e-4) for the two generators together
and for the two discriminators together; the learning rate halves every 100k iterations (the
official loop steps the scheduler before each iteration, so iteration i runs at
lr · 0.5^⌊(i + 1) / 100000⌋; here that is a pure function of the step). Init: Kaiming-normal for
the generators, N(0, 0.02) for the discriminators, biases 0; the LayerNorm gammas U(0, 1).

Exact equivalence used for speed: the discriminators run with their parameters frozen inside the
generator update (the official code computes their parameter gradients there and discards them:
dis_update zeroes them before its own backward). The generators' gradients are the official ones.

The perceptual (VGG) loss of the official code is off in every published configuration
(vgg_w = 0) and needs VGG16 weights this package does not load; vgg_w > 0 is refused.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import torch

from ..losses import discriminator_loss, generator_loss, l1
from ..nn import AdaINDecoder, ContentEncoder, MLP, MultiScalePatchDiscriminator, StyleEncoder
from ..nn.entry_points import EntryPoints
from ..nn.init import INITS, init_weights
from ..optim import constant, lr_scheduler, step_decay
from .base import Method, MethodConfig, RunContext
from .roles import NetworkRoles
from . import sizes
from .sizes import SizeRule


@dataclasses.dataclass
class GeneratorConfig:
    dim: int = 64  # width of the first conv
    mlp_dim: int = 256  # width of the style MLP
    style_dim: int = 8  # length of the style code
    activ: str = "relu"
    n_downsample: int = 2  # content encoder downsamplings (= decoder upsamplings)
    n_res: int = 4  # residual blocks in the content encoder and in the decoder
    pad_type: str = "reflect"


@dataclasses.dataclass
class DiscriminatorConfig:
    dim: int = 64
    norm: str = "none"
    activ: str = "lrelu"
    n_layer: int = 4
    gan_type: str = "lsgan"  # lsgan | nsgan
    num_scales: int = 3
    pad_type: str = "reflect"


@dataclasses.dataclass
class MUNITNetworksConfig(MethodConfig):
    """MUNIT's networks and optimisation (configs/edges2shoes_folder.yaml of the official
    implementation): the part a method built on MUNIT's blocks shares (MISO)."""

    gen: GeneratorConfig = dataclasses.field(default_factory=GeneratorConfig)
    dis: DiscriminatorConfig = dataclasses.field(default_factory=DiscriminatorConfig)
    input_dim_a: int = 3
    input_dim_b: int = 3
    # optimisation
    max_iter: int = 1_000_000
    batch_size: int = 1
    lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    weight_decay: float = 1e-4
    init: str = "kaiming"
    lr_policy: str = "step"  # step | constant
    step_size: int = 100_000
    gamma: float = 0.5


def discriminator(in_channels: int, d: DiscriminatorConfig) -> MultiScalePatchDiscriminator:
    """One domain's multi-scale LSGAN discriminator (MUNIT's MsImageDis)."""
    return MultiScalePatchDiscriminator(in_channels, d.dim, d.n_layer, d.num_scales, d.norm,
                                        d.activ, d.pad_type)


def scheduler(optimizer: torch.optim.Optimizer, cfg: MUNITNetworksConfig
              ) -> torch.optim.lr_scheduler.LambdaLR:
    """MUNIT's learning-rate policy: constant, or x gamma every step_size iterations."""
    if cfg.lr_policy == "constant":
        return lr_scheduler(optimizer, constant)
    return lr_scheduler(optimizer, functools.partial(step_decay, step_size=cfg.step_size,
                                                     gamma=cfg.gamma))


@dataclasses.dataclass
class MUNITConfig(MUNITNetworksConfig):
    """Defaults = configs/edges2shoes_folder.yaml of the official implementation."""

    # loss weights
    gan_w: float = 1.0
    recon_x_w: float = 10.0
    recon_s_w: float = 1.0
    recon_c_w: float = 1.0
    recon_x_cyc_w: float = 0.0
    vgg_w: float = 0.0
    # data: resize the shorter side to image_size, random crop image_size (new_size = crop = 256)
    image_size: int = 256
    display_size: int = 16  # fixed styles of the sample grids (both official configs: 16)


class AdaINGen(EntryPoints):
    """One domain's auto-encoder: style encoder, content encoder, AdaIN decoder, style MLP.
    Training calls its entry points through forward (``method.nets.gen_a.encode(x)``)."""

    entry_points = ("encode", "encode_content", "decode")

    def __init__(self, in_channels: int, cfg: GeneratorConfig):
        super().__init__()
        self.enc_style = StyleEncoder(4, in_channels, cfg.dim, cfg.style_dim, norm="none",
                                      activation=cfg.activ, pad_type=cfg.pad_type)
        self.enc_content = ContentEncoder(cfg.n_downsample, cfg.n_res, in_channels, cfg.dim,
                                          norm="in", activation=cfg.activ, pad_type=cfg.pad_type)
        self.dec = AdaINDecoder(cfg.n_downsample, cfg.n_res, self.enc_content.out_channels,
                                in_channels, activation=cfg.activ, pad_type=cfg.pad_type)
        self.mlp = MLP(cfg.style_dim, self.dec.num_adain_params, cfg.mlp_dim, 3, cfg.activ)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.enc_content(x), self.enc_style(x)

    def encode_content(self, x: torch.Tensor) -> torch.Tensor:
        return self.enc_content(x)

    def decode(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.dec(content, self.mlp(style))


_SIZE_RULES: dict[str, SizeRule] = {}


def size_rule(cfg: MUNITConfig) -> SizeRule:
    """The image sides MUNIT's networks take: multiples of 2**n_downsample from the smallest at
    which both auto-encoders give back their input's size and the discriminators run.

    Found by trying the architecture at one channel per layer (widths do not change which sizes
    get through its pads, convolutions and pools), on the CPU; kept per architecture."""
    key = repr((cfg.gen, cfg.dis, cfg.input_dim_a, cfg.input_dim_b))
    if key not in _SIZE_RULES:
        with torch.random.fork_rng(devices=[]):  # building them draws; the caller's seed stays
            _SIZE_RULES[key] = _find_size_rule(cfg)
    return _SIZE_RULES[key]


def _find_size_rule(cfg: MUNITConfig) -> SizeRule:
    narrow = dataclasses.replace(cfg.gen, dim=1, mlp_dim=1, style_dim=1)
    d = cfg.dis
    nets = [(AdaINGen(c, narrow), MultiScalePatchDiscriminator(c, 1, d.n_layer, d.num_scales,
                                                               d.norm, d.activ, d.pad_type), c)
            for c in {cfg.input_dim_a, cfg.input_dim_b}]

    def works(side: int) -> bool:
        def run() -> None:
            with torch.no_grad():
                for gen, dis, channels in nets:
                    x = torch.zeros(1, channels, side, side)
                    if gen.decode(*gen.encode(x)).shape != x.shape:
                        raise ValueError("the output's size differs from the input's")
                    dis(x)

        return sizes.runs(run)

    rule = sizes.probe_multiple(works, 2 ** max(cfg.gen.n_downsample, 0))
    if rule is None:
        raise ValueError(f"munit: these networks run at no image size up to {sizes.LIMIT}")
    return rule


class MUNIT(Method):
    name = "munit"
    Config = MUNITConfig
    data_kind = "unpaired"
    loss_names = ("d_total", "d_a", "d_b", "g_total", "g_adv_a", "g_adv_b", "g_recon_x_a",
                  "g_recon_x_b", "g_recon_s_a", "g_recon_s_b", "g_recon_c_a", "g_recon_c_b",
                  "g_cycrecon_x_a", "g_cycrecon_x_b")
    configs = {
        # configs/edges2shoes_folder.yaml (the defaults)
        "edges2shoes": {},
        # configs/summer2winter_yosemite256_folder.yaml
        "summer2winter": {"recon_x_cyc_w": 10.0},
        # The CPU demo: the official architecture scaled down (widths /4, 2 residual blocks,
        # 2 discriminator scales, 64x64 images, batch 4, 800 iterations at lr 4e-4); same
        # losses, weights and optimiser. At 800 iterations on synthetic:shapes the translations
        # keep the shapes and take the other domain's style (README, "The demo").
        "demo": {"gen": {"dim": 16, "mlp_dim": 64, "n_res": 2},
                 "dis": {"dim": 16, "n_layer": 3, "num_scales": 2},
                 "image_size": 64, "batch_size": 4, "max_iter": 800, "lr": 4e-4},
        # The smallest networks of the official structure, for tests and check_method.
        "tiny": {"gen": {"dim": 8, "mlp_dim": 16, "n_res": 1},
                 "dis": {"dim": 8, "n_layer": 2, "num_scales": 2},
                 "image_size": 32, "batch_size": 2, "max_iter": 10},
    }

    reference_guided = True
    demo_config = "demo"
    demo_data = "synthetic:shapes"

    @classmethod
    def check_config(cls, cfg: MUNITConfig) -> None:
        if cfg.vgg_w != 0:
            raise ValueError(f"munit: vgg_w: expected 0 (the VGG perceptual loss needs VGG16 "
                             f"weights, which this implementation does not load), got {cfg.vgg_w}")
        if cfg.dis.gan_type not in ("lsgan", "nsgan"):
            raise ValueError(f"munit: dis.gan_type: expected 'lsgan' or 'nsgan', got "
                             f"{cfg.dis.gan_type!r}")
        if cfg.lr_policy not in ("step", "constant"):
            raise ValueError(f"munit: lr_policy: expected 'step' or 'constant', got "
                             f"{cfg.lr_policy!r}")
        if cfg.init not in INITS:
            raise ValueError(f"munit: init: expected one of {', '.join(INITS)}, got {cfg.init!r}")
        size_rule(cfg).check("munit", "image_size", cfg.image_size,
                             "the sides these networks take, found by trying them")

    def __init__(self, config: MUNITConfig, context: RunContext | None = None):
        super().__init__(config, context)
        cfg = config
        self.check_config(cfg)
        self.size_rule = size_rule(cfg)  # the image sides these networks take
        self.gen_a = init_weights(AdaINGen(cfg.input_dim_a, cfg.gen), cfg.init)
        self.gen_b = init_weights(AdaINGen(cfg.input_dim_b, cfg.gen), cfg.init)
        self.dis_a = init_weights(discriminator(cfg.input_dim_a, cfg.dis), "gaussian")
        self.dis_b = init_weights(discriminator(cfg.input_dim_b, cfg.dis), "gaussian")
        # Fixed styles of the sample grids (trainer.py's s_a, s_b), kept in checkpoints.
        self.register_buffer("display_style_a", torch.randn(cfg.display_size, cfg.gen.style_dim,
                                                            1, 1))
        self.register_buffer("display_style_b", torch.randn(cfg.display_size, cfg.gen.style_dim,
                                                            1, 1))
        self.context.prepare(self)

        ctx, betas = self.context, (cfg.beta1, cfg.beta2)
        dis_opt = ctx.adam([*self.dis_a.parameters(), *self.dis_b.parameters()], cfg.lr, betas,
                           cfg.weight_decay)
        gen_opt = ctx.adam([*self.gen_a.parameters(), *self.gen_b.parameters()], cfg.lr, betas,
                           cfg.weight_decay)
        self.add_optimizer("dis", dis_opt, scheduler(dis_opt, cfg))
        self.add_optimizer("gen", gen_opt, scheduler(gen_opt, cfg))
        # The discriminators also run frozen in the generator update (critics).
        self.declare_networks(NetworkRoles(trained=("gen_a", "gen_b", "dis_a", "dis_b"),
                                           critics=("dis_a", "dis_b")))

    def _random_style(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.config.gen.style_dim, 1, 1, device=self.context.device,
                           generator=generator)

    # ----- training -----

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        ctx = self.context
        x_a, x_b = ctx.to_device(batch["a"]), ctx.to_device(batch["b"])
        losses = self._dis_update(x_a, x_b)
        losses.update(self._gen_update(x_a, x_b))
        for scheduler in self._schedulers.values():
            scheduler.step()
        return losses

    def _dis_update(self, x_a: torch.Tensor, x_b: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg, ctx, nets = self.config, self.context, self.nets
        optimizer = self._optimizers["dis"]
        optimizer.zero_grad(set_to_none=True)
        s_a = self._random_style(x_a.shape[0])
        s_b = self._random_style(x_b.shape[0])
        with torch.no_grad(), ctx.autocast():  # the translations are constants for D
            x_ba = nets.gen_a.decode(nets.gen_b.encode_content(x_b), s_a)
            x_ab = nets.gen_b.decode(nets.gen_a.encode_content(x_a), s_b)
        with ctx.autocast():
            loss_a = discriminator_loss(nets.dis_a(x_ba), nets.dis_a(x_a), cfg.dis.gan_type)
            loss_b = discriminator_loss(nets.dis_b(x_ab), nets.dis_b(x_b), cfg.dis.gan_type)
            total = cfg.gan_w * loss_a + cfg.gan_w * loss_b
        ctx.optimizer_step(total, optimizer)
        return {"d_total": total.detach(), "d_a": loss_a.detach(), "d_b": loss_b.detach()}

    def _gen_update(self, x_a: torch.Tensor, x_b: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg, ctx, nets, critics = self.config, self.context, self.nets, self.critics
        a, b = nets.gen_a, nets.gen_b
        optimizer = self._optimizers["gen"]
        optimizer.zero_grad(set_to_none=True)
        s_a = self._random_style(x_a.shape[0])
        s_b = self._random_style(x_b.shape[0])
        with self.frozen_critics(), ctx.autocast():
            c_a, s_a_prime = a.encode(x_a)
            c_b, s_b_prime = b.encode(x_b)
            x_a_recon = a.decode(c_a, s_a_prime)  # within domain
            x_b_recon = b.decode(c_b, s_b_prime)
            x_ba = a.decode(c_b, s_a)  # across domains
            x_ab = b.decode(c_a, s_b)
            c_b_recon, s_a_recon = a.encode(x_ba)  # encode the translations again
            c_a_recon, s_b_recon = b.encode(x_ab)
            losses = {
                "g_recon_x_a": l1(x_a_recon, x_a),
                "g_recon_x_b": l1(x_b_recon, x_b),
                "g_recon_s_a": l1(s_a_recon, s_a),
                "g_recon_s_b": l1(s_b_recon, s_b),
                "g_recon_c_a": l1(c_a_recon, c_a),
                "g_recon_c_b": l1(c_b_recon, c_b),
                "g_adv_a": generator_loss(critics.dis_a(x_ba), cfg.dis.gan_type),
                "g_adv_b": generator_loss(critics.dis_b(x_ab), cfg.dis.gan_type),
            }
            total = (cfg.gan_w * (losses["g_adv_a"] + losses["g_adv_b"])
                     + cfg.recon_x_w * (losses["g_recon_x_a"] + losses["g_recon_x_b"])
                     + cfg.recon_s_w * (losses["g_recon_s_a"] + losses["g_recon_s_b"])
                     + cfg.recon_c_w * (losses["g_recon_c_a"] + losses["g_recon_c_b"]))
            if cfg.recon_x_cyc_w > 0:  # style-augmented cycle consistency
                losses["g_cycrecon_x_a"] = l1(a.decode(c_a_recon, s_a_prime), x_a)
                losses["g_cycrecon_x_b"] = l1(b.decode(c_b_recon, s_b_prime), x_b)
                total = total + cfg.recon_x_cyc_w * (losses["g_cycrecon_x_a"]
                                                     + losses["g_cycrecon_x_b"])
        ctx.optimizer_step(total, optimizer)
        out = {k: v.detach() for k, v in losses.items()}
        out["g_total"] = total.detach()
        return out

    # ----- inference -----

    def translate(self, x: torch.Tensor, *, n_styles: int = 1,
                  reference: torch.Tensor | None = None, target_domain: Any = None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
        """x (N, 3, H, W) → (N, K, 3, H, W) in target_domain ("b"/1, the default: A→B; "a"/0:
        B→A): K random styles (N(0, I)), or K = 1 with the style of `reference` (one image for
        all inputs, or one per input)."""
        gens = (self.gen_a, self.gen_b)
        target_index = self.domains.single(target_domain)
        source, target = gens[1 - target_index], gens[target_index]
        ctx = self.context
        x = ctx.to_device(x)
        n = x.shape[0]
        with self.evaluating(), ctx.autocast():
            content = source.enc_content(x)
            if reference is not None:
                style = target.enc_style(ctx.to_device(reference)).expand(n, -1, -1, -1)
                return target.decode(content, style).float().unsqueeze(1)
            style = self._random_style(n * n_styles, generator)
            content = content.repeat_interleave(n_styles, dim=0)
            out = target.decode(content, style).float()
        return out.reshape(n, n_styles, *out.shape[1:])

    def sample_visuals(self, batch: dict[str, torch.Tensor],
                       generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """trainer.py's sample(): inputs, reconstructions, translations with the fixed display
        styles and with random ones, both directions."""
        ctx = self.context
        x_a, x_b = ctx.to_device(batch["a"]), ctx.to_device(batch["b"])
        n = x_a.shape[0]
        fixed = torch.arange(n, device=ctx.device) % self.config.display_size
        with self.evaluating(), ctx.autocast():
            c_a, s_a = self.gen_a.encode(x_a)
            c_b, s_b = self.gen_b.encode(x_b)
            visuals = {
                "x_a": x_a,
                "x_a_recon": self.gen_a.decode(c_a, s_a),
                "x_ab_fixed": self.gen_b.decode(c_a, self.display_style_b[fixed]),
                "x_ab_random": self.gen_b.decode(c_a, self._random_style(n, generator)),
                "x_b": x_b,
                "x_b_recon": self.gen_b.decode(c_b, s_b),
                "x_ba_fixed": self.gen_a.decode(c_b, self.display_style_a[fixed]),
                "x_ba_random": self.gen_a.decode(c_b, self._random_style(n, generator)),
            }
        return {k: v.float() for k, v in visuals.items()}
