"""The two-domain networks of DRIT / DRIT++: content encoders with a shared block, attribute
encoders, and generators that inject an attribute code into a content code.

Each holds both domains' parts, as the official E_content, E_attr(_concat), G(_concat) do (one
optimizer each). Training calls them through ``forward`` with an entry point (nn.EntryPoints), so
DistributedDataParallel sees every call; inference may call the per-domain methods directly.
"""

from __future__ import annotations

import torch
from torch import nn

from .batching import in_one_batch
from .decoders import ConcatLatentDecoder, FusionLatentDecoder
from .encoders import ContentEncoder, StyleEncoder, VariationalResNetEncoder
from .entry_points import EntryPoints
from .noise import GaussianNoise
from .resblocks import ResBlock


class SharedContentEncoder(EntryPoints):
    """DRIT's E_content. Per domain (``conv_a``, ``conv_b``): 7x7 conv + LeakyReLU 0.01 (no norm)
    to dim, two 3x3 stride-2 convs + IN + ReLU doubling the width, n_res ResBlocks (IN, ReLU,
    reflection padding). Shared by both domains (``shared``): one more ResBlock, then Gaussian
    noise (sigma 1) in training mode, also when the translations are encoded again.

    (N, in, H, W) → (N, 4·dim, H/4, W/4). Entry point ``encode(x_a, x_b)`` → (content_a,
    content_b); ``encode_a(x)``, ``encode_b(x)`` for one domain.
    """

    entry_points = ("encode",)

    def __init__(self, in_a: int = 3, in_b: int = 3, dim: int = 64, n_res: int = 3):
        super().__init__()

        def branch(in_channels: int) -> ContentEncoder:
            return ContentEncoder(2, n_res, in_channels, dim, "in", "relu", "reflect",
                                  down_kernel=3, first_norm="none", first_activation="lrelu",
                                  negative_slope=0.01)

        self.conv_a, self.conv_b = branch(in_a), branch(in_b)
        self.out_channels = self.conv_a.out_channels
        self.shared = nn.Sequential(ResBlock(self.out_channels, "in", "relu", "reflect"),
                                    GaussianNoise(1.0))

    def encode_a(self, x: torch.Tensor) -> torch.Tensor:
        return self.shared(self.conv_a(x))

    def encode_b(self, x: torch.Tensor) -> torch.Tensor:
        return self.shared(self.conv_b(x))

    def encode(self, x_a: torch.Tensor, x_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """encode_a(x_a), encode_b(x_b), the shared residual block run once over both batches
        (its instance norm is per sample), then the noise of a drawn before that of b, as the
        official forward draws them."""
        h_a, h_b = self.conv_a(x_a), self.conv_b(x_b)
        if h_a.shape[1:] != h_b.shape[1:]:  # images of different sizes: one domain at a time
            return self.shared(h_a), self.shared(h_b)
        block, noise = self.shared
        c_a, c_b = in_one_batch(block, h_a, h_b)
        return noise(c_a), noise(c_b)


class AttributeEncoders(EntryPoints):
    """DRIT's attribute encoders, one per domain (``enc_a``, ``enc_b``).

    variational (``--concat 1``, E_attr_concat): VariationalResNetEncoder (4 blocks, LeakyReLU
    0.2, no norm, reflection padding, global average pooling) → (mu, logvar). Deterministic
    (``--concat 0``, E_attr): 7x7 conv, four 4x4 stride-2 convs (64 → 128 → 256 → 256 → 256),
    ReLU, no norm, global pooling, 1x1 conv → (z, None).

    Entry point ``encode(x_a, x_b)`` → ((mu_a, logvar_a), (mu_b, logvar_b)); ``encode_a(x)``,
    ``encode_b(x)`` → (mu, logvar) for one domain; logvar is None for the deterministic encoder.
    """

    entry_points = ("encode",)

    def __init__(self, in_a: int = 3, in_b: int = 3, latent_dim: int = 8, dim: int = 64,
                 variational: bool = True):
        super().__init__()
        self.variational = variational

        def branch(in_channels: int) -> nn.Module:
            if variational:
                return VariationalResNetEncoder(in_channels, latent_dim, dim, n_blocks=4,
                                                max_mult=4, normalize=False, pool=None,
                                                pad_type="reflect")
            return StyleEncoder(4, in_channels, dim, latent_dim, "none", "relu", "reflect")

        self.enc_a, self.enc_b = branch(in_a), branch(in_b)

    def _encode(self, encoder: nn.Module, x: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.variational:
            return encoder(x)
        return encoder(x).flatten(1), None

    def encode_a(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self._encode(self.enc_a, x)

    def encode_b(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self._encode(self.enc_b, x)

    def encode(self, x_a: torch.Tensor, x_b: torch.Tensor) -> tuple[tuple, tuple]:
        return self.encode_a(x_a), self.encode_b(x_b)


class AttributeGenerator(EntryPoints):
    """DRIT's generators G_A and G_B from a content code and an attribute code.

    concat (G_concat): a ResBlock shared by both domains (``shared``), then per domain a
    ConcatLatentDecoder (the code concatenated before four convs). Otherwise (G, MisINS): per
    domain a FusionLatentDecoder (an MLP, n_res + 1 MisINS blocks); nothing shared.

    Entry points ``decode_a(content, z)`` and ``decode_b(content, z)``: (N, 4·dim, h, w) and
    (N, latent_dim) → (N, out, 4h, 4w).
    """

    entry_points = ("decode_a", "decode_b")

    def __init__(self, out_a: int = 3, out_b: int = 3, dim: int = 256, latent_dim: int = 8,
                 n_res: int = 3, concat: bool = True, mlp_dim: int = 256):
        super().__init__()
        self.concat = concat
        if concat:
            self.shared = ResBlock(dim, "in", "relu", "reflect")
            self.dec_a = ConcatLatentDecoder(dim, latent_dim, out_a, n_res)
            self.dec_b = ConcatLatentDecoder(dim, latent_dim, out_b, n_res)
        else:
            self.dec_a = FusionLatentDecoder(dim, latent_dim, out_a, n_res + 1, mlp_dim)
            self.dec_b = FusionLatentDecoder(dim, latent_dim, out_b, n_res + 1, mlp_dim)

    def decode_a(self, content: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.dec_a(self.shared(content) if self.concat else content, z)

    def decode_b(self, content: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.dec_b(self.shared(content) if self.concat else content, z)
