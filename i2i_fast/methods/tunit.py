"""TUNIT: Rethinking the Truly Unsupervised Image-to-Image Translation (Baek, Choi, Uh, Yoo, Shim,
ICCV 2021), as the official implementation (clovaai/tunit: main.py, train/train_unsupervised.py,
train/train_semisupervised.py, models/, tools/ops.py, datasets/datasetgetter.py) defines it.

Training needs no domain labels: the images come as pairs (an image, a strongly augmented version
of it; data kind "unlabelled", see i2i_fast.data.augment). Networks (official names in brackets):

- ``guiding_network`` [C]: VGG11 with BatchNorm, global pooling, a cluster head (K logits, trained
  by IIC) and a style head (style_dim, trained by MoCo; never normalised). Its pseudo-labels pick
  the discriminator's head; its style codes drive the generator. ``guiding_network_ema`` [C_EMA]
  starts as a copy and follows it (EMA 0.999 every iteration); it makes the MoCo keys.
- ``generator`` [G]: MUNIT-like: content encoder (7x7 conv, log2(S/16) stride-2 convs, 2 ResBlocks,
  instance norm) to a 16x16 content code; decoder with AdaIN in its 2 ResBlocks *and* in its
  upsampling convs, tanh; an MLP from the style code to the AdaIN parameters ([bias, weight] per
  layer, no +1). Both ResBlock kinds add 0.1 x their residual. ``generator_ema`` [G_EMA].
- ``discriminator`` [D]: StarGAN v2's multi-head design with TUNIT's trunk: 3x3 conv, then per
  stage two pre-activation blocks whose only nonlinearity is FRN + TLU (the second doubles the
  width up to 1024 and halves the resolution) down to 4x4, LReLU, 4x4 conv, LReLU, 1x1 conv to K
  heads; the head of each image's (pseudo-)label is used.

One iteration (x = the batch's images, x_tf = their augmented versions, perm a random permutation
of the batch, x_ref = x[perm]):

1. C: L = MoCo(C(x), C_EMA(x_tf); queue; tau 0.07) + 5 IIC(softmax C(x), softmax C(x_tf)), times
   0.1 from iteration ``separated`` on; Adam step of C (lr 1e-4, weight decay 1e-3).
2. From ``separated`` on, the GAN: y = argmax C(x) (after step 1), s = C(x), x_fake =
   G.dec(G.enc(x), s[perm]), x_rec = G.dec(G.enc(x), s).
   D: hinge(D(x_ref)[y[perm]], real) + hinge(D(x_fake)[y[perm]], fake) + 10 R1, R1 = Σ(∂ΣD(x_ref)
   /∂x_ref)² / N on the reals (no 0.5); RMSprop step of D (lr 1e-4, alpha 0.99, wd 1e-4).
   G and C: −mean D(x_fake)[y[perm]] − mean D(x_rec)[y] + 0.1 |x_rec − x|₁ + 0.01 MoCo(C(x_fake),
   C_EMA(x_ref); queue); an Adam step of C and an RMSprop step of G.
3. The keys C_EMA(x_tf) of step 1 join the queue (FIFO, the last 1024 kept). The queue is filled
   before the first iteration with one batch of keys, and (official quirk, ``queue_restarts``)
   every epoch starts again from those first keys: the official training function receives the
   queue at each epoch and its updates are lost when it returns.
4. C_EMA ← EMA(C); G_EMA ← G at ``ema_start``, then EMA(G). At each epoch end (every
   ``epoch_length`` iterations) the EMA networks take the networks' buffers (BatchNorm statistics).

The schedule is a function of the iteration (``iteration_kind``), so a resumed run continues it
exactly. The official counts epochs of 1000 iterations: separated = 65 epochs = iteration 65000,
ema_start 66000, 200 epochs = 200000 iterations. The queue, the EMA networks and the cluster style
statistics are module state (saved and resumed).

Semi-supervised mode (``p_semi`` in (0, 1); the official GAN_SEMI): each epoch starts with
int(epoch_length · p_semi) supervised iterations (before ``unsup_start``: only supervised
iterations, max(int(epoch_length · p_semi), 100) per epoch) on the labelled images of the batch
("sup_*" items), whose C loss is MoCo + 5 (CE(C(x), y) + CE(C(x_tf), y)) and whose GAN uses the
labels; the other iterations are the unsupervised ones with the C loss always times 0.1 and the
pseudo-labels taken from C *before* its update (official quirk). p_semi = 1 (GAN_SUP) is refused.

Quirks reproduced: the 0.1 residual scale; AdaIN in the upsampling convs; raw style vectors in
MoCo; the adversarial loss on the reconstruction too; C updated by both losses; the D blocks'
1/√2 is float32's rsqrt(2) = 0.70710677 in every dtype; C's BatchNorm statistics are updated once
per official trunk pass (``GuidingNetwork`` stat_updates) and C_EMA runs in training mode (batch
statistics, its own running statistics updated); the cluster head gets a zero gradient and an Adam
step in the GAN's C update (torch 1.1, the official version, zeroed gradients instead of dropping
them, so Adam stepped it with its weight decay and momentum).

Exact equivalences used for speed (same updates): C's trunk runs once for both heads of x and for
x[perm] (the official code runs it up to four times on the same batch; BatchNorm statistics do not
depend on the order); the generator and C forward of the GAN is computed once, before the D
step, which changes neither (the official code computes x_fake twice); x_fake and x_rec are
decoded in one batch, and D judges them in one batch (every layer is per sample); D runs frozen in
the G step (the official code computes its gradients and discards them).

Deviations: the AdaIN running statistics of the official decoder (updated, never read) are left
out; the queue is filled before the first iteration with the keys of the first batch (the official
code uses a separately drawn batch), so at that iteration each positive key is also among the
negatives; EMA is ``lerp`` (rounding only); G_EMA starts as a copy of G (the official starts it from
its own random initialisation, overwritten at ema_start; translate uses G until then).

Translation: by a reference image (its style from C_EMA), or by a cluster's style (target_domain =
a cluster index): column 0 is the cluster's mean style, further columns draws from a normal
distribution with the cluster's per-dimension mean and variance. The official evaluation takes
the mean of C_EMA's styles of the images C assigns to the cluster (eval mode, a held-out set):
``estimate_cluster_styles(images)`` does exactly that; during training the same statistics are
kept from the training batches (C_EMA's styles of x grouped by the iteration's labels, in
training mode, exponentially weighted with ``style_stats_decay``), so a trained checkpoint can
translate to a cluster without data.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import warnings
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .. import ops
from ..losses import KeyQueue, iic_loss, l1, moco_loss
from ..nn import ClassStyleStatistics, ContentStyleGenerator, GuidingNetwork, init_weights
from ..nn.multi_domain import MultiHeadDiscriminator, frn_stage, select_domain
from ..optim import MovingAverage, copy_buffers
from . import sizes
from .base import Method, MethodConfig, RunContext
from .config_checks import FieldChecks
from .roles import NetworkRoles

IIC_WEIGHT = 5.0  # of the IIC (or, supervised, the cross-entropy) term in C's loss
SEPARATED_SCALE = 0.1  # C's loss from `separated` on (and in semi-supervised unlabelled steps)
SUPERVISED_EPOCH_MIN = 100  # iterations of the epochs before unsup_start (semi-supervised)


@dataclasses.dataclass
class TUNITConfig(MethodConfig):
    """Defaults = main.py of the official implementation (animal_faces, unsupervised)."""

    # networks
    image_size: int = 128
    num_clusters: int = 10  # K (output_k)
    style_dim: int = 128  # sty_dim
    guide_dim: int = 64  # first width of the guiding network's VGG11 (official 64)
    gen_dim: int | None = None  # generator's first width; None: 64 below 256, else 32 (official)
    gen_res_blocks: int = 2
    mlp_dim: int = 256
    dis_dim: int | None = None  # discriminator's first width; None: 64 below 256, else 32
    dis_max_dim: int = 1024
    # losses
    w_gp: float = 10.0  # R1
    w_rec: float = 0.1
    w_adv: float = 1.0
    w_vec: float = 0.01  # the generator's MoCo style term
    moco_temperature: float = 0.07
    # IIC's entropy weight λ (the official calc_iic_loss's lamb, 1): see i2i_fast.losses.iic_loss
    iic_entropy_weight: float = 1.0
    # IIC over-clustering (IIC's paper, not TUNIT): > 0 adds to C a second cluster head with this
    # many clusters, trained by IIC alongside the main head (same weight, unsupervised steps);
    # it shapes C's trunk only (pseudo-labels, evaluation and styles use the main head); 0: none
    overclusters: int = 0
    # the standard deviation of the cluster heads' initial weights (official N(0, 0.01)); see the
    # demo config for why it uses 0.1
    cluster_head_init_std: float = 0.01
    queue_size: int = 1024
    # official: the queue starts every epoch again from the keys it was filled with before the
    # first iteration (its updates are lost when each epoch's training function returns)
    queue_restarts: bool = True
    # the colour jitter of the pair augmentation (brightness, contrast, saturation, hue strengths;
    # official: torchvision ColorJitter(0.4, 0.4, 0.4, 0.125), see i2i_fast.data.augment)
    jitter_brightness: float = 0.4
    jitter_contrast: float = 0.4
    jitter_saturation: float = 0.4
    jitter_hue: float = 0.125
    # optimisation
    max_iter: int = 200_000  # epochs 200 x iters 1000
    batch_size: int = 32
    lr: float = 1e-4  # all three networks
    guide_lr: float | None = None  # C's Adam learning rate; None: lr (official)
    weight_decay: float = 1e-4  # RMSprop of G and D
    rmsprop_alpha: float = 0.99
    guide_weight_decay: float = 1e-3  # Adam of C, betas (0.9, 0.999)
    ema_beta: float = 0.999
    # schedule, in iterations (the official epochs x 1000)
    epoch_length: int = 1000  # iters: the EMA networks take the buffers at each epoch end
    separated: int = 65_000  # before it only the guiding network trains
    ema_start: int = 66_000  # G_EMA = G here, then averaged
    # semi-supervised mode
    p_semi: float = 0.0  # fraction of each domain's images with their labels (0: unsupervised)
    unsup_start: int = 0  # semi: iterations before it are all supervised
    # cluster style statistics kept during training (for translation to a cluster)
    style_stats_decay: float = 0.999


def _full(t: torch.Tensor) -> torch.Tensor:
    """t in float32 when autocast made it half precision (losses are computed in float32 or
    float64)."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def discriminator(cfg: TUNITConfig) -> MultiHeadDiscriminator:
    dim = cfg.dis_dim if cfg.dis_dim is not None else (64 if cfg.image_size < 256 else 32)
    return MultiHeadDiscriminator(cfg.image_size, cfg.num_clusters, cfg.dis_max_dim, dim,
                                  stage=frn_stage)


@dataclasses.dataclass(frozen=True)
class IterationKind:
    """What iteration `step` does (``TUNIT.iteration_kind``)."""

    supervised: bool  # semi-supervised mode: a step on the labelled images
    gan: bool  # the discriminator and generator train (step >= separated)
    epoch_end: bool  # the last iteration of an official epoch


@functools.cache
def smallest_image_size() -> int:
    """The smallest power of two at which C, G (built for that size, giving back its size) and D
    run, found by trying them with one channel per layer on the CPU."""

    def run_at(side: int) -> None:
        x = torch.zeros(1, 3, side, side)
        with torch.no_grad():
            GuidingNetwork(1, 1, 1).eval()(x)
            gen = ContentStyleGenerator(side, 1, 1, 1, 1)
            if gen.decode(gen.encode(x), torch.zeros(1, 1)).shape != x.shape:
                raise ValueError("the output's size differs from the input's")
            MultiHeadDiscriminator(side, 1, 1, 1, stage=frn_stage)(x)

    return sizes.smallest_power_of_two_run("tunit", run_at)


class TUNIT(Method):
    name = "tunit"
    Config = TUNITConfig
    data_kind = "unlabelled"
    loss_names = ("c_total", "c_moco", "c_iic", "c_iic_over", "c_ce", "d_total", "d_adv", "d_gp",
                  "g_total", "g_adv", "g_rec", "g_sty")
    configs = {
        # main.py's defaults (README: --dataset animal_faces --output_k 10 --p_semi 0.0); the
        # AFHQ and FFHQ/LSUN runs use the same settings
        "animal_faces": {},
        # README: --p_semi 0.2 (20 supervised epochs of 200 iterations, separated 35 and
        # ema_start 36 epochs, 200 epochs)
        "animal_faces_semi": {"p_semi": 0.2, "unsup_start": 4000, "separated": 19_000,
                              "ema_start": 20_000, "max_iter": 184_000},
        # README: --dataset summer2winter --output_k 2 --img_size 256 --batch_size 16
        "summer2winter": {"num_clusters": 2, "image_size": 256, "batch_size": 16},
        # The CPU demo on synthetic:shapes-k3 (3 clusters, 64x64): the official structure,
        # losses and optimisers with narrower networks (C width 16; G width 16, MLP 64, style 32;
        # D 8 to 64) and batch 16; C alone for 400 iterations, then the GAN; G_EMA from 600;
        # epochs of 100 iterations; a queue of 256 keys (16 batches). One departure: the cluster
        # head starts from N(0, 0.1) instead of N(0, 0.01). With the official init its logits
        # differ by ~0.05 between images, IIC starts where its gradient grows along one feature
        # direction only, the three logits become one direction with two "twin" clusters, and
        # two true domains end merged in one saturated cluster (seeds 0 and 2; README, TUNIT).
        "demo": {"image_size": 64, "num_clusters": 3, "style_dim": 32, "guide_dim": 16,
                 "gen_dim": 16, "mlp_dim": 64, "dis_dim": 8, "dis_max_dim": 64,
                 "batch_size": 16, "max_iter": 1200, "epoch_length": 100, "separated": 400,
                 "ema_start": 600, "queue_size": 256, "cluster_head_init_std": 0.1},
        # The smallest networks of the official structure (32x32), for tests and check_method:
        # the GAN from the first iteration, G_EMA from the second, epochs of 2 iterations.
        "tiny": {"image_size": 32, "num_clusters": 3, "style_dim": 8, "guide_dim": 4,
                 "gen_dim": 4, "gen_res_blocks": 1, "mlp_dim": 16, "dis_dim": 4,
                 "dis_max_dim": 16, "batch_size": 4, "max_iter": 10, "epoch_length": 2,
                 "separated": 0, "ema_start": 1, "queue_size": 16},
    }

    reference_guided = True
    demo_config = "demo"
    demo_data = "synthetic:shapes-k3"

    def __init__(self, config: TUNITConfig, context: RunContext | None = None):
        super().__init__(config, context)
        cfg = config
        self.check_config(cfg)
        self.guiding_network = GuidingNetwork(cfg.num_clusters, cfg.style_dim, cfg.guide_dim,
                                              cfg.overclusters, cfg.cluster_head_init_std)
        self.guiding_network_ema = copy.deepcopy(self.guiding_network)
        self.generator = init_weights(ContentStyleGenerator(
            cfg.image_size, cfg.style_dim, cfg.gen_dim, cfg.gen_res_blocks, cfg.mlp_dim), "kaiming")
        self.generator_ema = copy.deepcopy(self.generator)
        self.discriminator = init_weights(discriminator(cfg), "kaiming")
        for ema in (self.guiding_network_ema, self.generator_ema):
            ema.requires_grad_(False)
        self.queue = KeyQueue(cfg.queue_size, cfg.style_dim)
        self.register_buffer("first_keys", torch.zeros(cfg.batch_size, cfg.style_dim))
        self.cluster_styles = ClassStyleStatistics(cfg.num_clusters, cfg.style_dim)
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.int64))
        self.context.prepare(self)

        ctx = self.context
        guide_lr = cfg.lr if cfg.guide_lr is None else cfg.guide_lr
        self.add_optimizer("guiding_network", ctx.adam(self.guiding_network.parameters(), guide_lr,
                                                       (0.9, 0.999), cfg.guide_weight_decay))
        for name in ("generator", "discriminator"):
            self.add_optimizer(name, torch.optim.RMSprop(
                getattr(self, name).parameters(), lr=cfg.lr, alpha=cfg.rmsprop_alpha,
                weight_decay=cfg.weight_decay))
        # G_EMA becomes a copy of G before iteration ema_start (after iteration ema_start - 1),
        # then follows it; C_EMA follows C from the first iteration.
        generator_average = (MovingAverage(cfg.ema_beta) if cfg.ema_start == 0 else
                             MovingAverage(cfg.ema_beta, start=cfg.ema_start - 1,
                                           copy_at_start=True))
        self.declare_networks(
            NetworkRoles(trained=("guiding_network", "generator", "discriminator"),
                         critics=("discriminator",), differentiated_twice=("discriminator",),
                         averages={"guiding_network_ema": "guiding_network",
                                   "generator_ema": "generator"}),
            {"guiding_network_ema": MovingAverage(cfg.ema_beta),
             "generator_ema": generator_average})

    @classmethod
    def check_config(cls, cfg: TUNITConfig) -> None:
        check = FieldChecks("tunit", cfg)
        check.ints("num_clusters", "style_dim", "guide_dim", "gen_res_blocks", "mlp_dim",
                   "dis_max_dim", "queue_size", "batch_size", "epoch_length")
        check.ints("gen_dim", "dis_dim", optional="the official width")
        check.ints("overclusters", minimum=0,
                   expected="an int >= 0 (0: no over-clustering head, official)")
        check.ints("separated", "ema_start", "unsup_start", minimum=0,
                   expected="an int >= 0 (an iteration)")
        check.at_least("w_gp", "w_rec", "w_adv", "w_vec", "lr", "weight_decay",
                       "guide_weight_decay")
        if cfg.guide_lr is not None and (isinstance(cfg.guide_lr, bool) or not cfg.guide_lr > 0):
            check.fail("guide_lr", "None (lr, official) or a value > 0", cfg.guide_lr)
        if not cfg.moco_temperature > 0:
            check.fail("moco_temperature", "a value > 0", cfg.moco_temperature)
        if isinstance(cfg.cluster_head_init_std, bool) or not cfg.cluster_head_init_std > 0:
            check.fail("cluster_head_init_std", "a value > 0 (official 0.01)",
                       cfg.cluster_head_init_std)
        if not cfg.iic_entropy_weight > 0:
            check.fail("iic_entropy_weight", "a value > 0 (official 1)", cfg.iic_entropy_weight)
        check.at_least("jitter_brightness", "jitter_contrast", "jitter_saturation")
        check.within("jitter_hue", low=0.0, high=0.5)
        check.within("ema_beta", "rmsprop_alpha", "style_stats_decay", low=0.0, high=1.0)
        if not 0.0 <= cfg.p_semi < 1.0:
            check.fail("p_semi", "a value in [0, 1) (0: unsupervised, in between: "
                       "semi-supervised; the supervised mode p_semi = 1 is not implemented)",
                       cfg.p_semi)
        if cfg.p_semi == 0 and cfg.unsup_start != 0:
            check.fail("unsup_start", "0 in the unsupervised mode (p_semi = 0)", cfg.unsup_start)
        if cfg.p_semi > 0 and cfg.unsup_start % cls.supervised_epoch_length(cfg):
            check.fail("unsup_start", f"a multiple of {cls.supervised_epoch_length(cfg)} (the "
                       f"length of the supervised epochs before it)", cfg.unsup_start)
        smallest = smallest_image_size()
        if not sizes.is_power_of_two(cfg.image_size) or cfg.image_size < smallest:
            check.fail("image_size", f"a power of two >= {smallest} (the sides these networks "
                       f"are built for, found by trying them)", cfg.image_size)

    # ----- the schedule -----

    @staticmethod
    def supervised_epoch_length(cfg: TUNITConfig) -> int:
        """Semi-supervised: the length of the epochs before unsup_start (all supervised)."""
        return max(int(cfg.epoch_length * cfg.p_semi), SUPERVISED_EPOCH_MIN)

    @property
    def first_full_iteration(self) -> int:
        """Benchmarks time GAN iterations with G_EMA averaged, not C's iterations before
        ``separated`` (semi-supervised: nor the supervised-only epochs before unsup_start)."""
        cfg = self.config
        return max(cfg.separated, cfg.ema_start, cfg.unsup_start)

    def iteration_kind(self, step: int) -> IterationKind:
        """What iteration `step` (0-based) does: a pure function of the step."""
        cfg = self.config
        gan = step >= cfg.separated
        if cfg.p_semi == 0:
            return IterationKind(False, gan, (step + 1) % cfg.epoch_length == 0)
        if step < cfg.unsup_start:
            return IterationKind(True, gan, (step + 1) % self.supervised_epoch_length(cfg) == 0)
        position = (step - cfg.unsup_start) % cfg.epoch_length
        return IterationKind(position < int(cfg.epoch_length * cfg.p_semi), gan,
                             position == cfg.epoch_length - 1)

    def dataset_options(self) -> dict[str, Any]:
        """The pair augmentation's colour jitter of the config; the semi-supervised mode's
        labelled images come with every item (see i2i_fast.data.unlabelled)."""
        cfg = self.config
        options = super().dataset_options()
        options["colour_jitter"] = (cfg.jitter_brightness, cfg.jitter_contrast,
                                    cfg.jitter_saturation, cfg.jitter_hue)
        if self.config.p_semi > 0:
            options["labelled_fraction"] = self.config.p_semi
        return options

    # ----- training -----

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """One official iteration; batch: the "unlabelled" items {"image", "image_tf"} (+
        "sup_image", "sup_image_tf", "sup_domain" in the semi-supervised mode)."""
        cfg, ctx = self.config, self.context
        kind = self.iteration_kind(step)
        prefix = "sup_" if kind.supervised else ""
        x = ctx.to_device(batch[prefix + "image"])
        x_tf = ctx.to_device(batch[prefix + "image_tf"])
        labels = batch["sup_domain"].to(ctx.device) if kind.supervised else None
        perm = torch.randperm(x.shape[0]).to(ctx.device)  # the official x_ref_idx
        if len(self.queue) == 0:  # a fresh run: fill the queue (official initialize_queue)
            with torch.no_grad(), ctx.autocast():
                keys = self.guiding_network_ema(ctx.to_device(batch["image_tf"]))[0]
            self.first_keys.copy_(keys)
            self.queue.enqueue(keys)
        elif cfg.queue_restarts and step > 0 and self.iteration_kind(step - 1).epoch_end:
            self.queue.clear()
            self.queue.enqueue(self.first_keys)

        losses, keys, logits_before = self._guide_step(x, x_tf, labels, kind)
        if kind.gan:
            if kind.supervised:
                y = labels
            elif cfg.p_semi > 0:
                y = logits_before.argmax(dim=1)  # semi: the pseudo-labels before C's update
            else:
                y = None  # unsupervised: from C after its update
            losses.update(self._gan_steps(x, y, perm))
        self.queue.enqueue(keys)
        self.update_averages(step)
        if kind.epoch_end:
            copy_buffers(self.guiding_network, self.guiding_network_ema)
            copy_buffers(self.generator, self.generator_ema)
        self.steps_done.fill_(step + 1)
        return losses

    def _guide_step(self, x: torch.Tensor, x_tf: torch.Tensor, labels: torch.Tensor | None,
                    kind: IterationKind) -> tuple[dict, torch.Tensor, torch.Tensor]:
        """C's own update; returns (losses, the keys C_EMA(x_tf), C's logits of x before it)."""
        cfg, ctx, nets = self.config, self.context, self.nets
        optimizer = self._optimizers["guiding_network"]
        optimizer.zero_grad(set_to_none=True)
        over = cfg.overclusters > 0 and not kind.supervised
        with ctx.autocast():
            # official moco + iic passes (+ the over-clustering head's, on the same trunk pass)
            style, logits, *logits_over = nets.guiding_network(x, stat_updates=2,
                                                                with_overclusters=over)
            _, logits_tf, *logits_over_tf = nets.guiding_network(x_tf, with_overclusters=over)
            with torch.no_grad():
                keys = self.guiding_network_ema(x_tf)[0]
            loss_moco = moco_loss(_full(style), _full(keys), self.queue.keys(),
                                  cfg.moco_temperature)
            if kind.supervised:
                term = (F.cross_entropy(_full(logits), labels)
                        + F.cross_entropy(_full(logits_tf), labels))
            else:
                term = iic_loss(F.softmax(_full(logits), dim=1),
                                F.softmax(_full(logits_tf), dim=1),
                                entropy_weight=cfg.iic_entropy_weight)
            loss = loss_moco + IIC_WEIGHT * term
            if over:
                term_over = iic_loss(F.softmax(_full(logits_over[0]), dim=1),
                                     F.softmax(_full(logits_over_tf[0]), dim=1),
                                     entropy_weight=cfg.iic_entropy_weight)
                loss = loss + IIC_WEIGHT * term_over
            if kind.gan or (cfg.p_semi > 0 and not kind.supervised):
                loss = SEPARATED_SCALE * loss
        ctx.optimizer_step(loss, optimizer)
        losses = {"c_total": loss.detach(), "c_moco": loss_moco.detach(),
                  ("c_ce" if kind.supervised else "c_iic"): term.detach()}
        if over:
            losses["c_iic_over"] = term_over.detach()
        return losses, keys.detach(), logits.detach()

    def _gan_steps(self, x: torch.Tensor, y: torch.Tensor | None, perm: torch.Tensor
                   ) -> dict[str, torch.Tensor]:
        cfg, ctx, nets, critics = self.config, self.context, self.nets, self.critics
        n = x.shape[0]
        for name in ("guiding_network", "generator"):
            self._optimizers[name].zero_grad(set_to_none=True)
        # The generator side's forward, once for the D step and the G step (neither C nor G
        # changes in between): the official trunk passes of C on x and x[perm] after C's update
        # (semi: 3, unsupervised: 4 with the pseudo-labels') as one.
        with ctx.autocast():
            s_src, logits, *logits_over = nets.guiding_network(
                x, stat_updates=3 if cfg.p_semi > 0 else 4,
                with_overclusters=cfg.overclusters > 0)
            y = logits.detach().argmax(dim=1) if y is None else y
            y_ref, s_ref = y[perm], s_src[perm]
            content = nets.generator.encode(x)
            both = nets.generator.decode(torch.cat([content, content]),
                                         torch.cat([s_ref, s_src]))
            x_fake, x_rec = both[:n], both[n:]
        losses = self._discriminator_step(x[perm], y_ref, x_fake.detach())
        with self.frozen_critics(), ctx.autocast():
            out = critics.discriminator(both)
            loss_adv = (ops.gan_loss(out[:n], "generator", "hinge", domain=y_ref)
                        + ops.gan_loss(out[n:], "generator", "hinge", domain=y))
            loss_rec = l1(x_rec, x)
            s_fake, _ = nets.guiding_network(x_fake)
            with torch.no_grad():
                s_ema = self.guiding_network_ema(x)[0]  # official C_EMA(x_ref) = this[perm]
            loss_sty = moco_loss(_full(s_fake), _full(s_ema[perm]), self.queue.keys(),
                                 cfg.moco_temperature)
            loss = cfg.w_adv * loss_adv + cfg.w_rec * loss_rec + cfg.w_vec * loss_sty
        # The cluster head takes no part in this loss; the official code (torch 1.1) still gave
        # it a zeroed gradient, so Adam stepped it: a zero gradient here does the same (and lets
        # DistributedDataParallel see every parameter of C reached; the over-clustering head,
        # when there is one, is treated as the cluster head).
        unused_heads = logits.sum() + sum(t.sum() for t in logits_over)
        ctx.optimizer_step(loss + 0.0 * unused_heads,
                           [self._optimizers["guiding_network"], self._optimizers["generator"]])
        self.cluster_styles.add(s_ema, y, cfg.style_stats_decay)
        losses.update(g_total=loss.detach(), g_adv=loss_adv.detach(), g_rec=loss_rec.detach(),
                      g_sty=loss_sty.detach())
        return losses

    def _discriminator_step(self, x_real: torch.Tensor, y: torch.Tensor, x_fake: torch.Tensor
                            ) -> dict[str, torch.Tensor]:
        cfg, ctx = self.config, self.context
        optimizer = self._optimizers["discriminator"]
        optimizer.zero_grad(set_to_none=True)
        x_in = x_real.detach().requires_grad_(True)
        with ctx.autocast():
            out = self.nets_twice.discriminator(x_in)  # R1 differentiates its input gradient
            loss_real = ops.gan_loss(out, "real", "hinge", domain=y)
        # R1 on the reals: Σ (∂ Σ_n D(x)[y] / ∂x)² / N, weight 1 (times w_gp)
        (grad,) = torch.autograd.grad(select_domain(out, y).sum(), x_in, create_graph=True)
        loss_gp = cfg.w_gp * ops.r1_penalty(grad, weight=1.0)
        with ctx.autocast():
            loss_fake = ops.gan_loss(self.nets.discriminator(x_fake), "fake", "hinge", domain=y)
        loss_adv = loss_real + loss_fake
        loss = loss_adv + loss_gp
        ctx.optimizer_step(loss, optimizer)
        return {"d_total": loss.detach(), "d_adv": loss_adv.detach(), "d_gp": loss_gp.detach()}

    # ----- clusters and styles -----

    def _inference_nets(self, ema: bool) -> tuple[nn.Module, nn.Module]:
        """(C, G) for inference: the EMA networks (G_EMA once it has started), or the trained."""
        if not ema:
            return self.guiding_network, self.generator
        started = int(self.steps_done) >= self.config.ema_start
        return self.guiding_network_ema, (self.generator_ema if started else self.generator)

    @torch.no_grad()
    def cluster(self, x: torch.Tensor, ema: bool = False) -> torch.Tensor:
        """(N,) cluster indices of images x (N, 3, H, W): argmax of C's cluster head in eval mode
        (the official evaluation uses C, not C_EMA; ema=True uses C_EMA)."""
        guide = self.guiding_network_ema if ema else self.guiding_network
        with self.evaluating(), self.context.autocast():
            return guide(self.context.to_device(x))[1].argmax(dim=1)

    @torch.no_grad()
    def estimate_cluster_styles(self, images: torch.Tensor | Iterable[torch.Tensor]) -> None:
        """The official evaluation's cluster styles: every image (a tensor (N, 3, H, W) or an
        iterable of such batches) is assigned to C's cluster (eval mode) and contributes C_EMA's
        style (eval mode) to that cluster's mean and variance; replaces the statistics."""
        batches = [images] if isinstance(images, torch.Tensor) else images
        self.cluster_styles.reset()
        with self.evaluating(), self.context.autocast():
            for x in batches:
                x = self.context.to_device(x)
                labels = self.guiding_network(x)[1].argmax(dim=1)
                self.cluster_styles.add(self.guiding_network_ema(x)[0], labels)

    # ----- inference -----

    def translate(self, x: torch.Tensor, *, n_styles: int = 1,
                  reference: torch.Tensor | None = None, target_domain: Any = None,
                  generator: torch.Generator | None = None, ema: bool = True) -> torch.Tensor:
        """x (N, 3, H, W) → (N, K, 3, H, W).

        With `reference` (one image for all inputs or one per input): K = 1, the style C_EMA
        extracts from it (target_domain is not needed: a reference gives its own style). Without:
        target_domain is a cluster index (or an (N,) tensor of them) and the K styles are the
        cluster's mean style, then K - 1 draws from N(mean, diag(variance)) of the cluster (from
        `generator`). ema: the EMA networks (the official evaluation's; G until ema_start)."""
        ctx = self.context
        guide, gen = self._inference_nets(ema)
        x = ctx.to_device(x)
        n = x.shape[0]
        with self.evaluating(), ctx.autocast():
            content = gen.encode(x)
            if reference is not None:
                style = guide(ctx.to_device(reference))[0].expand(n, -1)
                return gen.decode(content, style).float().unsqueeze(1)
            y = self.domains.per_input(target_domain, n, ctx.device)
            styles = self._cluster_style_draws(y, n_styles, generator)
            out = gen.decode(content.repeat_interleave(n_styles, dim=0), styles).float()
        return out.reshape(n, n_styles, *out.shape[1:])

    def _cluster_style_draws(self, y: torch.Tensor, n_styles: int,
                             generator: torch.Generator | None) -> torch.Tensor:
        """(N * n_styles, D): per input, its cluster's mean, then n_styles - 1 normal draws."""
        empty = self.cluster_styles.empty_classes(y)
        if empty:
            warnings.warn(f"tunit: clusters {empty} have no style statistics yet (they come with "
                          f"the GAN phase of training, or estimate_cluster_styles): their styles "
                          f"are drawn from N(0, I)", stacklevel=3)
        return self.cluster_styles.draws(y, n_styles, generator)

    def sample_visuals(self, batch: dict[str, torch.Tensor],
                       generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """With the EMA networks: the sources, their augmented versions, references (the batch
        rolled by one), the reference-guided translations, the reconstructions, then one row per
        cluster (the first 5) in the cluster's mean style."""
        ctx = self.context
        x = ctx.to_device(batch["image"])
        x_ref = x.roll(1, dims=0)
        guide, gen = self._inference_nets(True)
        n = x.shape[0]
        with self.evaluating(), ctx.autocast():
            content = gen.encode(x)
            visuals = {"source": x, "augmented": ctx.to_device(batch["image_tf"]),
                       "reference": x_ref,
                       "reference_guided": gen.decode(content, guide(x_ref)[0]),
                       "reconstruction": gen.decode(content, guide(x)[0])}
            mean, _ = self.cluster_styles.mean_and_std()
            for k in range(min(self.config.num_clusters, 5)):
                visuals[f"cluster_{k}"] = gen.decode(content, mean[k].expand(n, -1))
        return {k: v.float() for k, v in visuals.items()}
