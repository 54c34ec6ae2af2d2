"""Network blocks as nn.Modules, every normalization, reflection padding, nearest upsampling and
2x2 average pooling through the fused operators (i2i_fast.ops).

Wrap any use in ``i2i_fast.ops.use_backend("reference")`` to run the same blocks on the
plain-PyTorch reference definitions.
"""

from .conv import Conv2dBlock, LinearBlock, make_padding
from .decoders import AdaINDecoder, split_adain_params
from .discriminators import MultiScalePatchDiscriminator
from .encoders import ContentEncoder, StyleEncoder, VariationalResNetEncoder
from .filters import HighPass
from .guiding import GuidingNetwork
from .init import init_weights
from .latent_injection import LatentConv2d, latent_conv2d
from .mlp import MLP
from .norms import (
    AdaptiveInstanceNorm,
    FilterResponseNorm,
    InstanceNorm,
    LayerNorm,
    MunitLayerNorm,
    StyleAdaIN,
    filter_response_norm,
)
from .preact_resblocks import (
    AdaINPreActResBlock,
    FRNPreActResBlock,
    PreActDownBlock,
    PreActResBlock,
)
from .resampling import ReflectionPad, UpsampleNearest
from .resblocks import AdaINResBlock, ResBlock
from .unet import LatentUNetGenerator, LatentUNetLevel

__all__ = [
    "AdaINDecoder", "AdaINPreActResBlock", "AdaINResBlock", "AdaptiveInstanceNorm", "Conv2dBlock",
    "ContentEncoder", "FRNPreActResBlock", "FilterResponseNorm", "GuidingNetwork", "HighPass",
    "InstanceNorm", "LatentConv2d", "LatentUNetGenerator", "LatentUNetLevel", "LayerNorm",
    "LinearBlock", "MLP", "MultiScalePatchDiscriminator", "MunitLayerNorm", "PreActDownBlock",
    "PreActResBlock", "ReflectionPad", "ResBlock", "StyleAdaIN", "StyleEncoder",
    "UpsampleNearest", "VariationalResNetEncoder", "filter_response_norm", "init_weights",
    "latent_conv2d", "make_padding", "split_adain_params",
]
