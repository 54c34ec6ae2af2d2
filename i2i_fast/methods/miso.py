"""MISO: Mutual Information Loss with Stochastic Style Representations for Multimodal
Image-to-Image Translation (Na, Yoo, Choo; arXiv 1902.03938, 2019; BMVC 2021 as "Multimodal Image
Translation with Stochastic Style Representations and Mutual Information Loss").

There is no public code: the BMVC 2021 listing has an empty code field and no implementation was
found (METHODS_NEXT.md §4). What this module follows, and what it could read:

- the paper's abstract (ar5iv.org/html/1902.03938 and scholarfeed.org/paper/1902.03938v1, stored
  copies holding the abstract and the first paragraphs of the introduction; the BMVC 2021
  listing, BritishMachineVisionAssociation/BMVC2021 conference/papers/paper_0115.md): the content
  of the source image is encoded *conditioned on a style of the target domain*; style is a random
  variable; MILO, an information-theoretic loss, *replaces the usual image reconstruction loss*;
- the article that walks through the paper's figures (Medium/CodeX, "How to train Multimodal
  Image-to-Image Translation using MISO"; its Chinese translation is the project's seed document
  shared/seeds/000_8b84d4861a79ef52.txt): per domain a style encoder E_A, E_B (image → z, with
  noise in the latent space: not a point code) and a discriminator D_A, D_B; per direction a
  conditional encoder E_AB, E_BA and a generator G_AB, G_BA; MILO maximises the mutual
  information between z_a = E_A(a) and the image G_BA(b, z_a) generated from it, InfoGAN's
  variational bound, computed from the style encoder's outputs mu_out, sigma_out on the generated
  image; the generator objective is a weighted sum of MILO, a KL divergence, cycle consistency and
  the adversarial losses; training has BicycleGAN's two stages, image → feature → image (IFI) and
  feature → image → feature (FIF), MUNIT/DRIT using an L1 self-reconstruction in their IFI stage.

The paper's full text (its equations, its training figure, loss weights, architecture details)
was not in the stored material. Everything below that the sources above do not say is a
**decision**, marked [D], with its reason; MUNIT (i2i_fast.methods.munit) is the base for all of
them because the paper builds on it.

Networks (MUNIT's blocks, MUNIT's sizes: gen dim 64, MLP 256, style 8, 2 downsamplings, 4
residual blocks; D: 3 scales, 4 layers, dim 64, LSGAN):

- style_a, style_b: E_d(x) → (mu, logvar), each (N, 8): MUNIT's StyleEncoder whose last 1x1
  conv gives 2 · style_dim channels (StyleEncoder(gaussian=True)); z = mu + exp(logvar / 2) · eps.
  [D] A diagonal Gaussian with a log-variance head (as DRIT's and BicycleGAN's encoders): the
  sources say only "stochastic", "a random variable", mu_out and sigma_out. 2,766,992 parameters.
- gen_ab, gen_ba: G_XY(x, z_Y) = decoder(E_XY(x | z_Y), z_Y). E_XY is MUNIT's ContentEncoder
  whose residual blocks are AdaIN blocks (ContentEncoder(res_norm="adain")) modulated by an MLP of
  z_Y of the decoder's MLP form (8 → 256 → 256 → 2 · ΣC); the decoder is MUNIT's with its own MLP.
  [D] AdaIN in the residual blocks: "content conditioned on the target style" is the paper's; how
  is not said, AdaIN is how MUNIT's decoder takes a style and needs no new block (the
  downsampling convolutions keep their instance norm). [D] Two MLPs per direction (one for the
  encoder, one for the decoder): each network keeps MUNIT's own pairing; one shared MLP would be
  the other choice. Per direction: content encoder 5,385,856 + its MLP 1,120,768 + decoder
  5,754,627 + its MLP 1,120,768 = 13,382,019.
- dis_a, dis_b: MUNIT's multi-scale LSGAN discriminator, 8,271,171 each.

One iteration (cfg.self_recon = "milo", the method; z_a ~ E_A(a), z_b ~ E_B(b) sampled by
reparameterisation; r_a, r_b ~ N(0, I)):

  IFI (image → feature → image): x_ba = G_BA(b, z_a), x_ab = G_AB(a, z_b)
    MILO        milo_w · [NLL(z_a; E_A(x_ba)) + NLL(z_b; E_B(x_ab))]   (gaussian_nll, below)
    KL          kl_w · [KL(E_A(a) ‖ N(0, I)) + KL(E_B(b) ‖ N(0, I))]
    cycle       cyc_w · [‖G_AB(x_ba, z_b) − b‖₁ + ‖G_BA(x_ab, z_a) − a‖₁]
    adversarial gan_w · [D_A(x_ba) + D_B(x_ab)]  (LSGAN, generator side)
  FIF (feature → image → feature): x̃_ba = G_BA(b, r_a), x̃_ab = G_AB(a, r_b)
    latent      latent_w · [‖mu_A(x̃_ba) − r_a‖₁ + ‖mu_B(x̃_ab) − r_b‖₁]
    adversarial gan_w · [D_A(x̃_ba) + D_B(x̃_ab)]
  then D: gan_w · Σ_d [lsgan(D_d(IFI fake), D_d(real)) + lsgan(D_d(FIF fake), D_d(real))]

MILO = E[ Σ_k logvar_k / 2 + (z_k − mu_k)² · exp(−logvar_k) / 2 ], with (mu, logvar) = E_Y(x̂) on
the image x̂ generated from z: −log q(z | x̂) without its constant, the term of the variational
bound I(z; x̂) ≥ H(z) + E log q(z | x̂) that depends on the networks being trained
(i2i_fast.losses.gaussian_nll, reduction "batch_sum": summed over the 8 code dimensions,
averaged over the batch). It is called with z, mu, logvar each of shape (N, style_dim), twice per
iteration (one per domain). The fused operator for it is a later piece of work; this is its
reference.

Decisions on the training step:
- [D] MILO on the IFI stage's codes z_a = E_A(a) (the seed article's definition), in place of the
  L1 self-reconstruction that MUNIT and DRIT use there; gradients flow through z_a into E_A(a)
  (reparameterised, as BicycleGAN's cVAE half) and into E_A as the posterior q (as InfoGAN's Q).
- [D] The FIF stage keeps MUNIT's/BicycleGAN's L1 latent reconstruction of the prior code (the
  article: "each stage trained with different loss functions"; MILO is named for the encoded
  code), on the posterior mean.
- [D] The self-reconstruction that self_recon = "l1" puts back in MILO's place (the ablation of
  the issue; MISO's claim is that MILO beats it): â = G_BA(a, z_a), ‖â − a‖₁ · recon_x_w (10, MUNIT's
  recon_x_w), and the same for b. With one generator per direction, this is the only path that
  re-generates an image of A from its own content and its own style code: G_BA is the generator
  of domain A, its conditional encoder always takes A styles, only its input is from A instead of
  B (CycleGAN's identity mapping, with MUNIT's style code). Everything else is the same.
- [D] No content reconstruction term (MUNIT's recon_c): it is not in the article's list of losses,
  and the content of the two directions comes from two different conditional encoders, so there
  is no common content code to compare; the cycle keeps the content.
- [D] The cycle returns with the same sampled codes (G_AB(x_ba, z_b) with b's own z_b): MUNIT's
  style-augmented cycle, DRIT's cross-cycle.
- [D] Loss weights (unpublished in what could be read): gan_w 1, cyc_w 10 and recon_x_w 10
  (MUNIT's recon_x_cyc_w / recon_x_w), latent_w 1 (MUNIT's recon_s_w), milo_w 1, kl_w 0.01
  (DRIT/BicycleGAN) on the KL summed over the code and averaged over the batch.
- [D] Order within an iteration: BicycleGAN's (the two-stage scheme MISO takes from it): the
  forward pass of both stages, the update of the style encoders and generators (discriminators
  frozen, which leaves the generators' gradients unchanged), then the discriminator update on
  those fakes, detached. The discriminators see both stages' fakes, each stage with its own
  real/fake term (BicycleGAN's D with use_same_D).
- [D] Optimisers, init, schedule: MUNIT's (Adam lr 1e-4, betas (0.5, 0.999), weight decay 1e-4,
  one optimizer for the style encoders and generators, one for the discriminators; ×0.5 every
  100k iterations; Kaiming init for the encoders and generators, N(0, 0.02) for D).
- [D] Translation: random styles are z ~ N(0, I) (what the KL term makes the prior); a reference
  image gives the posterior mean mu of the target domain's style encoder (no sampling, so a
  reference gives one deterministic output, as BicycleGAN's encoded test mode).

Not reproduced: no loss weights, widths or schedules of the paper were available to compare
with, so no figure here is the paper's; the README reports this implementation's own figures.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from ..losses import (
    discriminator_loss,
    gaussian_nll,
    generator_loss,
    kl_standard_normal,
    l1,
    latent_regression,
    reparameterize,
)
from ..nn import AdaINDecoder, ContentEncoder, MLP, StyleEncoder
from ..nn.init import INITS, init_weights
from .base import Method, RunContext
from .munit import GeneratorConfig, MUNITNetworksConfig, discriminator, scheduler, size_rule
from .roles import NetworkRoles

SELF_RECONS = ("milo", "l1")


@dataclasses.dataclass
class MISOConfig(MUNITNetworksConfig):
    """Defaults: MUNIT's (configs/edges2shoes_folder.yaml) sizes and optimiser; the MISO terms'
    weights are decisions (see the module docstring)."""

    # the IFI stage's reconstruction: "milo" (MISO) or "l1" (MUNIT's self-reconstruction: the
    # ablation of MILO)
    self_recon: str = "milo"
    # loss weights
    gan_w: float = 1.0
    milo_w: float = 1.0
    recon_x_w: float = 10.0  # the L1 self-reconstruction (self_recon = "l1" only)
    kl_w: float = 0.01
    cyc_w: float = 10.0
    latent_w: float = 1.0
    image_size: int = 256


class ConditionalGenerator(nn.Module):
    """One direction X → Y: G(x, z) = decoder(E(x | z), z), E the content encoder whose residual
    blocks take AdaIN from z (through their own MLP), the decoder MUNIT's (with its MLP).

    forward(x (N, in, H, W), z (N, style_dim)) → (N, out, H, W) in [-1, 1]."""

    def __init__(self, in_channels: int, out_channels: int, cfg: GeneratorConfig):
        super().__init__()
        self.enc_content = ContentEncoder(cfg.n_downsample, cfg.n_res, in_channels, cfg.dim,
                                          norm="in", activation=cfg.activ,
                                          pad_type=cfg.pad_type, res_norm="adain")
        self.mlp_content = MLP(cfg.style_dim, self.enc_content.num_adain_params, cfg.mlp_dim, 3,
                               cfg.activ)
        self.dec = AdaINDecoder(cfg.n_downsample, cfg.n_res, self.enc_content.out_channels,
                                out_channels, activation=cfg.activ, pad_type=cfg.pad_type)
        self.mlp = MLP(cfg.style_dim, self.dec.num_adain_params, cfg.mlp_dim, 3, cfg.activ)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        content = self.enc_content(x, self.mlp_content(z))
        return self.dec(content, self.mlp(z))


def style_encoder(in_channels: int, cfg: GeneratorConfig) -> StyleEncoder:
    """MUNIT's style encoder (4 downsamplings, no norm) with the (mu, logvar) head."""
    return StyleEncoder(4, in_channels, cfg.dim, cfg.style_dim, norm="none",
                        activation=cfg.activ, pad_type=cfg.pad_type, gaussian=True)


class MISO(Method):
    name = "miso"
    Config = MISOConfig
    data_kind = "unpaired"
    loss_names = ("d_total", "d_a", "d_b", "g_total", "g_adv_a", "g_adv_b", "g_milo_a",
                  "g_milo_b", "g_recon_x_a", "g_recon_x_b", "g_kl_a", "g_kl_b", "g_cyc_a",
                  "g_cyc_b", "g_latent_a", "g_latent_b")
    configs = {
        # The CPU demo: MUNIT's demo scaling (widths /4, 2 residual blocks, 2 discriminator
        # scales, 64x64, batch 4, lr 4e-4) with the MISO losses.
        "demo": {"gen": {"dim": 16, "mlp_dim": 64, "n_res": 2},
                 "dis": {"dim": 16, "n_layer": 3, "num_scales": 2},
                 "image_size": 64, "batch_size": 4, "max_iter": 800, "lr": 4e-4},
        # The ablation arm of the demo: the same networks with MUNIT's L1 self-reconstruction in
        # place of MILO (README, "MISO").
        "demo_l1": {"gen": {"dim": 16, "mlp_dim": 64, "n_res": 2},
                    "dis": {"dim": 16, "n_layer": 3, "num_scales": 2},
                    "image_size": 64, "batch_size": 4, "max_iter": 800, "lr": 4e-4,
                    "self_recon": "l1"},
        # The smallest networks of the structure, for tests and check_method.
        "tiny": {"gen": {"dim": 8, "mlp_dim": 16, "n_res": 1},
                 "dis": {"dim": 8, "n_layer": 2, "num_scales": 2},
                 "image_size": 16, "batch_size": 2, "max_iter": 10},
    }

    reference_guided = True
    demo_config = "demo"
    demo_data = "synthetic:shapes"

    @classmethod
    def check_config(cls, cfg: MISOConfig) -> None:
        if cfg.self_recon not in SELF_RECONS:
            raise ValueError(f"miso: self_recon: expected one of {SELF_RECONS}, got "
                             f"{cfg.self_recon!r}")
        if cfg.dis.gan_type not in ("lsgan", "nsgan"):
            raise ValueError(f"miso: dis.gan_type: expected 'lsgan' or 'nsgan', got "
                             f"{cfg.dis.gan_type!r}")
        if cfg.lr_policy not in ("step", "constant"):
            raise ValueError(f"miso: lr_policy: expected 'step' or 'constant', got "
                             f"{cfg.lr_policy!r}")
        if cfg.init not in INITS:
            raise ValueError(f"miso: init: expected one of {', '.join(INITS)}, got {cfg.init!r}")
        if cfg.gen.style_dim < 1:
            raise ValueError(f"miso: gen.style_dim: expected >= 1, got {cfg.gen.style_dim}")
        for field in ("gan_w", "milo_w", "recon_x_w", "kl_w", "cyc_w", "latent_w"):
            value = getattr(cfg, field)
            if not value >= 0:
                raise ValueError(f"miso: {field}: expected a weight >= 0, got {value!r}")
        # The same convolutions, pads and pools as MUNIT's networks: the same image sides.
        size_rule(cfg).check("miso", "image_size", cfg.image_size,
                             "the sides these networks take, found by trying them")

    def __init__(self, config: MISOConfig, context: RunContext | None = None):
        super().__init__(config, context)
        cfg = config
        self.check_config(cfg)
        self.size_rule = size_rule(cfg)
        a, b = cfg.input_dim_a, cfg.input_dim_b
        self.style_a = init_weights(style_encoder(a, cfg.gen), cfg.init)
        self.style_b = init_weights(style_encoder(b, cfg.gen), cfg.init)
        self.gen_ab = init_weights(ConditionalGenerator(a, b, cfg.gen), cfg.init)
        self.gen_ba = init_weights(ConditionalGenerator(b, a, cfg.gen), cfg.init)
        self.dis_a = init_weights(discriminator(a, cfg.dis), "gaussian")
        self.dis_b = init_weights(discriminator(b, cfg.dis), "gaussian")
        self.context.prepare(self)

        ctx, betas = self.context, (cfg.beta1, cfg.beta2)
        gen_params = [p for name in ("style_a", "style_b", "gen_ab", "gen_ba")
                      for p in getattr(self, name).parameters()]
        gen_opt = ctx.adam(gen_params, cfg.lr, betas, cfg.weight_decay)
        dis_opt = ctx.adam([*self.dis_a.parameters(), *self.dis_b.parameters()], cfg.lr, betas,
                           cfg.weight_decay)
        self.add_optimizer("gen", gen_opt, scheduler(gen_opt, cfg))
        self.add_optimizer("dis", dis_opt, scheduler(dis_opt, cfg))
        self.declare_networks(NetworkRoles(
            trained=("style_a", "style_b", "gen_ab", "gen_ba", "dis_a", "dis_b"),
            critics=("dis_a", "dis_b")))

    def _prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n style codes from N(0, I), (n, style_dim)."""
        return torch.randn(n, self.config.gen.style_dim, device=self.context.device,
                           generator=generator)

    @staticmethod
    def _posterior(encoder: Any, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of a style encoder, each (N, style_dim)."""
        mu, logvar = encoder(x)
        return mu.flatten(1), logvar.flatten(1)

    # ----- training -----

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        ctx = self.context
        x_a, x_b = ctx.to_device(batch["a"]), ctx.to_device(batch["b"])
        losses, fakes = self._gen_update(x_a, x_b)
        losses.update(self._dis_update(x_a, x_b, fakes))
        for scheduler in self._schedulers.values():
            scheduler.step()
        return losses

    def _gen_update(self, x_a: torch.Tensor, x_b: torch.Tensor
                    ) -> tuple[dict[str, torch.Tensor], dict[str, list[torch.Tensor]]]:
        """The style encoders' and generators' update on both stages; returns the losses and the
        fakes of each domain (IFI, FIF), detached, for the discriminator update."""
        cfg, ctx, nets, critics = self.config, self.context, self.nets, self.critics
        optimizer = self._optimizers["gen"]
        optimizer.zero_grad(set_to_none=True)
        gan = cfg.dis.gan_type
        with self.frozen_critics(), ctx.autocast():
            # IFI: image -> feature -> image
            mu_a, logvar_a = self._posterior(nets.style_a, x_a)
            mu_b, logvar_b = self._posterior(nets.style_b, x_b)
            z_a, z_b = reparameterize(mu_a, logvar_a), reparameterize(mu_b, logvar_b)
            x_ba = nets.gen_ba(x_b, z_a)  # b's content, a's style
            x_ab = nets.gen_ab(x_a, z_b)
            losses = {
                "g_kl_a": kl_standard_normal(mu_a, logvar_a, "batch_sum"),
                "g_kl_b": kl_standard_normal(mu_b, logvar_b, "batch_sum"),
                "g_cyc_a": l1(nets.gen_ba(x_ab, z_a), x_a),
                "g_cyc_b": l1(nets.gen_ab(x_ba, z_b), x_b),
            }
            if cfg.self_recon == "milo":
                losses["g_milo_a"] = gaussian_nll(z_a, *self._posterior(nets.style_a, x_ba))
                losses["g_milo_b"] = gaussian_nll(z_b, *self._posterior(nets.style_b, x_ab))
                recon = cfg.milo_w * (losses["g_milo_a"] + losses["g_milo_b"])
            else:  # the ablation: each image re-generated from its own content and style
                losses["g_recon_x_a"] = l1(nets.gen_ba(x_a, z_a), x_a)
                losses["g_recon_x_b"] = l1(nets.gen_ab(x_b, z_b), x_b)
                recon = cfg.recon_x_w * (losses["g_recon_x_a"] + losses["g_recon_x_b"])
            # FIF: feature -> image -> feature
            r_a, r_b = self._prior(x_a.shape[0]), self._prior(x_b.shape[0])
            x_ba_prior = nets.gen_ba(x_b, r_a)
            x_ab_prior = nets.gen_ab(x_a, r_b)
            losses["g_latent_a"] = latent_regression(self._posterior(nets.style_a, x_ba_prior)[0],
                                                     r_a)
            losses["g_latent_b"] = latent_regression(self._posterior(nets.style_b, x_ab_prior)[0],
                                                     r_b)
            losses["g_adv_a"] = (generator_loss(critics.dis_a(x_ba), gan)
                                 + generator_loss(critics.dis_a(x_ba_prior), gan))
            losses["g_adv_b"] = (generator_loss(critics.dis_b(x_ab), gan)
                                 + generator_loss(critics.dis_b(x_ab_prior), gan))
            total = (cfg.gan_w * (losses["g_adv_a"] + losses["g_adv_b"])
                     + recon
                     + cfg.kl_w * (losses["g_kl_a"] + losses["g_kl_b"])
                     + cfg.cyc_w * (losses["g_cyc_a"] + losses["g_cyc_b"])
                     + cfg.latent_w * (losses["g_latent_a"] + losses["g_latent_b"]))
        ctx.optimizer_step(total, optimizer)
        out = {k: v.detach() for k, v in losses.items()}
        out["g_total"] = total.detach()
        fakes = {"a": [x_ba.detach(), x_ba_prior.detach()],
                 "b": [x_ab.detach(), x_ab_prior.detach()]}
        return out, fakes

    def _dis_update(self, x_a: torch.Tensor, x_b: torch.Tensor,
                    fakes: dict[str, list[torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Each discriminator on its real images and on both stages' fakes (one real/fake term
        per stage)."""
        cfg, ctx, nets = self.config, self.context, self.nets
        optimizer = self._optimizers["dis"]
        optimizer.zero_grad(set_to_none=True)
        gan = cfg.dis.gan_type
        with ctx.autocast():
            losses = {}
            for domain, dis, real in (("a", nets.dis_a, x_a), ("b", nets.dis_b, x_b)):
                real_out = dis(real)
                losses[f"d_{domain}"] = sum(discriminator_loss(dis(fake), real_out, gan)
                                            for fake in fakes[domain])
            total = cfg.gan_w * (losses["d_a"] + losses["d_b"])
        ctx.optimizer_step(total, optimizer)
        return {"d_total": total.detach(), "d_a": losses["d_a"].detach(),
                "d_b": losses["d_b"].detach()}

    # ----- inference -----

    def _direction(self, target_domain: Any) -> tuple[nn.Module, nn.Module]:
        """(generator into the target domain, the target domain's style encoder)."""
        if self.domains.single(target_domain) == 1:
            return self.gen_ab, self.style_b
        return self.gen_ba, self.style_a

    def translate(self, x: torch.Tensor, *, n_styles: int = 1,
                  reference: torch.Tensor | None = None, target_domain: Any = None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
        """x (N, 3, H, W) → (N, K, 3, H, W) in target_domain ("b"/1, the default: A→B; "a"/0:
        B→A): K random styles z ~ N(0, I), or K = 1 with the style of `reference` (the posterior
        mean of the target domain's style encoder; one image for all inputs, or one per input)."""
        gen, encoder = self._direction(target_domain)
        ctx = self.context
        x = ctx.to_device(x)
        n = x.shape[0]
        with self.evaluating(), ctx.autocast():
            if reference is not None:
                mu, _ = self._posterior(encoder, ctx.to_device(reference))
                return gen(x, mu.expand(n, -1)).float().unsqueeze(1)
            z = self._prior(n * n_styles, generator)
            out = gen(x.repeat_interleave(n_styles, dim=0), z).float()
        return out.reshape(n, n_styles, *out.shape[1:])

    def sample_visuals(self, batch: dict[str, torch.Tensor],
                       generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Inputs; translations with a random style, with the other batch's style (posterior
        mean) and the cycle back with the input's own style; both directions."""
        ctx = self.context
        x_a, x_b = ctx.to_device(batch["a"]), ctx.to_device(batch["b"])
        n = x_a.shape[0]
        with self.evaluating(), ctx.autocast():
            mu_a, _ = self._posterior(self.style_a, x_a)
            mu_b, _ = self._posterior(self.style_b, x_b)
            x_ab = self.gen_ab(x_a, mu_b)
            x_ba = self.gen_ba(x_b, mu_a)
            visuals = {
                "x_a": x_a,
                "x_ab_random": self.gen_ab(x_a, self._prior(n, generator)),
                "x_ab_reference": x_ab,
                "x_aba": self.gen_ba(x_ab, mu_a),
                "x_b": x_b,
                "x_ba_random": self.gen_ba(x_b, self._prior(n, generator)),
                "x_ba_reference": x_ba,
                "x_bab": self.gen_ab(x_ba, mu_b),
            }
        return {k: v.float() for k, v in visuals.items()}
