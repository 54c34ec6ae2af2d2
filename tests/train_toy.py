"""A tiny GAN method for the trainer tests (16x16 synthetic:shapes, a few steps).

It has the shape of MUNIT where the trainer cares: an encoder (content + style) and a decoder
(AdaIN from the style) wrapped separately for DDP, the encoder called three times before one
backward in the generator update (on x_a, on x_b, on the translation), a discriminator called on
a real and a fake batch before one backward, random styles from the global torch RNG, StepLR
schedulers stepped every iteration, an EMA copy of the decoder used for translation. Its
normalisations are i2i_fast operators, so ``--backend`` changes what computes them.

Registered as method "toygan" by the ``toy_plugin`` fixture (tests/train_helpers.py) through a real
entry point, as a third-party package would be.
"""

from __future__ import annotations

import copy
import dataclasses

import torch
import torch.nn.functional as F

import i2i_fast.ops as ops
from i2i_fast.methods import Method


@dataclasses.dataclass
class ToyConfig:
    batch_size: int = 2
    image_size: int = 16
    max_iter: int = 6
    dim: int = 8
    style_dim: int = 4
    lr: float = 2e-3
    lr_step: int = 3
    ema_beta: float = 0.9
    random_styles: bool = True  # False: the target style is encoded from x_b (no random draw)
    recon_w: float = 10.0
    float64: bool = False  # networks and batches in float64 (runs compared to 1e-9)


def wide(t: torch.Tensor) -> torch.Tensor:
    """16-bit autocast results in float32; float32 and float64 as they are."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


class Encoder(torch.nn.Module):
    """(N, 3, S, S) -> content (N, dim, S/2, S/2), style (N, style_dim)."""

    def __init__(self, dim: int, style_dim: int):
        super().__init__()
        # no bias before a normalisation: its exact gradient is 0, its computed one float noise,
        # which Adam turns into lr-sized steps that differ between 1 and 2 processes
        self.conv1 = torch.nn.Conv2d(3, dim, 3, padding=1, bias=False)
        self.conv2 = torch.nn.Conv2d(dim, dim, 4, stride=2, padding=1, bias=False)
        self.style = torch.nn.Linear(dim, style_dim)

    def forward(self, x):
        h = ops.instance_norm(self.conv1(x), activation="relu")
        content = ops.instance_norm(self.conv2(h), activation="relu")
        return content, self.style(wide(h).mean(dim=(2, 3)))


class Decoder(torch.nn.Module):
    """content (N, dim, S/2, S/2), style (N, style_dim) -> image (N, 3, S, S) in [-1, 1]."""

    def __init__(self, dim: int, style_dim: int):
        super().__init__()
        self.mlp = torch.nn.Linear(style_dim, 2 * dim)
        self.conv = torch.nn.Conv2d(dim, dim, 3, padding=1, bias=False)
        self.out = torch.nn.Conv2d(dim, 3, 3, padding=1)

    def forward(self, content, style):
        weight, bias = wide(self.mlp(style)).chunk(2, dim=1)
        h = self.conv(F.interpolate(content, scale_factor=2, mode="nearest"))
        h = ops.adain(h, 1 + weight, bias, activation="relu")
        return torch.tanh(self.out(h))


class Discriminator(torch.nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, dim, 4, stride=2, padding=1)
        self.conv2 = torch.nn.Conv2d(dim, 1, 3, padding=1)

    def forward(self, x):
        return self.conv2(F.leaky_relu(self.conv1(x), 0.2))


class ToyGAN(Method):
    name = "toygan"
    Config = ToyConfig
    data_kind = "unpaired"
    loss_names = ("d", "g")
    configs = {"wide": {"dim": 12}}

    def __init__(self, config: ToyConfig, context=None):
        super().__init__(config, context)
        if config.lr <= 0:
            raise ValueError(f"toygan: lr: expected > 0, got {config.lr}")
        c, ctx = config, self.context
        self.dtype = torch.float64 if c.float64 else torch.float32
        enc = ctx.prepare(Encoder(c.dim, c.style_dim)).to(self.dtype)
        dec = ctx.prepare(Decoder(c.dim, c.style_dim)).to(self.dtype)
        self.dec_ema = copy.deepcopy(dec).requires_grad_(False)
        self.enc, self.dec = ctx.wrap(enc), ctx.wrap(dec)
        self.dis = ctx.wrap(ctx.prepare(Discriminator(c.dim)).to(self.dtype))
        gen_params = list(enc.parameters()) + list(dec.parameters())
        opt_g = ctx.adam(gen_params, lr=c.lr, betas=(0.5, 0.999), weight_decay=1e-4)
        opt_d = ctx.adam(self.dis.parameters(), lr=c.lr, betas=(0.5, 0.999), weight_decay=1e-4)
        self.add_optimizer("gen", opt_g, torch.optim.lr_scheduler.StepLR(opt_g, c.lr_step, 0.5))
        self.add_optimizer("dis", opt_d, torch.optim.lr_scheduler.StepLR(opt_d, c.lr_step, 0.5))

    def _target_style(self, x_b):
        if self.config.random_styles:
            return torch.randn(x_b.shape[0], self.config.style_dim, device=x_b.device,
                               dtype=self.dtype)
        return self.enc(x_b)[1]

    def train_step(self, batch, step):
        x_a, x_b = batch["a"].to(self.dtype), batch["b"].to(self.dtype)
        opt_g, opt_d = self.optimizers["gen"], self.optimizers["dis"]
        ctx = self.context
        # discriminator update: D sees a fake and a real batch before one backward
        with torch.no_grad(), ctx.autocast():
            content, _ = self.enc(x_a)
            fake = self.dec(content, self._target_style(x_b))
        opt_d.zero_grad(set_to_none=True)
        with ctx.autocast():
            loss_d = (wide(self.dis(fake.detach())) ** 2).mean() + \
                ((wide(self.dis(x_b)) - 1) ** 2).mean()
        ctx.optimizer_step(loss_d, opt_d)
        # generator update: the encoder runs on x_a, x_b (or not) and on the translation
        opt_g.zero_grad(set_to_none=True)
        with ctx.autocast():
            c_a, s_a = self.enc(x_a)
            s_b = self._target_style(x_b)
            x_ab = self.dec(c_a, s_b)
            c_ab, s_ab = self.enc(x_ab)
            x_aa = self.dec(c_a, s_a)
            loss_g = ((wide(self.dis(x_ab)) - 1) ** 2).mean() \
                + self.config.recon_w * (wide(x_aa) - x_a).abs().mean() \
                + (wide(c_ab) - wide(c_a)).abs().mean() \
                + (wide(s_ab) - wide(s_b.detach())).abs().mean()
        ctx.optimizer_step(loss_g, opt_g)
        for scheduler in self.schedulers.values():
            scheduler.step()
        with torch.no_grad():
            for ema, p in zip(self.dec_ema.parameters(), self.dec.parameters()):
                ema.lerp_(p, 1 - self.config.ema_beta)
        return {"d": loss_d.detach(), "g": loss_g.detach()}  # tensors: no host sync per step

    def translate(self, x, *, n_styles=1, reference=None, target_domain=None, generator=None):
        if target_domain is not None:
            raise ValueError(f"toygan: target_domain: expected None (it translates a to b only), "
                             f"got {target_domain!r}")
        x = x.to(self.dtype)
        with self.evaluating():
            content, _ = self.enc(x)
            if reference is not None:
                styles = self.enc(reference.to(self.dtype))[1][:, None]
            else:
                styles = torch.randn(x.shape[0], n_styles, self.config.style_dim,
                                     generator=generator, device=x.device).to(self.dtype)
            out = [self.dec_ema(content, styles[:, k]) for k in range(styles.shape[1])]
        return torch.stack(out, dim=1).float()

    def sample_visuals(self, batch, generator=None):
        x_a, x_b = batch["a"], batch["b"]
        return {
            "a": x_a,
            "a2b_random": self.translate(x_a, generator=generator)[:, 0],
            "b": x_b,
            "a2b_reference": self.translate(x_a, reference=x_b)[:, 0],
        }
