"""DRIT++: Diverse Image-to-Image Translation via Disentangled Representations (Lee, Tseng, Mao,
Huang, Lu, Singh, Yang; ECCV 2018 and IJCV 2020), as the official implementation
(HsinYingLee/DRIT, src/: model.py, networks.py, options.py, train.py) defines it, mode seeking
(DRIT++) included.

Each image is split into a content code, in a space shared by both domains (E_c; 256×H/4×W/4),
and an attribute code (E_a; 8-d, prior N(0, I)); G_A and G_B translate a content code with an
attribute code. Networks (``enc_c``, ``enc_a``, ``gen``, ``dis_a``, ``dis_a2``, ``dis_b``,
``dis_b2``, ``dis_content``; i2i_fast.nn.disentangled): E_c has a branch per domain and a last
residual block shared by both that adds Gaussian noise; with ``concat`` (the default, the official
``--concat 1``) E_a is variational (mu, logvar) and G concatenates the broadcast code before four
convs after a shared residual block; without (``misins``, ``--concat 0``) E_a is deterministic and
G fuses the code through an MLP into MisINS residual blocks. D_A, D_B judge the translations with
encoded attributes, D_A2, D_B2 those with random attributes (3-scale PatchGANs); D_content tells
the content codes of A from those of B.

A batch holds ``batch_size`` images of each domain (official: 2); the first ``n_encoded`` (1) are
"encoded", the others are only real images for D_A2 and D_B2. One full iteration (train.py,
model.py ``update_D`` then ``update_EG``), with a, b the encoded images:

  forward: c_a, c_b = E_c(a, b); z_a, z_b ~ E_a(a, b) (reparameterised); z_r1, z_r2 ~ N(0, I);
    G_A on contents [c_b, c_a, c_b, c_b] with attributes [z_a, z_a, z_r1, z_r2] gives
    fake_A (the translation), fake_AA (self-reconstruction), fake_A_random, fake_A_random2;
    G_B likewise. Second cross translation: E_c(fake_A, fake_B), attributes re-encoded and
    re-sampled, G_A and G_B give fake_A_recon, fake_B_recon. mu2 = E_a(fake_*_random), mean only.
  D: each D steps on BCE(D(real), 1) + BCE(D(fake.detach()), 0) summed over its scales; D_A2
    and D_B2 take that loss once per random translation (the real term twice); D_content:
    BCE(Dc(c_b), 1) + BCE(Dc(c_a), 0), gradient norm clipped to 5.
  EG (E_c, E_a, G): BCE(Dc(c_a), 0.5) + BCE(Dc(c_b), 0.5) + Σ_scales BCE(D_A(fake_A), 1) + (B)
    + 10·|fake_AA − a| + 10·|fake_A_recon − a| + (B) + 0.01·mean(c²) per domain
    + 0.01·KL summed over the batch and the code (concat), 0.01·mean(z²) (MisINS).
  G alone (E_c, G; E_a's gradients discarded): Σ_scales BCE(D_A2(fake_A_random(2)), 1) + (B)
    + 10·mean|mu2_a − z_r1| + 10·mean|mu2_b − z_r1| + 1 / (mean|fake_random2 − fake_random| /
    mean|z_r2 − z_r1| + 1e-5) per direction (mode seeking).

Between full iterations run content-discriminator-only iterations (d_iter 3): iteration it of an
epoch is content-only when (it + 1) % d_iter ≠ 0 and it < iterations_per_epoch − 2 (E_c encodes,
with its noise, and D_content steps). Eight Adam optimisers, betas (0.5, 0.999), weight decay
1e-4, lr 1e-4 (D_content 4e-5); the "lambda" policy: epoch e runs at lr · (1 − max(0, e − 600) /
601) of 1200 epochs (LambdaLR stepped per epoch), here a pure function of the iteration with
epoch = step // iterations_per_epoch (exact on resume). Init: N(0, 0.02) for the weights of every
Conv/ConvTranspose layer; biases and Linear layers keep PyTorch's default init.

Quirks of the official code, reproduced:
1. No norm in any LeakyReLUConv2d block (its test compares the literal 'norm' with 'Instance'),
   so every discriminator, D_content included, is norm-free whatever its caller asks, and the
   ``--dis_norm`` option has no effect (no field here). Their LeakyReLU slope is 0.01.
2. Every adversarial loss is sigmoid followed by F.binary_cross_entropy (logs clamped at −100),
   not BCE-with-logits (they differ where the sigmoid saturates): losses.sigmoid_bce_loss.
3. The encoders' content adversarial target is 0.5 for both domains; D_content treats B as real.
4. The KL of the attributes is a sum (times 0.01), the content regulariser a mean (times 0.01).
5. The Gaussian noise (sigma 1) sits inside E_c's shared block: it is added to the contents of
   the real images, of the translations when they are encoded again, and in the content-only
   iterations (drawn from the global generator, which the trainer seeds and checkpoints).
6. The second cross translation re-samples the attribute codes of the translations; the latent
   regression uses mu only. The same z_r1 feeds G_A and G_B.
7. With mode seeking, D_A2 and D_B2 take a second full loss (the real term counted twice), and
   the logged d_a2 / d_b2 are the sums.
8. The ReLUINSConvTranspose2d blocks normalise with a LayerNorm (F.layer_norm over C, H, W, eps
   inside the square root), not an instance norm.
9. D_content's output is flattened and compared with one target per image: it works only where
   its map is 1×1, i.e. a 212-240 crop (216, official); at 256 (a 2×2 map) current PyTorch
   refuses the loss. Here the loss is the mean BCE over the map, the same at 1×1, and a PatchGAN
   content discriminator elsewhere (the demo's 3×3); sizes whose map would be empty are refused
   when the method is built, naming the sizes that work.

Deliberate deviations, each with its reason:
- The official update backpropagates the G-alone loss through the forward graph after E_c, E_a
  and G have stepped on the EG loss; torch >= 1.5 refuses ("modified by an inplace operation",
  DRIT issue #62). Here both gradients are taken at the parameters the forward pass used (the EG
  loss by backward, the G-alone loss by autograd.grad, before any step), then the steps run in
  the official order: E_c, E_a, G on the EG gradients, then E_c, G on the G-alone ones (two Adam
  steps per full iteration for E_c and G). These are the gradients of the losses the official code
  defines; under torch 0.4 its second backward reused the stepped weights inside the backward
  formulas of the saved convolutions (an in-place change of .data went undetected), which mixed
  the two parameter states (measured: about 1e-3 relative at the first iteration).
- The discriminators run frozen inside the encoder/generator losses, and E_c runs without
  gradients in content-only iterations (the official code computes gradients there and discards
  them: exact equivalence). D_A2(real) runs once and its loss counts twice (the same gradient).
- Batches arranged for speed, the same values up to rounding (every network here treats each
  image on its own): each discriminator judges its real and fake inputs in one call, E_c's
  shared block runs once over both domains (noise still drawn for a, then b), and G decodes the
  translations with encoded attributes and those with random ones in two calls per domain
  instead of one (so the EG backward and the G-alone backward each go through only the half of
  the batch their loss uses).
- The trainer's stream gives only full batches, so the official skip of a short last batch never
  applies; set ``iterations_per_epoch`` to ceil(max(|A|, |B|) / batch_size) of your data (the
  default, 682, is cat2dog's 1364 dogs / 2, the set the official README describes).
- fp16 is refused: E_c and G step twice per iteration, which torch.amp.GradScaler does not allow
  between two updates (bf16 and fp32 run).
- Not implemented: ``dis_scale`` 1 (the single-scale Dis), ``--dis_spectral_norm`` (off by
  default). ``translate`` with a reference uses the attribute mean (deterministic; the official
  test_transfer.py samples it: ``sample_reference=True``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import re
import warnings
from typing import Any

import torch

from ..losses import (
    kl_standard_normal,
    l1,
    latent_regression,
    mode_seeking,
    reparameterize,
    sigmoid_bce_loss,
)
from ..nn import (
    AttributeEncoders,
    AttributeGenerator,
    ContentDiscriminator,
    MultiScalePatchDiscriminator,
    SharedContentEncoder,
    in_one_batch,
    init_weights,
)
from ..nn.init import INITS
from ..optim import linear_decay_by_epoch, lr_scheduler
from .base import Method, MethodConfig, RunContext
from .config_checks import FieldChecks
from .roles import NetworkRoles

LR_POLICIES = ("lambda", "step")
LAMBDA_REC = 10.0  # self and cross-cycle reconstruction
LAMBDA_LATENT = 10.0  # latent regression
LAMBDA_KL = 0.01  # KL of the attributes and L2 of the contents
MS_EPS = 1e-5


@dataclasses.dataclass
class DRITConfig(MethodConfig):
    """Defaults = options.py and model.py of the official implementation."""

    # networks (the official code hard-codes the widths: dim 64, content 4·dim = 256)
    concat: bool = True  # --concat 1: concatenated attributes; False: MisINS ("misins")
    nz: int = 8  # attribute code length
    input_dim_a: int = 3
    input_dim_b: int = 3
    dim: int = 64  # first width of the content and attribute encoders
    n_res: int = 3  # per-domain residual blocks of E_c and G_concat (MisINS: n_res + 1 blocks)
    mlp_dim: int = 256  # hidden width of the MisINS generator's MLP
    dis_scale: int = 3  # scales of the four image discriminators
    dis_dim: int = 64
    dis_n_layer: int = 4
    content_dis_dim: int = 256
    content_dis_n_down: int = 3  # 7x7 stride-2 convs of D_content
    mode_seeking: bool = True  # DRIT++ (official --no_ms turns it off)
    init: str = "official"  # N(0, 0.02) Conv* weights only; or one of nn.init's INITS
    # data: resize to 256 (bicubic), random crop 216, flip (the "drit" transform)
    image_size: int = 216
    batch_size: int = 2
    n_encoded: int = 1  # the official half_size: encoded images of each batch (the rest: D2)
    # optimisation
    d_iter: int = 3
    lr: float = 1e-4
    lr_dcontent: float = 4e-5  # lr / 2.5
    beta1: float = 0.5
    beta2: float = 0.999
    weight_decay: float = 1e-4
    content_grad_clip: float = 5.0
    lr_policy: str = "lambda"  # lambda | step (StepLR(n_ep_decay, 0.1) per epoch)
    n_ep: int = 1200
    n_ep_decay: int = 600  # -1: no decay
    iterations_per_epoch: int = 682  # ceil(max(|A|, |B|) / batch_size); 682: cat2dog
    max_iter: int = 818_400  # n_ep · iterations_per_epoch


def learning_rate_factor(step: int, iterations_per_epoch: int, policy: str, n_ep: int,
                         n_ep_decay: int) -> float:
    """The official scheduler's factor for iteration `step` (epoch = step // iterations_per_epoch):
    "lambda" 1 − max(0, epoch − n_ep_decay) / (n_ep − n_ep_decay + 1), "step" 0.1^(epoch //
    n_ep_decay); 1 with n_ep_decay = −1 (train.py then never steps the schedulers)."""
    if n_ep_decay < 0:
        return 1.0
    if policy == "step":
        return 0.1 ** ((step // iterations_per_epoch) // n_ep_decay)
    return linear_decay_by_epoch(step, iterations_per_epoch, n_ep_decay, n_ep - n_ep_decay)


def content_only(step: int, iterations_per_epoch: int, d_iter: int) -> bool:
    """Whether iteration `step` only updates D_content (train.py: (it + 1) % d_iter != 0 and
    it < len(loader) - 2, with it the iteration within the epoch)."""
    it = step % iterations_per_epoch
    return (it + 1) % d_iter != 0 and it < iterations_per_epoch - 2


def content_discriminator_sizes(n_down: int, limit: int = 4096) -> tuple[int, int, int]:
    """(smallest image side, first and last side with a 1×1 map) among multiples of 4 up to
    `limit`, for D_content with n_down stride-2 convs (0 where none)."""
    sizes = [s for s in range(4, limit + 1, 4) if ContentDiscriminator.output_size(s // 4, n_down)]
    ones = [s for s in sizes if ContentDiscriminator.output_size(s // 4, n_down) == 1]
    return (sizes[0] if sizes else 0, ones[0] if ones else 0, ones[-1] if ones else 0)


def retainable_compiled_graphs() -> contextlib.AbstractContextManager:
    """Scope in which torch.compile'd graphs are compiled so that their backward can run with
    retain_graph=True (the EG backward, before the G-alone gradient): AOTAutograd's donated
    buffers, which the first backward would free, are off (compile_networks, the compiled
    providers of ``i2i-fast bench method``)."""
    import torch._functorch.config as functorch_config

    if hasattr(functorch_config, "donated_buffer"):
        return functorch_config.patch(donated_buffer=False)
    return contextlib.nullcontext()


class DRIT(Method):
    name = "drit"
    Config = DRITConfig
    data_kind = "unpaired"
    loss_names = ("d_a", "d_a2", "d_b", "d_b2", "d_content", "g_total", "g_adv_a", "g_adv_b",
                  "g_adv_content_a", "g_adv_content_b", "g_self_a", "g_self_b", "g_cross_a",
                  "g_cross_b", "g_kl_zc_a", "g_kl_zc_b", "g_kl_za_a", "g_kl_za_b",
                  "g_alone_total", "g_adv2_a", "g_adv2_b", "g_latent_a", "g_latent_b",
                  "g_ms_ab", "g_ms_ba")
    configs = {
        # README, Yosemite summer <-> winter: the defaults (--concat 1)
        "yosemite": {},
        # README, portrait: --concat 0, the MisINS generator and the deterministic E_a
        "misins": {"concat": False},
        # The CPU demo: the official structure at 64x64 with narrower networks (widths /4,
        # 2 residual blocks, 2-scale 3-layer discriminators, one stride-2 conv in D_content,
        # whose map is 3x3 there), d_iter 3, lr 2e-4; synthetic:shapes has 10,000 images per
        # domain, 5,000 iterations per epoch of batch 2: the learning rate stays constant.
        "demo": {"dim": 16, "n_res": 2, "mlp_dim": 64, "dis_dim": 16, "dis_n_layer": 3,
                 "dis_scale": 2, "content_dis_dim": 64, "content_dis_n_down": 1,
                 "image_size": 64, "lr": 2e-4, "lr_dcontent": 8e-5,
                 "iterations_per_epoch": 5000, "max_iter": 1500},
        # The smallest networks of the official structure (48x48: D_content's map is 1x1 as in
        # the official configuration), every iteration a full one, for tests and check_method.
        # He init: with the official N(0, 0.02) init, networks 4 channels wide are almost blind
        # to their input at the start (two noise references give attribute means 5e-7 apart,
        # the same images to 1e-7), which check_method's translate checks would rightly flag.
        "tiny": {"dim": 4, "n_res": 1, "mlp_dim": 8, "dis_dim": 4, "dis_n_layer": 2,
                 "dis_scale": 2, "content_dis_dim": 8, "content_dis_n_down": 1,
                 "image_size": 48, "d_iter": 1, "iterations_per_epoch": 10, "max_iter": 10,
                 "init": "kaiming"},
    }

    reference_guided = True
    demo_config = "demo"
    demo_data = "synthetic:shapes"
    data_transform = "drit"  # resize to 256/216 of the crop (bicubic), random crop, flip

    @classmethod
    def check_config(cls, cfg: DRITConfig) -> None:
        check = FieldChecks("drit", cfg)
        fail = check.fail
        check.ints("nz", "input_dim_a", "input_dim_b", "dim", "n_res", "mlp_dim", "dis_dim",
                   "dis_n_layer", "content_dis_dim", "n_encoded", "d_iter", "n_ep",
                   "iterations_per_epoch")
        if cfg.content_dis_n_down < 0:
            fail("content_dis_n_down", "an int >= 0", cfg.content_dis_n_down)
        if cfg.dis_scale < 2:
            fail("dis_scale", "an int >= 2 (the official single-scale Dis of dis_scale 1 is not "
                 "implemented)", cfg.dis_scale)
        if cfg.batch_size <= cfg.n_encoded:
            fail("batch_size", f"more than n_encoded ({cfg.n_encoded}): the images after the "
                 f"encoded ones are the real images of D_A2 and D_B2", cfg.batch_size)
        if cfg.init not in ("official", *INITS):
            fail("init", f"'official' or one of {INITS}", cfg.init)
        if cfg.lr_policy not in LR_POLICIES:
            fail("lr_policy", f"one of {LR_POLICIES}", cfg.lr_policy)
        if not -1 <= cfg.n_ep_decay <= cfg.n_ep or (cfg.lr_policy == "step"
                                                    and cfg.n_ep_decay == 0):
            fail("n_ep_decay", f"-1 (no decay) or an epoch in [{int(cfg.lr_policy == 'step')}, "
                 f"n_ep = {cfg.n_ep}]", cfg.n_ep_decay)
        check.at_least("lr", "lr_dcontent", "weight_decay", "content_grad_clip")
        size = cfg.image_size
        if size % 4 or size < 16:
            fail("image_size", "a multiple of 4 (the generator's two upsamplings), >= 16 (the "
                 "attribute encoders' four halvings)", size)
        smallest_scale = -(-size // 2 ** (cfg.dis_scale - 1))
        if smallest_scale < 2 ** cfg.dis_n_layer:
            fail("image_size", f">= {2 ** (cfg.dis_n_layer + cfg.dis_scale - 1)} for "
                 f"{cfg.dis_scale} discriminator scales of {cfg.dis_n_layer} stride-2 layers",
                 size)
        if ContentDiscriminator.output_size(size // 4, cfg.content_dis_n_down) < 1:
            low, one_from, one_to = content_discriminator_sizes(cfg.content_dis_n_down)
            fail("image_size", f">= {low} for a content discriminator with "
                 f"content_dis_n_down = {cfg.content_dis_n_down} (its 1x1 map, as the "
                 f"official 216 crop gives with 3, comes with image sizes {one_from}-{one_to}; "
                 f"larger ones give a map whose BCE is averaged); a smaller image needs a "
                 f"smaller content_dis_n_down", size)

    def __init__(self, config: DRITConfig, context: RunContext | None = None):
        super().__init__(config, context)
        cfg = config
        self.check_config(cfg)
        if self.context.precision == "fp16":
            raise ValueError("drit: precision: fp16 is not supported (E_c and G step twice per "
                             "iteration, which torch.amp.GradScaler refuses between two "
                             "updates); use bf16 or fp32")
        for name, channels in (("dis_a", cfg.input_dim_a), ("dis_a2", cfg.input_dim_a),
                               ("dis_b", cfg.input_dim_b), ("dis_b2", cfg.input_dim_b)):
            self.add_module(name, MultiScalePatchDiscriminator(
                channels, cfg.dis_dim, cfg.dis_n_layer, cfg.dis_scale, "none", "lrelu",
                "reflect", negative_slope=0.01))
        self.enc_c = SharedContentEncoder(cfg.input_dim_a, cfg.input_dim_b, cfg.dim, cfg.n_res)
        content_dim = self.enc_c.out_channels
        self.dis_content = ContentDiscriminator(content_dim, cfg.content_dis_dim,
                                                cfg.content_dis_n_down)
        self.enc_a = AttributeEncoders(cfg.input_dim_a, cfg.input_dim_b, cfg.nz, cfg.dim,
                                       variational=cfg.concat)
        self.gen = AttributeGenerator(cfg.input_dim_a, cfg.input_dim_b, content_dim, cfg.nz,
                                      cfg.n_res, cfg.concat, cfg.mlp_dim)
        for name in self.network_names:
            if cfg.init == "official":  # gaussian_weights_init: the Conv* weights only
                init_weights(getattr(self, name), "gaussian", linear=False, zero_bias=False)
            else:
                init_weights(getattr(self, name), cfg.init)
        self.context.prepare(self)

        ctx, betas = self.context, (cfg.beta1, cfg.beta2)
        factor = functools.partial(learning_rate_factor,
                                   iterations_per_epoch=cfg.iterations_per_epoch,
                                   policy=cfg.lr_policy, n_ep=cfg.n_ep, n_ep_decay=cfg.n_ep_decay)
        for name in self.network_names:
            lr = cfg.lr_dcontent if name == "dis_content" else cfg.lr
            optimizer = ctx.adam(getattr(self, name).parameters(), lr, betas, cfg.weight_decay)
            self.add_optimizer(name, optimizer, lr_scheduler(optimizer, factor))
        self.declare_networks(NetworkRoles(trained=self.network_names,
                                           critics=("dis_a", "dis_a2", "dis_b", "dis_b2",
                                                    "dis_content")))

    network_names = ("dis_a", "dis_a2", "dis_b", "dis_b2", "dis_content", "enc_c", "enc_a", "gen")

    def _random_attributes(self, n: int, generator: torch.Generator | None = None
                           ) -> torch.Tensor:
        return torch.randn(n, self.config.nz, device=self.context.device, generator=generator)

    def _sampled(self, code: tuple[torch.Tensor, torch.Tensor | None]) -> torch.Tensor:
        """The attribute code of an encoder output: mu + exp(logvar / 2)·eps (concat), z."""
        mu, logvar = code
        return mu if logvar is None else reparameterize(mu, logvar)

    # ----- training -----

    @property
    def iterations_per_cycle(self) -> int:
        """d_iter: d_iter − 1 content-only iterations and a full one (benchmarks time cycles)."""
        return self.config.d_iter

    def content_only(self, step: int) -> bool:
        """Whether iteration `step` is a D_content-only iteration (the d_iter schedule)."""
        return content_only(step, self.config.iterations_per_epoch, self.config.d_iter)

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        cfg, ctx = self.config, self.context
        x_a, x_b = ctx.to_device(batch["a"]), ctx.to_device(batch["b"])
        if x_a.shape[0] != x_b.shape[0] or x_a.shape[0] <= cfg.n_encoded:
            raise ValueError(f"drit: train_step: batch: expected as many images of a as of b, "
                             f"more than n_encoded ({cfg.n_encoded}), got {x_a.shape[0]} and "
                             f"{x_b.shape[0]}")
        if self.content_only(step):
            with torch.no_grad(), ctx.autocast():  # E_c's gradient is never used here
                c_a, c_b = self.nets.enc_c.encode(x_a[:cfg.n_encoded], x_b[:cfg.n_encoded])
            losses = {"d_content": self._content_dis_update(c_a, c_b)}
        else:
            with retainable_compiled_graphs():
                f = self._forward(x_a, x_b)
                losses = self._dis_update(f)
                losses.update(self._eg_update(f))
        with warnings.catch_warnings():
            # In a content-only iteration seven optimizers do not step; their schedules are
            # functions of the iteration, so stepping them skips nothing (PyTorch's warning
            # about a scheduler stepped before its optimizer does not apply).
            warnings.filterwarnings("ignore", re.escape("Detected call of `lr_scheduler.step()`"
                                                        " before"), UserWarning)
            for scheduler in self._schedulers.values():
                scheduler.step()
        return losses

    def _forward(self, x_a: torch.Tensor, x_b: torch.Tensor) -> dict[str, Any]:
        """model.py forward(): every image and code of one full iteration (random draws in the
        official order: E_c's noise a then b, eps_a, eps_b, z_r1, z_r2, again for the fakes)."""
        cfg, ctx, nets = self.config, self.context, self.nets
        n = cfg.n_encoded
        f: dict[str, Any] = {"a": x_a[:n], "a_random": x_a[n:], "b": x_b[:n],
                             "b_random": x_b[n:]}
        with ctx.autocast():
            f["c_a"], f["c_b"] = nets.enc_c.encode(f["a"], f["b"])
            f["code_a"], f["code_b"] = nets.enc_a.encode(f["a"], f["b"])
            z_a, z_b = self._sampled(f["code_a"]), self._sampled(f["code_b"])
            f["z_a"], f["z_b"] = z_a, z_b
            z_random = [self._random_attributes(n) for _ in range(2 if cfg.mode_seeking else 1)]
            f["z_random"] = z_random
            # The official forward decodes these in one batch per domain. Here the
            # translations with the encoded attributes (the EG loss's) and those with random
            # ones (the G-alone loss's) are two calls: the same images (G treats every image on
            # its own), but each of the two backward passes goes through half the batch.
            decode_a, decode_b = nets.gen.decode_a, nets.gen.decode_b
            f["fake_a"], f["fake_aa"] = in_one_batch(decode_a, (f["c_b"], z_a), (f["c_a"], z_a))
            f["fake_b"], f["fake_bb"] = in_one_batch(decode_b, (f["c_a"], z_b), (f["c_b"], z_b))
            f["fake_a_random"] = in_one_batch(decode_a, *((f["c_b"], z) for z in z_random))
            f["fake_b_random"] = in_one_batch(decode_b, *((f["c_a"], z) for z in z_random))
            # the second cross translation: E_c(fake_A) is B's content, E_c(fake_B) A's
            c_recon_b, c_recon_a = nets.enc_c.encode(f["fake_a"], f["fake_b"])
            code_recon_a, code_recon_b = nets.enc_a.encode(f["fake_a"], f["fake_b"])
            f["fake_a_recon"] = nets.gen.decode_a(c_recon_a, self._sampled(code_recon_a))
            f["fake_b_recon"] = nets.gen.decode_b(c_recon_b, self._sampled(code_recon_b))
            # latent regression: the mean of the attributes of the first random translations
            (f["mu2_a"], _), (f["mu2_b"], _) = nets.enc_a.encode(f["fake_a_random"][0],
                                                                  f["fake_b_random"][0])
        return f

    def _content_dis_update(self, c_a: torch.Tensor, c_b: torch.Tensor) -> torch.Tensor:
        """backward_contentD: B's contents are the real ones; the gradient norm clipped."""
        optimizer = self._optimizers["dis_content"]
        optimizer.zero_grad(set_to_none=True)
        with self.context.autocast():
            out_b, out_a = in_one_batch(self.nets.dis_content, c_b.detach(), c_a.detach())
            loss = sigmoid_bce_loss(out_b, 1.0) + sigmoid_bce_loss(out_a, 0.0)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.dis_content.parameters(), self.config.content_grad_clip)
        optimizer.step()
        return loss.detach()

    def _dis_update(self, f: dict[str, Any]) -> dict[str, torch.Tensor]:
        """update_D: D_A, D_A2, D_B, D_B2 on detached translations, then D_content."""
        nets, losses = self.nets, {}
        for name, real, fakes in (("dis_a", f["a"], [f["fake_a"]]),
                                  ("dis_a2", f["a_random"], f["fake_a_random"]),
                                  ("dis_b", f["b"], [f["fake_b"]]),
                                  ("dis_b2", f["b_random"], f["fake_b_random"])):
            optimizer = self._optimizers[name]
            optimizer.zero_grad(set_to_none=True)
            with self.context.autocast():
                # one loss BCE(D(real), 1) + BCE(D(fake), 0) per fake: the real term per fake;
                # the real and the fakes through D in one call
                out_real, *out_fakes = in_one_batch(nets[name], real,
                                                    *(fake.detach() for fake in fakes))
                loss = len(fakes) * sigmoid_bce_loss(out_real, 1.0)
                for out_fake in out_fakes:
                    loss = loss + sigmoid_bce_loss(out_fake, 0.0)
            loss.backward()
            optimizer.step()
            losses[f"d{name[3:]}"] = loss.detach()
        losses["d_content"] = self._content_dis_update(f["c_a"], f["c_b"])
        return losses

    def _eg_losses(self, f: dict[str, Any]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """backward_EG's terms (the discriminators frozen) and their official sum."""
        critics, a, b = self.critics, f["a"], f["b"]
        content_a, content_b = in_one_batch(critics.dis_content, f["c_a"], f["c_b"])
        t = {"g_adv_content_a": sigmoid_bce_loss(content_a, 0.5),
             "g_adv_content_b": sigmoid_bce_loss(content_b, 0.5),
             "g_adv_a": sigmoid_bce_loss(critics.dis_a(f["fake_a"]), 1.0),
             "g_adv_b": sigmoid_bce_loss(critics.dis_b(f["fake_b"]), 1.0)}
        for domain in ("a", "b"):
            mu, logvar = f[f"code_{domain}"]
            t[f"g_kl_za_{domain}"] = LAMBDA_KL * (
                kl_standard_normal(mu, logvar, "sum") if logvar is not None
                else torch.mean(f[f"z_{domain}"] ** 2))
            t[f"g_kl_zc_{domain}"] = LAMBDA_KL * torch.mean(f[f"c_{domain}"] ** 2)
        t["g_cross_a"] = LAMBDA_REC * l1(f["fake_a_recon"], a)
        t["g_cross_b"] = LAMBDA_REC * l1(f["fake_b_recon"], b)
        t["g_self_a"] = LAMBDA_REC * l1(f["fake_aa"], a)
        t["g_self_b"] = LAMBDA_REC * l1(f["fake_bb"], b)
        order = ("g_adv_a", "g_adv_b", "g_adv_content_a", "g_adv_content_b", "g_self_a",
                 "g_self_b", "g_cross_a", "g_cross_b", "g_kl_zc_a", "g_kl_zc_b", "g_kl_za_a",
                 "g_kl_za_b")
        return t, functools.reduce(torch.add, (t[k] for k in order))

    def _g_alone_losses(self, f: dict[str, Any]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """backward_G_alone's terms (D_A2, D_B2 frozen) and their official sum."""
        critics, z_random = self.critics, f["z_random"]
        adv_a = [sigmoid_bce_loss(out, 1.0)
                 for out in in_one_batch(critics.dis_a2, *f["fake_a_random"])]
        adv_b = [sigmoid_bce_loss(out, 1.0)
                 for out in in_one_batch(critics.dis_b2, *f["fake_b_random"])]
        t = {"g_latent_a": LAMBDA_LATENT * latent_regression(f["mu2_a"], z_random[0]),
             "g_latent_b": LAMBDA_LATENT * latent_regression(f["mu2_b"], z_random[0])}
        total = t["g_latent_a"] + t["g_latent_b"] + adv_a[0] + adv_b[0]
        t["g_adv2_a"], t["g_adv2_b"] = adv_a[0], adv_b[0]
        if self.config.mode_seeking:
            total = total + (adv_a[1] + adv_b[1])
            t["g_adv2_a"], t["g_adv2_b"] = adv_a[0] + adv_a[1], adv_b[0] + adv_b[1]
            t["g_ms_ab"] = mode_seeking(*f["fake_b_random"], *z_random, eps=MS_EPS)
            t["g_ms_ba"] = mode_seeking(*f["fake_a_random"], *z_random, eps=MS_EPS)
            total = total + (t["g_ms_ab"] + t["g_ms_ba"])
        return t, total

    def _eg_update(self, f: dict[str, Any]) -> dict[str, torch.Tensor]:
        """update_EG with both gradients taken before any step (see the module docstring)."""
        optimizers = self._optimizers
        with self.frozen_critics(), self.context.autocast():
            eg, eg_total = self._eg_losses(f)
            alone, alone_total = self._g_alone_losses(f)
        for name in ("enc_c", "enc_a", "gen"):
            optimizers[name].zero_grad(set_to_none=True)
        eg_total.backward(retain_graph=True)
        alone_params = [*self.enc_c.parameters(), *self.gen.parameters()]
        alone_grads = self._averaged(torch.autograd.grad(alone_total, alone_params))
        for name in ("enc_c", "enc_a", "gen"):
            optimizers[name].step()
        for param, grad in zip(alone_params, alone_grads):
            param.grad = grad
        optimizers["enc_c"].step()
        optimizers["gen"].step()
        losses = {k: v.detach() for k, v in {**eg, **alone}.items()}
        losses["g_total"], losses["g_alone_total"] = eg_total.detach(), alone_total.detach()
        return losses

    def _averaged(self, grads: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """Gradients taken by autograd.grad (not seen by DistributedDataParallel), averaged over
        the processes like DDP averages those of backward."""
        if not self.context.distributed:
            return grads
        import torch.distributed as dist
        from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

        flat = _flatten_dense_tensors(grads)
        dist.all_reduce(flat)
        flat /= self.context.world_size
        return tuple(_unflatten_dense_tensors(flat, grads))

    # ----- inference -----

    def _direction(self, target_domain: Any) -> tuple[Any, Any, Any]:
        """(content encoder of the source, attribute encoder and generator of the target)."""
        if self.domains.single(target_domain) == 1:  # A -> B
            return self.enc_c.encode_a, self.enc_a.encode_b, self.gen.decode_b
        return self.enc_c.encode_b, self.enc_a.encode_a, self.gen.decode_a

    def translate(self, x: torch.Tensor, *, n_styles: int = 1,
                  reference: torch.Tensor | None = None, target_domain: Any = None,
                  generator: torch.Generator | None = None,
                  sample_reference: bool = False) -> torch.Tensor:
        """x (N, 3, H, W), H and W multiples of 4 → (N, K, 3, H, W) in target_domain ("b"/1, the
        default: A→B; "a"/0: B→A): K random attribute codes (N(0, I), test.py), or K = 1 with
        the attributes of `reference` (one image for all inputs, or one per input; the mean
        code, or with sample_reference a sample mu + sigma·eps from `generator` as
        test_transfer.py draws it)."""
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"drit: translate: x: expected H and W multiples of 4 (the "
                             f"generator upsamples the content 4x), got {tuple(x.shape)}")
        encode_content, encode_attributes, decode = self._direction(target_domain)
        ctx = self.context
        x = ctx.to_device(x)
        n = x.shape[0]
        with self.evaluating(), ctx.autocast():
            content = encode_content(x)
            if reference is not None:
                mu, logvar = encode_attributes(ctx.to_device(reference))
                z = mu
                if sample_reference and logvar is not None:
                    z = reparameterize(mu, logvar, generator=generator)
                return decode(content, z.expand(n, -1)).float().unsqueeze(1)
            z = self._random_attributes(n * n_styles, generator)
            out = decode(content.repeat_interleave(n_styles, dim=0), z).float()
        return out.reshape(n, n_styles, *out.shape[1:])

    def sample_visuals(self, batch: dict[str, torch.Tensor],
                       generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """model.py assemble_outputs, for every pair of the batch (eval mode, mean attributes):
        input, translation with the other's attributes, with random ones, self-reconstruction,
        cross-cycle reconstruction; both domains."""
        ctx = self.context
        x_a, x_b = ctx.to_device(batch["a"]), ctx.to_device(batch["b"])
        n = min(x_a.shape[0], x_b.shape[0])
        x_a, x_b = x_a[:n], x_b[:n]
        with self.evaluating(), ctx.autocast():
            c_a, c_b = self.enc_c.encode(x_a, x_b)
            (z_a, _), (z_b, _) = self.enc_a.encode(x_a, x_b)
            z_random = self._random_attributes(n, generator)
            x_ab, x_ba = self.gen.decode_b(c_a, z_b), self.gen.decode_a(c_b, z_a)
            c_ba, c_ab = self.enc_c.encode(x_ba, x_ab)  # the contents of b and of a
            (z_ba, _), (z_ab, _) = self.enc_a.encode(x_ba, x_ab)
            visuals = {
                "x_a": x_a, "x_ab": x_ab, "x_ab_random": self.gen.decode_b(c_a, z_random),
                "x_aa": self.gen.decode_a(c_a, z_a), "x_aba": self.gen.decode_a(c_ab, z_ba),
                "x_b": x_b, "x_ba": x_ba, "x_ba_random": self.gen.decode_a(c_b, z_random),
                "x_bb": self.gen.decode_b(c_b, z_b), "x_bab": self.gen.decode_b(c_ba, z_ab),
            }
        return {k: v.float() for k, v in visuals.items()}
