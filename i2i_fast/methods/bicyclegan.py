"""BicycleGAN: Toward Multimodal Image-to-Image Translation (Zhu, Zhang, Pathak, Darrell, Efros,
Wang, Shechtman, NeurIPS 2017), as the official implementation (junyanz/BicycleGAN:
models/bicycle_gan_model.py, models/networks.py, options/, data/aligned_dataset.py, train.py)
defines it.

Paired data (A, B). A generator G(A, z) maps an input and an 8-d latent code to an output; an
encoder E(B) gives a Gaussian posterior (mu, logvar) over the code of a target; two
discriminators judge the outputs. Each batch of 2·n pairs is split in two halves (the official
batch is 2, so n = 1): the first half trains the cVAE-GAN direction (B → z → G(A, z) ≈ B), the
second half only supplies real targets to the second discriminator (cLR-GAN: z → G(A, z) → E
recovers z). Both generated images condition on the *first* half's inputs A_enc.

One iteration (optimize_parameters: forward, the G and E update, then the D update):

  z_enc = mu + exp(logvar / 2)·eps with (mu, logvar) = E(B_enc); z_rand ~ N(0, I)
  fake_enc = G(A_enc, z_enc);  fake_rand = G(A_enc, z_rand);  mu2 = mu of E(fake_rand)
  G, E: lambda_GAN · Σ_scales mean((D(fake_enc) − 1)²) + lambda_GAN2 · Σ_scales
        mean((D2(fake_rand) − 1)²) + lambda_L1 · mean|fake_enc − B_enc|
        + lambda_kl · (−1/2) Σ_{batch, dims} (1 + logvar − mu² − exp(logvar))
        + lambda_z · mean|mu2 − z_rand|, the last term updating G only (E's parameters get no
        gradient from it: E is frozen for that call, as the official code switches its
        requires_grad off before that backward); then E and G step.
  D:    Σ_scales [mean(D(fake_enc)²) + mean((D(B_enc) − 1)²)] (fakes detached, from before G's
        step); D2 likewise on (fake_rand, B_rand): its real is the *other* half's target.

The losses are reported as the official code logs them, weights applied (g_gan, g_gan2, g_l1,
z_l1, kl; d, d2), and g_total, the sum of the five G and E terms (the official loss_G leaves
z_l1 out). Networks (i2i_fast.nn, counts at the defaults in the README):
G = LatentUNetGenerator, z injected by concatenation before every down convolution
(where_add "all"); E = VariationalResNetEncoder (resnet_256: 4 PreActDownBlocks, 8x8 average
pooling); D, D2 = two MultiScalePatchDiscriminators ("basic_256_multi": pix2pix PatchGANs at 2
scales, the second at half width). Instance norm (no affine), LeakyReLU 0.2 in D, E and the
U-Net's down path, ReLU on its up path. Init: xavier_normal with gain 0.02 on every conv and
linear weight, biases 0. Adam(lr 2e-4, betas (0.5, 0.999)) per network; the learning rate stays
for niter epochs, then decays linearly over niter_decay epochs (the official LambdaLR stepped per
epoch), here a pure function of the iteration with an epoch of epoch_size // batch_size
iterations (set epoch_size to the training set's size).

Data (the official aligned dataset): A | B side by side, resized to load_size (bicubic), a random
image_size crop and a flip (unless no_flip) shared by A and B; direction "BtoA" swaps them; with
input_nc 1 the input is converted to grayscale (0.299 R + 0.587 G + 0.114 B, PIL's "L" weights,
applied to the [-1, 1] values: the same up to PIL's rounding to 8 bits). Translation: random codes
z ~ N(0, I), or the encoder's mu of a reference target image (the official test's "encoded").

Sizes (the official resnet_256 / unet_256 are fixed to 256x256): here the U-Net has log2(S)
levels (the innermost reaches 1x1, as unet_256 at 256 and unet_128 at 128) and the encoder
log2(S) − 3 stages (its last map is 8x8, as resnet_256 at 256 and resnet_128 at 128), so any power
of two S >= 64 works; at 256 the networks are exactly the official ones, at 128 those of unet_128
and resnet_128 (the official code pairs unet_128 with resnet_128 only by option).

Deliberate differences, each exact in the math: the two generator passes run as one batch
(cat[A_enc, A_enc], cat[z_enc, z_rand]): instance norm is per sample, so the outputs are the same
(with use_dropout the masks are drawn in one call), and each discriminator's update runs its
fakes and reals as one batch cat[fake, real] (no dropout in D: the same outputs; at the batch of
2 per half one call of the convolutions is much cheaper than two); the G and E losses are summed and
backpropagated once instead of in two backward calls (the same gradients); the discriminators
run frozen inside the G update (the official code freezes them too). Not implemented (refused or
absent): where_add "input"/"middle", upsample "bilinear", norms other than instance, the
conv_* encoders, conditional_D, use_same_D, wgangp, lambda_GAN or lambda_GAN2 = 0 (the official
code then drops D or D2), output_nc other than 3.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import torch

from ..data.transforms import ImageTransform
from ..losses import (
    discriminator_loss,
    generator_loss,
    kl_standard_normal,
    l1,
    latent_regression,
    reparameterize,
)
from ..nn import (
    LatentUNetGenerator,
    MultiScalePatchDiscriminator,
    VariationalResNetEncoder,
    in_one_batch,
)
from ..nn.init import init_weights
from ..optim import linear_decay_by_epoch, lr_scheduler
from .base import Method, MethodConfig, RunContext
from .config_checks import FieldChecks
from .roles import NetworkRoles

GAN_MODES = {"lsgan": "lsgan", "vanilla": "nsgan"}  # official name -> ops.gan_loss mode
DIRECTIONS = ("AtoB", "BtoA")
GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # PIL's RGB -> L
MIN_SIZE = 64


@dataclasses.dataclass
class BicycleGANConfig(MethodConfig):
    """Defaults = the official options (options/base_options.py, train_options.py)."""

    # data (aligned dataset)
    image_size: int = 256  # crop_size
    load_size: int = 286
    no_flip: bool = False
    direction: str = "AtoB"  # AtoB | BtoA
    input_nc: int = 3
    output_nc: int = 3
    # networks
    nz: int = 8
    ngf: int = 64
    ndf: int = 64
    nef: int = 64
    num_ds: int = 2  # scales of each discriminator
    use_dropout: bool = False
    init_gain: float = 0.02  # xavier_normal gain
    gan_mode: str = "lsgan"  # lsgan | vanilla
    # optimisation
    batch_size: int = 2  # even: the first half is encoded, the second is random
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    niter: int = 100  # epochs at lr
    niter_decay: int = 100  # epochs of linear decay to 0
    epoch_count: int = 1
    epoch_size: int = 49_825  # pairs per epoch (edges2shoes train); set it to your data's
    max_iter: int = 200 * (49_825 // 2)  # (niter + niter_decay) epochs
    # loss weights
    lambda_l1: float = 10.0
    lambda_gan: float = 1.0
    lambda_gan2: float = 1.0
    lambda_z: float = 0.5
    lambda_kl: float = 0.01


def _iterations_per_epoch(cfg: BicycleGANConfig) -> int:
    return cfg.epoch_size // cfg.batch_size  # the official loop skips a last odd batch


class BicycleGAN(Method):
    name = "bicyclegan"
    Config = BicycleGANConfig
    data_kind = "paired"
    loss_names = ("g_gan", "g_gan2", "g_l1", "z_l1", "kl", "g_total", "d", "d2")
    configs = {
        # scripts/train_edges2shoes.sh: --load_size 256 --crop_size 256 --input_nc 1 --no_flip
        # --niter 30 --niter_decay 30 --use_dropout (49,825 training pairs)
        "edges2shoes": {"load_size": 256, "input_nc": 1, "no_flip": True, "use_dropout": True,
                        "niter": 30, "niter_decay": 30, "max_iter": 60 * (49_825 // 2)},
        # The CPU demo on synthetic:shapes-paired at 64x64: the official structure with half
        # the widths (the U-Net has 6 levels at 64), batch 4 (2 encoded + 2 random), schedule
        # epochs of 400 pairs: 5 at lr 2e-4, then 5 of linear decay (1000 iterations).
        "demo": {"image_size": 64, "load_size": 72, "ngf": 32, "ndf": 32, "nef": 32,
                 "batch_size": 4, "epoch_size": 400, "niter": 5, "niter_decay": 5,
                 "max_iter": 1000},
        # The smallest networks of the official structure, for tests and check_method.
        "tiny": {"image_size": 64, "load_size": 72, "ngf": 4, "ndf": 4, "nef": 4,
                 "batch_size": 2, "epoch_size": 4, "niter": 2, "niter_decay": 3,
                 "max_iter": 10},
    }

    reference_guided = True
    demo_config = "demo"
    demo_data = "synthetic:shapes-paired"

    @classmethod
    def check_config(cls, cfg: BicycleGANConfig) -> None:
        fail = FieldChecks("bicyclegan", cfg).fail

        size = cfg.image_size
        if isinstance(size, bool) or not isinstance(size, int) or size < MIN_SIZE \
                or size & (size - 1):
            fail("image_size", f"a power of two >= {MIN_SIZE} (64, 128, 256, 512, ...): the "
                 "U-Net halves it down to 1x1 and the encoder pools its last 8x8 map (256: "
                 "the official unet_256 and resnet_256)", size)
        if cfg.batch_size < 2 or cfg.batch_size % 2:
            fail("batch_size", "an even int >= 2 (half encoded, half random)", cfg.batch_size)
        if cfg.input_nc not in (1, 3):
            fail("input_nc", "1 (grayscale input) or 3", cfg.input_nc)
        if cfg.output_nc != 3:
            fail("output_nc", "3 (the data, the evaluation and translate work on RGB targets)",
                 cfg.output_nc)
        if cfg.direction not in DIRECTIONS:
            fail("direction", "'AtoB' or 'BtoA'", cfg.direction)
        if cfg.gan_mode not in GAN_MODES:
            fail("gan_mode", "'lsgan' or 'vanilla'", cfg.gan_mode)
        if cfg.load_size < size:
            fail("load_size", f">= image_size {size} (the crop)", cfg.load_size)
        for field in ("nz", "ngf", "ndf", "nef", "num_ds", "epoch_count"):
            if getattr(cfg, field) < 1:
                fail(field, "an int >= 1", getattr(cfg, field))
        for field in ("lambda_gan", "lambda_gan2"):
            if not getattr(cfg, field) > 0:
                fail(field, "> 0 (with 0 the official code drops that discriminator; not "
                     "supported here)", getattr(cfg, field))
        for field in ("lambda_l1", "lambda_z", "lambda_kl"):
            if not getattr(cfg, field) >= 0:
                fail(field, ">= 0", getattr(cfg, field))
        if cfg.niter < 0 or cfg.niter_decay < 0:
            fail("niter, niter_decay", "ints >= 0", (cfg.niter, cfg.niter_decay))
        if cfg.epoch_size < cfg.batch_size:
            fail("epoch_size", f"an int >= batch_size {cfg.batch_size}", cfg.epoch_size)
        epochs = cfg.niter + cfg.niter_decay - cfg.epoch_count + 1
        longest = epochs * _iterations_per_epoch(cfg)
        if cfg.max_iter > longest:
            fail("max_iter", f"<= {longest} ((niter + niter_decay - epoch_count + 1) epochs of "
                 f"epoch_size // batch_size iterations; the learning rate reaches 0 there)",
                 cfg.max_iter)

    def __init__(self, config: BicycleGANConfig, context: RunContext | None = None):
        super().__init__(config, context)
        cfg = config
        self.check_config(cfg)
        levels = int(math.log2(cfg.image_size))
        self.gen = LatentUNetGenerator(cfg.input_nc, cfg.output_nc, cfg.nz, levels, cfg.ngf,
                                       cfg.use_dropout)
        self.enc = VariationalResNetEncoder(cfg.output_nc, cfg.nz, cfg.nef, levels - 3)
        self.dis = self._discriminator()
        self.dis2 = self._discriminator()
        for net in (self.gen, self.enc, self.dis, self.dis2):
            init_weights(net, "xavier", cfg.init_gain)
        self.context.prepare(self)

        ctx, betas = self.context, (cfg.beta1, cfg.beta2)
        schedule = functools.partial(linear_decay_by_epoch,
                                     iterations_per_epoch=_iterations_per_epoch(cfg),
                                     n_constant=cfg.niter, n_decay=cfg.niter_decay,
                                     epoch_count=cfg.epoch_count)
        for name in ("gen", "enc", "dis", "dis2"):
            optimizer = ctx.adam(getattr(self, name).parameters(), cfg.lr, betas)
            self.add_optimizer(name, optimizer, lr_scheduler(optimizer, schedule))
        # D and D2 run frozen in the G update; E runs frozen on fake_rand (the latent L1).
        self.declare_networks(NetworkRoles(trained=("gen", "enc", "dis", "dis2"),
                                           critics=("dis", "dis2", "enc")))

    def _discriminator(self) -> MultiScalePatchDiscriminator:
        cfg = self.config
        return MultiScalePatchDiscriminator(cfg.output_nc, cfg.ndf, n_layer=3,
                                            num_scales=cfg.num_ds, norm="in",
                                            activation="lrelu", pad_type="zero",
                                            patch="pix2pix", scale_width="halved")

    @property
    def data_transform(self) -> ImageTransform:
        """The aligned dataset's transform of folder data: resize load_size (bicubic), random
        crop image_size, flip unless no_flip (the same for A and B)."""
        cfg = self.config
        return ImageTransform("bicyclegan", cfg.image_size, resize=cfg.load_size,
                              resize_mode="square", crop=True, flip=not cfg.no_flip,
                              interpolation="bicubic")

    @property
    def _target_index(self) -> int:
        return 1 if self.config.direction == "AtoB" else 0

    def _input(self, x: torch.Tensor, what: str = "x") -> torch.Tensor:
        """Images of the input domain (N, 3, H, W) as G takes them (grayscale with input_nc 1)."""
        if x.shape[1] != 3:
            raise ValueError(f"bicyclegan: {what}: expected RGB images (N, 3, H, W), got "
                             f"{tuple(x.shape)}")
        if self.config.input_nc == 1:
            weights = x.new_tensor(GRAY_WEIGHTS).view(1, 3, 1, 1)
            x = (x * weights).sum(dim=1, keepdim=True)
        return x

    def _pairs(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = batch["a"], batch["b"]
        if self.config.direction == "BtoA":
            a, b = b, a
        ctx = self.context
        return self._input(ctx.to_device(a), "batch input"), ctx.to_device(b)

    # ----- training -----

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        real_a, real_b = self._pairs(batch)
        if real_a.shape[0] % 2:
            raise ValueError(f"bicyclegan: batch: expected an even number of pairs (half "
                             f"encoded, half random), got {real_a.shape[0]}")
        half = real_a.shape[0] // 2
        a_enc, b_enc, b_rand = real_a[:half], real_b[:half], real_b[half:]
        losses, fake_enc, fake_rand = self._gen_enc_update(a_enc, b_enc)
        losses.update(self._dis_update(fake_enc, b_enc, fake_rand, b_rand))
        for scheduler in self._schedulers.values():
            scheduler.step()
        return losses

    def _gen_enc_update(self, a_enc: torch.Tensor, b_enc: torch.Tensor
                        ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        cfg, ctx, nets, critics = self.config, self.context, self.nets, self.critics
        mode = GAN_MODES[cfg.gan_mode]
        for name in ("enc", "gen"):
            self._optimizers[name].zero_grad(set_to_none=True)
        half = a_enc.shape[0]
        with self.frozen_critics("dis", "dis2"), ctx.autocast():
            mu, logvar = nets.enc(b_enc)
            z_enc = reparameterize(mu, logvar)
            z_rand = torch.randn(half, cfg.nz, device=ctx.device, dtype=z_enc.dtype)
            fake_enc, fake_rand = in_one_batch(nets.gen, (a_enc, z_enc), (a_enc, z_rand))
            losses = {
                "g_gan": cfg.lambda_gan * generator_loss(critics.dis(fake_enc), mode),
                "g_gan2": cfg.lambda_gan2 * generator_loss(critics.dis2(fake_rand), mode),
                "g_l1": cfg.lambda_l1 * l1(fake_enc, b_enc),
                "kl": cfg.lambda_kl * kl_standard_normal(mu, logvar, "sum"),
            }
            if cfg.lambda_z > 0:
                with self.frozen_critics("enc"):  # the latent L1 updates G only
                    mu2, _ = critics.enc(fake_rand)
                losses["z_l1"] = cfg.lambda_z * latent_regression(mu2, z_rand)
            total = sum(losses.values())
        ctx.optimizer_step(total, [self._optimizers["enc"], self._optimizers["gen"]])
        out = {k: v.detach() for k, v in losses.items()}
        out["g_total"] = total.detach()
        return out, fake_enc.detach(), fake_rand.detach()

    def _dis_update(self, fake_enc: torch.Tensor, b_enc: torch.Tensor, fake_rand: torch.Tensor,
                    b_rand: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg, ctx, nets = self.config, self.context, self.nets
        mode = GAN_MODES[cfg.gan_mode]
        out = {}
        for name, fake, real in (("dis", fake_enc, b_enc), ("dis2", fake_rand, b_rand)):
            optimizer = self._optimizers[name]
            optimizer.zero_grad(set_to_none=True)
            with ctx.autocast():  # fakes and reals in one batch (instance norm is per sample)
                out_fake, out_real = in_one_batch(nets[name], fake, real)
                loss = discriminator_loss(out_fake, out_real, mode)
            ctx.optimizer_step(loss, optimizer)
            out["d" if name == "dis" else "d2"] = loss.detach()
        return out

    # ----- inference -----

    def _check_target(self, target_domain: Any) -> None:
        if target_domain is None:
            return
        target = self.domains.single(target_domain)
        if target != self._target_index:
            trained = "b" if self._target_index == 1 else "a"
            raise ValueError(f"bicyclegan: target_domain: this model translates to domain "
                             f"{trained!r} (direction {self.config.direction}), got "
                             f"{target_domain!r}")

    def encode(self, target: torch.Tensor) -> torch.Tensor:
        """The code of target-domain images: the encoder's mu, (N, nz) (the official test's
        "encoded" z)."""
        side = self.enc.input_size
        if target.dim() != 4 or target.shape[1] != 3 or target.shape[2:] != (side, side):
            raise ValueError(f"bicyclegan: reference: expected target images (N, 3, {side}, "
                             f"{side}) (the encoder's input size), got {tuple(target.shape)}")
        with self.evaluating(), self.context.autocast():
            mu, _ = self.enc(self.context.to_device(target))
        return mu

    def translate(self, x: torch.Tensor, *, n_styles: int = 1,
                  reference: torch.Tensor | None = None, target_domain: Any = None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
        """x (N, 3, H, W) input-domain images → (N, K, 3, H, W): K random codes z ~ N(0, I), or
        K = 1 with the code encoded from `reference` (target-domain images, one for all inputs
        or one per input, image_size x image_size). target_domain: None or the trained target
        ("b" for direction AtoB, "a" for BtoA)."""
        self._check_target(target_domain)
        ctx = self.context
        x = self._input(ctx.to_device(x))
        n = x.shape[0]
        if reference is not None:
            z = self.encode(reference).expand(n, -1)
            with self.evaluating(), ctx.autocast():
                return self.gen(x, z.to(x.dtype)).float().unsqueeze(1)
        z = torch.randn(n * n_styles, self.config.nz, device=ctx.device, generator=generator)
        with self.evaluating(), ctx.autocast():
            out = self.gen(x.repeat_interleave(n_styles, dim=0), z.to(x.dtype)).float()
        return out.reshape(n, n_styles, *out.shape[1:])

    def sample_visuals(self, batch: dict[str, torch.Tensor],
                       generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The official visuals: input, target, the output with the target's encoded code, one
        with a random code."""
        real_a, real_b = self._pairs(batch)
        n = real_a.shape[0]
        z = torch.randn(n, self.config.nz, device=self.context.device, generator=generator)
        mu = self.encode(real_b)
        with self.evaluating(), self.context.autocast():
            visuals = {"input": real_a.expand(-1, 3, -1, -1), "target": real_b,
                       "encoded": self.gen(real_a, mu.to(real_a.dtype)),
                       "random": self.gen(real_a, z.to(real_a.dtype))}
        return {k: v.float() for k, v in visuals.items()}
