"""A third-party method: a tiny two-domain translator (conv G a→b, conv D on b), LSGAN."""

import dataclasses

import torch
from torch import nn

import i2i_fast.ops as ops
from i2i_fast.losses import discriminator_loss, generator_loss, l1
from i2i_fast.methods import Method


@dataclasses.dataclass
class ToyConfig:
    dim: int = 8
    lr: float = 2e-3
    batch_size: int = 2
    image_size: int = 16
    max_iter: int = 10


class ToyTranslator(Method):
    name = "toy"
    Config = ToyConfig
    data_kind = "unpaired"
    loss_names = ("d", "g")
    configs = {"wide": {"dim": 16}}

    def __init__(self, config, context=None):
        super().__init__(config, context)
        d = config.dim
        self.g_in = nn.Conv2d(3 + 1, d, 3, padding=1)
        self.g_out = nn.Conv2d(d, 3, 3, padding=1)
        self.d = nn.Sequential(nn.Conv2d(3, d, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(d, 1, 3, 1, 1))
        self.context.prepare(self)
        ctx = self.context
        self.add_optimizer("g", ctx.adam([*self.g_in.parameters(), *self.g_out.parameters()],
                                         config.lr, (0.5, 0.999)))
        self.add_optimizer("d", ctx.adam(self.d.parameters(), config.lr, (0.5, 0.999)))

    def generate(self, x, noise):
        h = self.g_in(torch.cat([x, noise.expand(-1, 1, *x.shape[2:])], 1))
        return torch.tanh(self.g_out(ops.instance_norm(h, activation="relu")))

    def train_step(self, batch, step):
        ctx = self.context
        x_a, x_b = ctx.to_device(batch["a"]), ctx.to_device(batch["b"])
        z = torch.randn(x_a.shape[0], 1, 1, 1, device=ctx.device)
        d_opt, g_opt = self.optimizers["d"], self.optimizers["g"]
        d_opt.zero_grad()
        with ctx.autocast():
            with torch.no_grad():
                fake = self.generate(x_a, z)
            d_loss = discriminator_loss(self.d(fake), self.d(x_b), "lsgan")
        ctx.optimizer_step(d_loss, d_opt)
        g_opt.zero_grad()
        with ctx.autocast():
            fake = self.generate(x_a, z)
            g_loss = generator_loss(self.d(fake), "lsgan") + 0.1 * l1(fake, x_a)
        ctx.optimizer_step(g_loss, g_opt)
        return {"d": d_loss.detach(), "g": g_loss.detach()}

    def translate(self, x, *, n_styles=1, reference=None, target_domain=None, generator=None):
        x = self.context.to_device(x)
        with self.evaluating():
            z = torch.randn(x.shape[0] * n_styles, 1, 1, 1, generator=generator)
            out = self.generate(x.repeat_interleave(n_styles, 0), z.to(x.device))
        return out.reshape(x.shape[0], n_styles, *out.shape[1:])

    def sample_visuals(self, batch, generator=None):
        x_a = self.context.to_device(batch["a"])
        return {"x_a": x_a, "x_ab": self.translate(x_a, generator=generator)[:, 0]}
