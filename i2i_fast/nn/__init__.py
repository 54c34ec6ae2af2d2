"""Network blocks as nn.Modules, every normalization, reflection padding, nearest upsampling and
2x2 average pooling through the fused operators (i2i_fast.ops).

Wrap any use in ``i2i_fast.ops.use_backend("reference")`` to run the same blocks on the
plain-PyTorch reference definitions.
"""

from .conv import Conv2dBlock, ConvTranspose2dBlock, LinearBlock, make_padding
from .decoders import AdaINDecoder, ConcatLatentDecoder, FusionLatentDecoder, split_adain_params
from .discriminators import ContentDiscriminator, MultiScalePatchDiscriminator
from .disentangled import AttributeEncoders, AttributeGenerator, SharedContentEncoder
from .encoders import ContentEncoder, StyleEncoder, VariationalEncoder
from .filters import HighPass
from .init import init_weights
from .latent_injection import LatentConcatConv, broadcast_concat
from .mlp import MLP
from .noise import GaussianNoise
from .norms import AdaptiveInstanceNorm, InstanceNorm, LayerNorm, MunitLayerNorm, StyleAdaIN
from .preact_resblocks import AdaINPreActResBlock, PreActResBlock
from .resampling import AvgPool, ReflectionPad, UpsampleNearest
from .resblocks import (
    AdaINResBlock,
    LatentConcatResBlock,
    LatentFusionResBlock,
    ResBlock,
    ResidualDownBlock,
)

__all__ = [
    "AdaINDecoder", "AdaINPreActResBlock", "AdaINResBlock", "AdaptiveInstanceNorm",
    "AttributeEncoders", "AttributeGenerator", "AvgPool", "ConcatLatentDecoder",
    "ContentDiscriminator", "ContentEncoder", "Conv2dBlock", "ConvTranspose2dBlock",
    "FusionLatentDecoder", "GaussianNoise", "HighPass", "InstanceNorm", "LatentConcatConv",
    "LatentConcatResBlock", "LatentFusionResBlock", "LayerNorm", "LinearBlock", "MLP",
    "MultiScalePatchDiscriminator", "MunitLayerNorm", "PreActResBlock", "ReflectionPad",
    "ResBlock", "ResidualDownBlock", "SharedContentEncoder", "StyleAdaIN", "StyleEncoder",
    "UpsampleNearest", "VariationalEncoder", "broadcast_concat", "init_weights", "make_padding",
    "split_adain_params",
]
