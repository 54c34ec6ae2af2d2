"""Network blocks as nn.Modules, every normalization, reflection padding, nearest upsampling and
2x2 average pooling through the fused operators (i2i_fast.ops).

Wrap any use in ``i2i_fast.ops.use_backend("reference")`` to run the same blocks on the
plain-PyTorch reference definitions.
"""

from .batching import in_one_batch
from .conv import Conv2dBlock, ConvTranspose2dBlock, LinearBlock, make_padding
from .decoders import AdaINDecoder, ConcatLatentDecoder, FusionLatentDecoder, split_adain_params
from .discriminators import ContentDiscriminator, MultiScalePatchDiscriminator
from .disentangled import AttributeEncoders, AttributeGenerator, SharedContentEncoder
from .encoders import ContentEncoder, StyleEncoder, VariationalResNetEncoder
from .filters import HighPass
from .generators import ContentStyleGenerator, PreActStyleGenerator
from .guiding import GuidingNetwork
from .init import init_weights
from .latent_injection import (
    LatentConv2d,
    LatentConvTranspose2d,
    broadcast_concat,
    latent_conv2d,
    latent_conv_transpose2d,
)
from .mlp import MLP
from .noise import GaussianNoise
from .norms import (
    AdaptiveInstanceNorm,
    BatchNorm,
    ChannelAffineLayerNorm,
    FilterResponseNorm,
    InstanceNorm,
    MunitLayerNorm,
    StyleAdaIN,
)
from .preact_resblocks import (
    AdaINPreActResBlock,
    FRNPreActResBlock,
    PreActDownBlock,
    PreActResBlock,
)
from .resampling import MaxPool, ReflectionPad, UpsampleNearest
from .resblocks import (
    AdaINResBlock,
    AdaINResBlocks,
    LatentConcatResBlock,
    LatentFusionResBlock,
    ResBlock,
)
from .style_statistics import ClassStyleStatistics
from .unet import LatentUNetGenerator, LatentUNetLevel

__all__ = [
    "AdaINDecoder", "AdaINPreActResBlock", "AdaINResBlock", "AdaINResBlocks",
    "AdaptiveInstanceNorm", "AttributeEncoders", "AttributeGenerator", "BatchNorm",
    "ChannelAffineLayerNorm",
    "ClassStyleStatistics", "ConcatLatentDecoder", "ContentDiscriminator", "ContentEncoder",
    "ContentStyleGenerator", "Conv2dBlock", "ConvTranspose2dBlock", "FRNPreActResBlock",
    "FilterResponseNorm", "FusionLatentDecoder", "GaussianNoise", "GuidingNetwork", "HighPass",
    "InstanceNorm", "LatentConcatResBlock", "LatentConv2d", "LatentConvTranspose2d",
    "LatentFusionResBlock", "LatentUNetGenerator", "LatentUNetLevel", "LinearBlock", "MLP", "MaxPool",
    "MultiScalePatchDiscriminator", "MunitLayerNorm", "PreActDownBlock", "PreActResBlock",
    "PreActStyleGenerator", "ReflectionPad", "ResBlock", "SharedContentEncoder", "StyleAdaIN",
    "StyleEncoder", "UpsampleNearest", "VariationalResNetEncoder", "broadcast_concat",
    "in_one_batch", "init_weights", "latent_conv2d", "latent_conv_transpose2d", "make_padding",
    "split_adain_params",
]
