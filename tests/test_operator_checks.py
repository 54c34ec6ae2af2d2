"""Each operator's argument checks are defined once (i2i_fast/ops/<family>/checks.py, mirrored
word for word by csrc/<family>/checks.h), and every entry point reaches them: a bad call raises
the same error, with the same message, from the Python definition, the compiled operator
(torch.ops.i2i_fast), the Triton operator (torch.ops.i2i_fast_triton) and the fake
implementation (what torch.compile and FakeTensor run).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

import i2i_fast.ops as ops
from i2i_fast.ops import triton_support
from i2i_fast.ops.filter_response_norm import checks as frn_checks
from i2i_fast.ops.gan_loss import checks as loss_checks
from i2i_fast.ops.gaussian_nll import checks as nll_checks
from i2i_fast.ops.latent_conv import checks as latent_checks
from i2i_fast.ops.normalization import checks as norm_checks
from i2i_fast.ops.output_conv import checks as output_conv_checks
from i2i_fast.ops.resampling import checks as resampling_checks

X = torch.randn(2, 3, 4, 5)
NC = torch.ones(2, 3)
C = torch.ones(3)
STATS_NC = torch.zeros(2, 3)
STATS_N = torch.zeros(2)
STATS_C = torch.zeros(3)
OUT = torch.randn(4, 1, 3, 3)
HEADS = torch.randn(4, 3)
Y = torch.tensor([0, 2, 1, 0])
POSITIONS = torch.zeros(1, 1, 2, 2, dtype=torch.uint8)  # block_max_forward's, factor 2

# The Python definition of each operator's checks, called with the operator's arguments.
DEFINITION = {
    "adain_forward": norm_checks.adain,
    "adain_backward": norm_checks.adain_backward,
    "instance_norm_forward": norm_checks.instance_norm,
    "instance_norm_backward": norm_checks.instance_norm_backward,
    "layer_norm_forward": norm_checks.layer_norm,
    "layer_norm_backward": norm_checks.layer_norm_backward,
    "batch_norm_forward": norm_checks.batch_norm,
    "batch_norm_backward": norm_checks.batch_norm_backward,
    "filter_response_norm_forward": frn_checks.filter_response_norm,
    "filter_response_norm_backward": frn_checks.filter_response_norm_backward,
    "filter_response_norm_double_backward": frn_checks.filter_response_norm_double_backward,
    "gan_loss": lambda *args: loss_checks.gan_loss(list(args[0]), *args[1:]),
    "gan_loss_backward": lambda g, outputs, *args: loss_checks.gan_loss_backward(
        g, list(outputs), *args),
    "r1_penalty": loss_checks.r1_penalty,
    "r1_penalty_backward": loss_checks.r1_penalty_backward,
    "gaussian_nll": nll_checks.gaussian_nll,
    "gaussian_nll_backward": nll_checks.gaussian_nll_backward,
    "gaussian_kl": nll_checks.gaussian_kl,
    "gaussian_kl_backward": nll_checks.gaussian_kl_backward,
    "reflection_pad": resampling_checks.reflection_pad,
    "block_max": resampling_checks.block_max,
    "block_max_forward": resampling_checks.block_max,
    "block_max_scatter": lambda *args: resampling_checks.block_max_route("block_max_scatter",
                                                                        *args),
    "block_max_gather": lambda *args: resampling_checks.block_max_route("block_max_gather", *args),
    "latent_conv2d_forward": latent_checks.latent_conv2d,
    "latent_conv2d_backward": latent_checks.latent_conv2d_backward,
    "latent_conv_transpose2d_forward": latent_checks.latent_conv_transpose2d,
    "latent_conv_transpose2d_backward": latent_checks.latent_conv_transpose2d_backward,
    "output_conv2d": output_conv_checks.output_conv2d,
    "output_conv2d_forward": output_conv_checks.output_conv2d,
    # the backward operator's last two arguments (per_sample_bias, output_mask) have no checks
    "output_conv2d_backward": lambda *args: output_conv_checks.output_conv2d_backward(*args[:7]),
}

# Compiled operators with no Triton counterpart: the resampling family's reflection_pad and
# block_max (the Triton backend's max pooling has its own operator names), FRN's double
# backward (the Triton backend differentiates its FRN gradient in plain PyTorch) and
# output_conv2d's three (no Triton implementation: the "cuda" backend serves on a GPU).
WITHOUT_TRITON = ("reflection_pad", "block_max", "filter_response_norm_double_backward",
                  "output_conv2d", "output_conv2d_forward", "output_conv2d_backward")

# (operator, arguments): each a bad call.
BAD_CALLS = {
    # normalization: x
    "x rank": ("adain_forward", (torch.randn(2, 3), NC, NC, 1e-5, "none", 0.2)),
    "x dtype": ("instance_norm_forward", (X.long(), None, None, 1e-5, "none", 0.2)),
    "x empty": ("layer_norm_forward", (torch.randn(2, 3, 0), None, None, 1e-5, "munit", "none",
                                       0.2)),
    # normalization: parameters
    "weight shape": ("adain_forward", (X, torch.ones(5, 3), NC, 1e-5, "none", 0.2)),
    "bias shape": ("instance_norm_forward", (X, C, torch.ones(4), 1e-5, "none", 0.2)),
    "weight dtype": ("adain_forward", (X, NC.double(), NC, 1e-5, "none", 0.2)),
    "bias dtype, low precision": ("layer_norm_forward", (X.half(), C.half(), C.bfloat16(), 1e-5,
                                                         "standard", "none", 0.2)),
    # normalization: options
    "activation": ("instance_norm_forward", (X, None, None, 1e-5, "swish", 0.2)),
    "style": ("layer_norm_forward", (X, C, C, 1e-5, "drit", "none", 0.2)),
    "eps negative": ("adain_forward", (X, NC, NC, -1.0, "relu", 0.2)),
    "eps nan": ("instance_norm_forward", (X, C, None, math.nan, "relu", 0.2)),
    "eps inf": ("layer_norm_forward", (X, None, None, math.inf, "munit", "relu", 0.2)),
    # normalization: backward operators
    "backward x": ("adain_backward", (X, torch.randn(2, 3), NC, NC, STATS_NC, STATS_NC, 1e-5,
                                      "none", 0.2)),
    "grad_out shape": ("adain_backward", (torch.randn(2, 3, 4, 4), X, NC, NC, STATS_NC, STATS_NC,
                                          1e-5, "none", 0.2)),
    "grad_out dtype": ("instance_norm_backward", (X.long(), X, None, None, STATS_NC, STATS_NC,
                                                  1e-5, "none", 0.2)),
    "mean shape": ("instance_norm_backward", (X, X, C, C, STATS_N, STATS_NC, 1e-5, "relu", 0.2)),
    "rstd shape": ("layer_norm_backward", (X, X, None, None, STATS_N, STATS_NC, 1e-5, "munit",
                                           "none", 0.2)),
    "rstd dtype": ("layer_norm_backward", (X, X, None, None, STATS_N, STATS_N.long(), 1e-5,
                                           "standard", "none", 0.2)),
    "backward style": ("layer_norm_backward", (X, X, None, None, STATS_N, STATS_N, 1e-5, "x",
                                               "none", 0.2)),
    # batch_norm
    "bn x rank": ("batch_norm_forward", (torch.randn(2, 3, 4), None, None, 1e-5, "relu", 0.2)),
    "bn one value per channel": ("batch_norm_forward", (torch.randn(1, 3, 1, 1), C, C, 1e-5,
                                                        "relu", 0.2)),
    "bn x dtype": ("batch_norm_forward", (X.int(), C, C, 1e-5, "relu", 0.2)),
    "bn x empty": ("batch_norm_forward", (torch.randn(0, 3, 2, 2), None, None, 1e-5, "none",
                                          0.2)),
    "bn weight shape": ("batch_norm_forward", (X, torch.ones(4), None, 1e-5, "relu", 0.2)),
    "bn bias dtype": ("batch_norm_forward", (X, C, C.double(), 1e-5, "relu", 0.2)),
    "bn eps nan": ("batch_norm_forward", (X, C, C, math.nan, "relu", 0.2)),
    "bn activation": ("batch_norm_forward", (X, C, C, 1e-5, "gelu", 0.2)),
    "bn backward x": ("batch_norm_backward", (X, X[0], C, C, STATS_C, STATS_C, 1e-5, "relu",
                                              0.2)),
    "bn grad_out shape": ("batch_norm_backward", (X[:1], X, C, C, STATS_C, STATS_C, 1e-5, "relu",
                                                  0.2)),
    "bn mean dtype": ("batch_norm_backward", (X, X, C, C, STATS_C.long(), STATS_C, 1e-5, "relu",
                                              0.2)),
    "bn var shape": ("batch_norm_backward", (X, X, None, None, STATS_C, STATS_NC, 1e-5, "none",
                                             0.2)),
    # filter_response_norm
    "frn x rank": ("filter_response_norm_forward", (torch.randn(2, 3, 4), C, C, C, 1e-6)),
    "frn x dtype": ("filter_response_norm_forward", (X.int(), C, C, C, 1e-6)),
    "frn x empty": ("filter_response_norm_forward", (torch.randn(2, 3, 0, 4), C, C, C, 1e-6)),
    "frn weight shape": ("filter_response_norm_forward", (X, NC, C, C, 1e-6)),
    "frn bias dtype": ("filter_response_norm_forward", (X, C, C.double(), C, 1e-6)),
    "frn tau shape": ("filter_response_norm_forward", (X, C, C, torch.ones(1, 3, 1, 1), 1e-6)),
    "frn tau dtype, low precision": ("filter_response_norm_forward", (X.bfloat16(), C, C,
                                                                      C.half(), 1e-6)),
    "frn eps zero": ("filter_response_norm_forward", (X, C, C, C, 0.0)),
    "frn eps negative": ("filter_response_norm_forward", (X, C, C, C, -1e-6)),
    "frn eps nan": ("filter_response_norm_forward", (X, C, C, C, math.nan)),
    "frn backward x": ("filter_response_norm_backward", (X, X[0], C, C, C, STATS_NC, 1e-6)),
    "frn backward eps": ("filter_response_norm_backward", (X, X, C, C, C, STATS_NC, 0.0)),
    "frn grad_out shape": ("filter_response_norm_backward", (X[:1], X, C, C, C, STATS_NC, 1e-6)),
    "frn grad_out dtype": ("filter_response_norm_backward", (X.long(), X, C, C, C, STATS_NC,
                                                             1e-6)),
    "frn rstd shape": ("filter_response_norm_backward", (X, X, C, C, C, STATS_N, 1e-6)),
    "frn rstd dtype": ("filter_response_norm_backward", (X, X, C, C, C, STATS_NC.int(), 1e-6)),
    "frn double backward x": ("filter_response_norm_double_backward", (X, X, X.int(), C, C, C,
                                                                       STATS_NC, 1e-6)),
    "frn double backward rstd": ("filter_response_norm_double_backward", (X, X, X, C, C, C,
                                                                          STATS_N, 1e-6)),
    "frn grad_grad_x shape": ("filter_response_norm_double_backward", (X[:, :2], X, X, C, C, C,
                                                                       STATS_NC, 1e-6)),
    "frn grad_grad_x dtype": ("filter_response_norm_double_backward", (X.long(), X, X, C, C, C,
                                                                       STATS_NC, 1e-6)),
    "frn grad_grad_x device": ("filter_response_norm_double_backward", (X.to("meta"), X, X, C, C,
                                                                        C, STATS_NC, 1e-6)),
    # gan_loss: outputs
    "outputs dtype": ("gan_loss", ([OUT.long()], "lsgan", "real", 0.0, None, "mean")),
    "outputs batch": ("gan_loss", ([OUT, torch.randn(2, 1)], "lsgan", "real", 0.0, None,
                                   "mean")),
    "outputs dtypes": ("gan_loss", ([OUT, OUT.double()], "hinge", "fake", 0.0, None, "sum")),
    "outputs rank": ("gan_loss", ([OUT, torch.tensor(1.0)], "wgan", "real", 0.0, None, "mean")),
    "outputs empty": ("gan_loss", ([OUT, torch.randn(4, 0)], "nsgan", "real", 0.0, None,
                                   "none")),
    "outputs heads": ("gan_loss", ([torch.randn(4)], "nsgan", "real", 0.0, Y, "mean")),
    # gan_loss: loss function and reduction
    "mode": ("gan_loss", ([OUT], "bce", "real", 0.0, None, "mean")),
    "target": ("gan_loss", ([OUT], "lsgan", "true", 0.0, None, "mean")),
    "label inf": ("gan_loss", ([OUT], "lsgan", "label", math.inf, None, "mean")),
    "label nan": ("gan_loss", ([OUT], "nsgan", "label", math.nan, None, "mean")),
    "label for hinge": ("gan_loss", ([OUT], "hinge", "label", 0.5, None, "mean")),
    "label for wgan": ("gan_loss", ([OUT], "wgan", "label", 1e-05, None, "sum")),
    "label above 1": ("gan_loss", ([OUT], "sigmoid_bce", "label", 1.0000001, None, "mean")),
    "label below 0": ("gan_loss", ([OUT], "sigmoid_bce", "label", -0.5, None, "none")),
    "label inf bce": ("gan_loss", ([OUT], "sigmoid_bce", "label", -math.inf, None, "sum")),
    "reduction": ("gan_loss", ([OUT], "lsgan", "real", 0.0, None, "avg")),
    # gan_loss: domain
    "domain dtype": ("gan_loss", ([HEADS], "nsgan", "real", 0.0, Y.float(), "mean")),
    "domain shape": ("gan_loss", ([HEADS], "nsgan", "real", 0.0, Y[:2], "mean")),
    "domain rank": ("gan_loss", ([HEADS], "nsgan", "real", 0.0, Y[:, None], "mean")),
    # gan_loss_backward
    "backward outputs": ("gan_loss_backward", (torch.tensor(1.0), [OUT.int()], "lsgan", "real",
                                               0.0, None, "mean")),
    "backward mode": ("gan_loss_backward", (torch.tensor(1.0), [OUT], "ls", "real", 0.0, None,
                                            "mean")),
    "grad_loss none": ("gan_loss_backward", (torch.ones(3), [OUT], "lsgan", "real", 0.0, None,
                                             "none")),
    "grad_loss mean": ("gan_loss_backward", (torch.ones(4), [OUT], "lsgan", "fake", 0.0, None,
                                             "mean")),
    "grad_loss dtype": ("gan_loss_backward", (torch.tensor(1), [OUT], "lsgan", "fake", 0.0,
                                              None, "sum")),
    # r1_penalty
    "grads dtype": ("r1_penalty", (X.long(), 1.0, "mean")),
    "grads rank": ("r1_penalty", (torch.tensor(1.0), 1.0, "mean")),
    "grads empty": ("r1_penalty", (torch.randn(2, 0, 3), 1.0, "mean")),
    "weight nan": ("r1_penalty", (X, math.nan, "mean")),
    "weight inf": ("r1_penalty", (X, -math.inf, "sum")),
    "r1 reduction": ("r1_penalty", (X, 0.5, "batchmean")),
    "r1 grad_loss": ("r1_penalty_backward", (torch.ones(3), X, 1.0, "none")),
    "r1 backward weight": ("r1_penalty_backward", (torch.tensor(1.0), X, math.nan, "mean")),
    # gaussian_nll
    "nll z dtype": ("gaussian_nll", (NC.long(), NC, NC, "batch_sum")),
    "nll z rank": ("gaussian_nll", (torch.tensor(1.0), torch.tensor(1.0), torch.tensor(1.0),
                                    "sum")),
    "nll z empty": ("gaussian_nll", (torch.ones(2, 0), torch.ones(2, 0), torch.ones(2, 0),
                                     "mean")),
    "nll mu shape": ("gaussian_nll", (NC, torch.ones(2, 4), NC, "batch_sum")),
    "nll logvar shape": ("gaussian_nll", (NC, NC, C, "batch_sum")),
    "nll mu dtype": ("gaussian_nll", (NC, NC.double(), NC, "batch_sum")),
    "nll logvar dtype": ("gaussian_nll", (NC.half(), NC.half(), NC.bfloat16(), "sum")),
    "nll reduction": ("gaussian_nll", (NC, NC, NC, "none")),
    "nll backward z": ("gaussian_nll_backward", (torch.tensor(1.0), NC.int(), NC, NC,
                                                 "batch_sum")),
    "nll grad_loss shape": ("gaussian_nll_backward", (torch.ones(2), NC, NC, NC, "batch_sum")),
    "nll grad_loss dtype": ("gaussian_nll_backward", (torch.tensor(1), NC, NC, NC, "mean")),
    "nll backward reduction": ("gaussian_nll_backward", (torch.tensor(1.0), NC, NC, NC,
                                                         "batchsum")),
    # gaussian_kl
    "kl mu dtype": ("gaussian_kl", (NC.long(), NC, "sum")),
    "kl mu rank": ("gaussian_kl", (torch.tensor(1.0), torch.tensor(1.0), "sum")),
    "kl mu empty": ("gaussian_kl", (torch.ones(0, 3), torch.ones(0, 3), "batch_sum")),
    "kl logvar shape": ("gaussian_kl", (NC, C, "sum")),
    "kl logvar dtype": ("gaussian_kl", (NC.bfloat16(), NC.half(), "mean")),
    "kl logvar device": ("gaussian_kl", (NC, torch.ones(2, 3, device="meta"), "sum")),
    "kl reduction": ("gaussian_kl", (NC, NC, "none")),
    "kl backward mu": ("gaussian_kl_backward", (torch.tensor(1.0), NC.int(), NC, "sum")),
    "kl backward logvar shape": ("gaussian_kl_backward", (torch.tensor(1.0), NC, NC.t(), "sum")),
    "kl grad_loss shape": ("gaussian_kl_backward", (torch.ones(2), NC, NC, "sum")),
    "kl grad_loss dtype": ("gaussian_kl_backward", (torch.tensor(1), NC, NC, "mean")),
    "kl grad_loss device": ("gaussian_kl_backward", (torch.tensor(1.0, device="meta"), NC, NC,
                                                     "batch_sum")),
    "kl backward reduction": ("gaussian_kl_backward", (torch.tensor(1.0), NC, NC, "Sum")),
    # reflection_pad
    "pad x rank": ("reflection_pad", (torch.zeros(2, 3, 4), 1)),
    "pad x dtype": ("reflection_pad", (torch.zeros(1, 1, 4, 4, dtype=torch.int32), 1)),
    "pad negative": ("reflection_pad", (torch.zeros(1, 1, 4, 4), -1)),
    "pad too large": ("reflection_pad", (torch.zeros(1, 1, 3, 8), 3)),
    # block_max (ops.max_pool)
    "max x rank": ("block_max", (torch.zeros(2, 3, 4), 2)),
    "max x dtype": ("block_max_forward", (torch.zeros(1, 1, 4, 4, dtype=torch.int64), 2)),
    "max factor": ("block_max_forward", (torch.zeros(1, 1, 4, 4), 0)),
    "max x too small": ("block_max", (torch.zeros(1, 2, 5, 2), 3)),
    "max scatter grad dtype": ("block_max_scatter", (torch.zeros(1, 1, 2, 2).int(), POSITIONS, 2,
                                                     4, 4)),
    "max scatter factor": ("block_max_scatter", (torch.zeros(1, 1, 2, 2), POSITIONS, 0, 4, 4)),
    "max scatter out size": ("block_max_scatter", (torch.zeros(1, 1, 2, 2), POSITIONS, 2, 6, 4)),
    "max gather out size": ("block_max_gather", (torch.zeros(1, 1, 5, 4), POSITIONS, 2, 2, 3)),
    "max gather index dtype": ("block_max_gather", (torch.zeros(1, 1, 4, 4), POSITIONS.float(), 2,
                                                    2, 2)),
    "max scatter index shape": ("block_max_scatter", (torch.zeros(1, 1, 2, 2), POSITIONS[..., :1],
                                                      2, 4, 4)),
    "max gather index device": ("block_max_gather", (torch.zeros(1, 1, 4, 4),
                                                     POSITIONS.to("meta"), 2, 2, 2)),
    # latent_conv2d (more in tests/test_latent_conv2d.py)
    "latent x dtype": ("latent_conv2d_forward", (X.long(), NC, torch.randn(2, 6, 3, 3), None, 1,
                                                 1, "zeros")),
    "latent z batch": ("latent_conv2d_forward", (X, torch.ones(3, 3), torch.randn(2, 6, 3, 3),
                                                 None, 1, 1, "zeros")),
    "latent padding_mode": ("latent_conv2d_forward", (X, NC, torch.randn(2, 6, 3, 3), None, 1,
                                                      1, "circular")),
    "latent grad shape": ("latent_conv2d_backward", (torch.randn(2, 2, 3, 3), X, NC,
                                                     torch.randn(2, 6, 3, 3), 1, 1, "zeros",
                                                     [True] * 4)),
    "latent weight dtype": ("latent_conv2d_forward", (X, NC, torch.randn(2, 6, 3, 3).double(),
                                                      None, 1, 1, "zeros")),
    "latent x empty": ("latent_conv2d_forward", (X[:, :, :0], NC, torch.randn(2, 6, 3, 3), None,
                                                 1, 2, "zeros")),
    # latent_conv_transpose2d (more in tests/test_latent_conv_transpose2d.py)
    "latentT x dtype": ("latent_conv_transpose2d_forward", (X.int(), NC, torch.randn(6, 2, 3, 3),
                                                            None, 2, 1, 1)),
    "latentT weight shape": ("latent_conv_transpose2d_forward", (X, NC, torch.randn(2, 6, 3, 3),
                                                                 None, 2, 1, 1)),
    "latentT bias": ("latent_conv_transpose2d_forward", (X, NC, torch.randn(6, 2, 3, 3),
                                                         torch.randn(6), 2, 1, 1)),
    "latentT output_padding": ("latent_conv_transpose2d_forward", (X, NC, torch.randn(6, 2, 3, 3),
                                                                   None, 2, 1, 2)),
    "latentT output size": ("latent_conv_transpose2d_forward", (X, NC, torch.randn(6, 2, 3, 3),
                                                                None, 1, 3, 0)),
    "latentT grad shape": ("latent_conv_transpose2d_backward", (torch.randn(2, 2, 8, 10), X, NC,
                                                                torch.randn(6, 2, 3, 3), 2, 1, 0,
                                                                [True] * 4)),
    # output_conv2d (more in tests/test_output_conv2d.py)
    "output x rank": ("output_conv2d", (X[0], torch.randn(3, 3, 3, 3), None, 1, "zeros",
                                        "none")),
    "output x dtype": ("output_conv2d_forward", (X.long(), torch.randn(3, 3, 3, 3), None, 1,
                                                 "zeros", "none")),
    "output weight shape": ("output_conv2d_forward", (X, torch.randn(3, 2, 3, 3), None, 1,
                                                      "zeros", "none")),
    "output bias shape": ("output_conv2d_forward", (X, torch.randn(3, 3, 3, 3), torch.ones(3, 3),
                                                    1, "zeros", "tanh")),
    "output padding": ("output_conv2d", (X, torch.randn(3, 3, 3, 3), None, -2, "reflect",
                                         "none")),
    "output padding_mode": ("output_conv2d_forward", (X, torch.randn(3, 3, 3, 3), None, 1,
                                                      "replicate", "none")),
    "output activation": ("output_conv2d", (X, torch.randn(3, 3, 3, 3), C, 1, "zeros", "relu")),
    "output reflect padding": ("output_conv2d_forward", (X, torch.randn(3, 3, 3, 3), None, 4,
                                                         "reflect", "tanh")),
    "output weight device": ("output_conv2d_forward", (X, torch.randn(3, 3, 3, 3, device="meta"),
                                                       None, 1, "zeros", "none")),
    "output bias dtype": ("output_conv2d_forward", (X, torch.randn(3, 3, 3, 3), NC.double(), 1,
                                                    "zeros", "none")),
    "output kernel": ("output_conv2d_forward", (X, torch.randn(3, 3, 7, 3), None, 1, "zeros",
                                                "none")),
    "output x empty": ("output_conv2d_forward", (X[:, :, :, :0], torch.randn(3, 3, 1, 1), None,
                                                 1, "zeros", "none")),
    "output grad shape": ("output_conv2d_backward", (torch.randn(2, 3, 4, 4), X,
                                                     torch.randn(3, 3, 3, 3), None, 1, "zeros",
                                                     "none", False, [True] * 3)),
    "output grad dtype": ("output_conv2d_backward", (torch.randn(2, 3, 4, 5).half(), X,
                                                     torch.randn(3, 3, 3, 3), None, 1, "zeros",
                                                     "none", True, [True] * 3)),
    "output out missing": ("output_conv2d_backward", (torch.randn(2, 3, 4, 5), X,
                                                      torch.randn(3, 3, 3, 3), None, 1, "reflect",
                                                      "tanh", False, [True] * 3)),
    "output backward weight": ("output_conv2d_backward", (torch.randn(2, 3, 4, 5), X,
                                                          torch.randn(3, 3, 3), None, 1, "zeros",
                                                          "none", False, [True] * 3)),
}


def _error(call) -> tuple[type, str]:
    with pytest.raises(Exception) as caught:
        call()
    return type(caught.value), str(caught.value)


def _fake_args(mode: FakeTensorMode, args):
    def fake(a):
        if isinstance(a, torch.Tensor):
            return mode.from_tensor(a)
        if isinstance(a, list):
            return [fake(t) for t in a]
        return a

    return tuple(fake(a) for a in args)


def _entry_points(op: str, args) -> dict:
    points = {"python definition": lambda: DEFINITION[op](*args)}
    if ops.get_backend("cpu").unavailable_reason() is None:
        compiled = getattr(torch.ops.i2i_fast, op)
        points["compiled operator"] = lambda: compiled(*args)

        def through_fake():
            with FakeTensorMode() as mode:
                compiled(*_fake_args(mode, args))

        points["fake implementation"] = through_fake
    if triton_support.state().unavailable_reason is None and op not in WITHOUT_TRITON:
        triton_op = getattr(torch.ops.i2i_fast_triton, op)
        points["triton operator"] = lambda: triton_op(*args)
    return points


@pytest.mark.parametrize("case", BAD_CALLS)
def test_every_entry_point_raises_the_same_error(case):
    op, args = BAD_CALLS[case]
    errors = {name: _error(call) for name, call in _entry_points(op, args).items()}
    expected = errors["python definition"]
    assert expected[0] in (TypeError, ValueError), expected
    assert expected[1].startswith(op.removesuffix("_forward") + ": "), expected
    for name, error in errors.items():
        assert error == expected, f"{name}: {error} != {expected}"


def test_the_entry_points_are_all_checked_somewhere():
    """Every compiled device operator of the checked families has bad calls above."""
    assert set(DEFINITION) == {op for op, _ in BAD_CALLS.values()}


@pytest.mark.parametrize("call, message", [
    (lambda g: loss_checks.gan_loss_backward(g, [OUT], "lsgan", "real", 0.0, None, "sum"),
     "gan_loss_backward: grad_loss: expected {} (that of outputs[0]), got {}"),
    (lambda g: loss_checks.r1_penalty_backward(g, X, 1.0, "mean"),
     "r1_penalty_backward: grad_loss: expected {} (that of grads), got {}"),
    (lambda g: nll_checks.gaussian_nll_backward(g, NC, NC, NC, "batch_sum"),
     "gaussian_nll_backward: grad_loss: expected {} (that of z), got {}"),
    (lambda g: nll_checks.gaussian_kl_backward(g, NC, NC, "batch_sum"),
     "gaussian_kl_backward: grad_loss: expected {} (that of mu), got {}"),
])
def test_the_losses_check_their_upstream_gradient_in_one_wording(call, message):
    """gan_loss, r1_penalty, gaussian_nll and gaussian_kl check grad_loss with one function (loss_grad in
    i2i_fast/ops/checks.py and csrc/common/checks.h): the scalar names the reduction, the device
    names the input it must share."""
    with pytest.raises(ValueError) as caught:
        call(torch.tensor(1.0, device="meta"))
    assert str(caught.value) == message.format("device cpu", "meta")
    op = message.split(":")[0]
    reduction = {"gan_loss_backward": "sum", "r1_penalty_backward": "mean"}.get(op, "batch_sum")
    with pytest.raises(ValueError) as caught:
        call(torch.ones(2))
    assert str(caught.value) == (f"{op}: grad_loss: expected a scalar (reduction "
                                 f"'{reduction}'), got shape (2,)")


@pytest.mark.parametrize("value, text", [
    (1e-05, "1e-05"), (-1.0, "-1.0"), (0.5, "0.5"), (1e16, "1e+16"), (123456.0, "123456.0"),
    (1.5e-4, "0.00015"), (0.0, "0.0"), (-0.0, "-0.0"), (2.0**0.5, "1.4142135623730951"),
    (1.7976931348623157e308, "1.7976931348623157e+308"), (5e-324, "5e-324"),
    (math.inf, "inf"), (-math.inf, "-inf"), (math.nan, "nan"),
])
def test_numbers_read_as_python_prints_them(value, text):
    """csrc/common/checks.h prints a float as Python's str()."""
    assert str(value) == text
    if ops.get_backend("cpu").unavailable_reason() is not None:
        pytest.skip("the compiled extension is not loaded")
    # A numeric label where the mode defines none repeats the label; a non-finite one is refused.
    with pytest.raises(ValueError) as caught:
        torch.ops.i2i_fast.gan_loss([OUT], "hinge", "label", value, None, "mean")
    finite = math.isfinite(value)
    expected = (f"gan_loss: target: a numeric label ({text}) is only defined" if finite
                else f"gan_loss: target: expected a finite number, got {text}")
    assert str(caught.value).startswith(expected), str(caught.value)
