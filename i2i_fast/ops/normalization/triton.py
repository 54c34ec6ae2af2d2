"""The Triton operators of the normalization family: launch plans, launches, and their
registration as torch operators ``i2i_fast_triton::*`` (the kernels are in triton_kernels.py).

Operators (the schemas of the compiled ``i2i_fast::*_forward`` / ``*_backward``):

    adain_forward(x, weight, bias, eps, activation, negative_slope) -> (out, mean, rstd)
    adain_backward(grad_out, x, weight, bias, mean, rstd, eps, activation, negative_slope)
        -> (grad_x, grad_weight, grad_bias)
    instance_norm_forward / instance_norm_backward  (weight, bias optional, per channel)
    layer_norm_forward / layer_norm_backward        (+ style "munit" or "standard")
    batch_norm_forward(x, weight, bias, eps, activation, negative_slope) -> (out, mean, var)
    batch_norm_backward(grad_out, x, weight, bias, mean, var, eps, activation, negative_slope)
        (per-channel batch statistics (C,): the instance kernels' split path, with the partial
        moments and gradient sums of every (n, c) merged per channel in float64 in between)

Each runs its operator's checks (checks.py, as the compiled kernels do) and has the fake
implementation of its schema (fake.py). The forward operators are differentiable (their
backward calls the backward operators, which are not: no double backward). ``adain``,
``instance_norm`` and ``layer_norm`` below are what the "triton" backend runs: the forward
operator's first output.

x is read in place when it is contiguous or channels-last (other strides go through a
contiguous copy), and the output keeps x's layout like the CPU kernels. dtypes: float16,
bfloat16, float32 (float32 accumulation) and float64 (float64 accumulation); weight/bias in x's
dtype or float32 for a 16-bit x.
"""

import dataclasses
from typing import Optional

import torch
from torch.library import wrap_triton

from .. import triton_support as ts
from . import checks, fake
from .fake import is_channels_last_dense, output_like, stat_dtype
from .triton_kernels import (
    input_grad_kernel,
    instance_backward_kernel,
    instance_forward_kernel,
    merge_partial_moments_kernel,
    normalize_kernel,
    partial_grad_sums_kernel,
    partial_moments_kernel,
)

ACTIVATION_CODES = {"none": 0, "relu": 1, "leaky_relu": 2}

# ----- launch plan -----------------------------------------------------------------------------

TILE_ELEMENTS = 4096  # values of x a program holds at once (16 KiB of float32)
CHANNELS_LAST_BLOCK_C = 64  # channels of a channels-last tile: 128-256 contiguous bytes per row
CHANNELS_LAST_MIN_BLOCK_C = 16  # narrowest channels-last tile (64 contiguous bytes of float32)
MIN_SPLIT_ELEMENTS = 4096  # a program of a split reduction covers at least this many values
MAX_SPLITS = 64
LONG_INDEX_ELEMENTS = 2**31  # samples this large use 64-bit offsets inside the sample


@dataclasses.dataclass(frozen=True)
class LaunchPlan:
    """How the (N, C, S) problem is cut into programs.

    A program covers sample n, channels [ct*block_c, (ct+1)*block_c) (ct < c_tiles) and spatial
    positions [j*split_len, (j+1)*split_len) (j < splits), in chunks of block_s.
    """

    block_c: int
    block_s: int
    c_tiles: int
    splits: int
    split_len: int
    long_index: bool
    num_warps: int

    def programs(self, n: int) -> int:
        return n * self.c_tiles * self.splits


def plan_launch(n: int, c: int, s: int, channels_last: bool, min_programs: int) -> LaunchPlan:
    """Tile sizes and split of the spatial reduction for an (n, c, s) problem.

    Tiles hold up to TILE_ELEMENTS values, contiguous along S (NCHW) or C (channels-last). When
    that gives fewer than `min_programs` programs, narrower channel tiles come first, then the
    spatial range is split (each split keeping at least MIN_SPLIT_ELEMENTS values).
    """
    n, c, s = int(n), int(c), int(s)
    np2 = ts.next_power_of_2
    if channels_last:
        block_c = min(np2(c), CHANNELS_LAST_BLOCK_C)
        floor_c = min(block_c, CHANNELS_LAST_MIN_BLOCK_C)
    else:
        block_c = min(np2(c), max(1, TILE_ELEMENTS // min(np2(s), TILE_ELEMENTS)))
        floor_c = 1
    while block_c > floor_c and n * ts.cdiv(c, block_c) < min_programs:
        block_c //= 2
    c_tiles = ts.cdiv(c, block_c)
    block_s = min(np2(s), max(1, TILE_ELEMENTS // block_c))
    programs = n * c_tiles
    splits = 1
    if programs < min_programs:
        by_size = min(block_c, c) * s // MIN_SPLIT_ELEMENTS
        splits = max(1, min(ts.cdiv(min_programs, programs), by_size, MAX_SPLITS))
    if splits > 1:
        split_len = ts.cdiv(s, splits)
        block_s = min(block_s, np2(split_len))
        split_len = ts.cdiv(split_len, block_s) * block_s
        splits = ts.cdiv(s, split_len)
    else:
        split_len = s
    return LaunchPlan(block_c=block_c, block_s=block_s, c_tiles=c_tiles, splits=splits,
                      split_len=split_len, long_index=c * s >= LONG_INDEX_ELEMENTS,
                      num_warps=ts.num_warps_for(block_c * block_s))


# ----- host side: layouts, launches ------------------------------------------------------------


def _dense(x: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """x in a layout the kernels read (x itself if contiguous or channels-last), and whether
    that layout is channels-last."""
    if x.is_contiguous():
        return x, False
    if is_channels_last_dense(x):
        return x, True
    return x.contiguous(), False


def _in_layout(t: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """t (same shape as x) in x's kernel layout; no copy when it already is."""
    if not channels_last:
        return t.contiguous()
    if is_channels_last_dense(t):
        return t
    perm = [0, *range(2, t.dim()), 1]
    inverse = [perm.index(i) for i in range(t.dim())]
    return t.permute(perm).contiguous().permute(inverse)


@dataclasses.dataclass(frozen=True)
class _Problem:
    """x in kernel layout and the arguments every tile kernel's launch takes from it."""

    x: torch.Tensor
    channels_last: bool
    n: int
    c: int
    s: int
    acc: torch.dtype
    plan: LaunchPlan
    tile: tuple  # C, S, c_stride, s_stride, c_tiles: the tile kernels' geometry arguments
    split: tuple  # splits, split_len: the split kernels' arguments after the geometry
    meta: dict  # BLOCK_C, BLOCK_S, LONG_INDEX and num_warps of every tile kernel
    one_chunk: bool  # the whole spatial extent fits in one chunk of BLOCK_S

    @property
    def grid(self) -> tuple[int]:
        return (self.plan.programs(self.n),)

    def empty(self, *shape: int) -> torch.Tensor:
        """An uninitialised tensor of the accumulation dtype on x's device."""
        return torch.empty(shape, dtype=self.acc, device=self.x.device)


def _problem(x: torch.Tensor) -> _Problem:
    xd, cl = _dense(x)
    n, c = int(xd.shape[0]), int(xd.shape[1])
    s = 1
    for d in xd.shape[2:]:
        s *= int(d)
    plan = plan_launch(n, c, s, cl, ts.min_programs(xd.device))
    c_stride, s_stride = (1, c) if cl else (s, 1)
    return _Problem(xd, cl, n, c, s, stat_dtype(xd), plan,
                    tile=(c, s, c_stride, s_stride, plan.c_tiles),
                    split=(plan.splits, plan.split_len),
                    meta=dict(BLOCK_C=plan.block_c, BLOCK_S=plan.block_s,
                              LONG_INDEX=plan.long_index, num_warps=plan.num_warps),
                    one_chunk=s <= plan.block_s)


@dataclasses.dataclass(frozen=True)
class _Params:
    """weight and bias as the kernels take them: pointers (an unread dummy for an absent one),
    strides over n (C for per-sample (N, C) parameters, 0 for per-channel (C,) ones), and the
    HAS_W / HAS_B constants."""

    pointers: tuple
    nstrides: tuple
    present: dict


def _params(weight: Optional[torch.Tensor], bias: Optional[torch.Tensor],
            dummy: torch.Tensor) -> _Params:
    def one(p):
        if p is None:
            return dummy, 0
        return p.contiguous(), int(p.shape[1]) if p.dim() == 2 else 0

    (w, w_nstride), (b, b_nstride) = one(weight), one(bias)
    return _Params((w, b), (w_nstride, b_nstride),
                   dict(HAS_W=weight is not None, HAS_B=bias is not None))


def _forward(x, weight, bias, eps: float, activation: str, negative_slope: float, layer: bool,
             munit_std: bool):
    p = _problem(x)
    prm = _params(weight, bias, p.x)
    act = ACTIVATION_CODES[activation]
    acc_fp64 = p.acc == torch.float64
    y = torch.empty_like(p.x)
    mean = p.empty(p.n) if layer else p.empty(p.n, p.c)
    rstd = torch.empty_like(mean)
    if not layer and p.plan.splits == 1:
        wrap_triton(instance_forward_kernel)[p.grid](
            p.x, y, *prm.pointers, mean, rstd, *p.tile, *prm.nstrides, eps, negative_slope,
            ACTIVATION=act, ACC_FP64=acc_fp64, ONE_CHUNK=p.one_chunk, **prm.present, **p.meta)
        return y, mean, rstd
    pmean = p.empty(p.n, p.c, p.plan.splits)
    pm2 = torch.empty_like(pmean)
    wrap_triton(partial_moments_kernel)[p.grid](p.x, pmean, pm2, *p.tile, *p.split, **p.meta)
    parts = p.c * p.plan.splits if layer else p.plan.splits
    block_p = min(ts.next_power_of_2(parts), 1024)
    wrap_triton(merge_partial_moments_kernel)[(p.n if layer else p.n * p.c,)](
        pmean, pm2, mean, rstd, parts, p.s, *p.split, eps, MUNIT_STD=munit_std,
        ACC_FP64=acc_fp64, BLOCK_P=block_p, num_warps=ts.num_warps_for(block_p))
    wrap_triton(normalize_kernel)[p.grid](
        p.x, y, *prm.pointers, mean, rstd, *p.tile, *p.split, *prm.nstrides, negative_slope,
        ACTIVATION=act, LAYER=layer, **prm.present, **p.meta)
    return y, mean, rstd


def _param_grad(param: Optional[torch.Tensor], per_nc: torch.Tensor, x: torch.Tensor):
    """The gradient of a weight/bias from per-(n, c) sums: itself for (N, C) parameters, summed
    over n for (C,) ones (and for an absent one, of x's dtype, as the CPU kernels)."""
    if param is not None and param.dim() == 2:
        return per_nc.to(param.dtype)
    return per_nc.sum(0).to(param.dtype if param is not None else x.dtype)


def _backward(grad_out, x, weight, bias, mean, rstd, eps: float, activation: str,
              negative_slope: float, layer: bool, munit_std: bool):
    p = _problem(x)
    prm = _params(weight, bias, p.x)
    act = ACTIVATION_CODES[activation]
    dy = _in_layout(grad_out.to(p.x.dtype), p.channels_last)
    dx = torch.empty_like(p.x)
    mean = mean.to(p.acc).contiguous()
    rstd = rstd.to(p.acc).contiguous()
    if not layer and p.plan.splits == 1:
        sum_g = p.empty(p.n, p.c)
        sum_gx = torch.empty_like(sum_g)
        wrap_triton(instance_backward_kernel)[p.grid](
            p.x, dy, dx, *prm.pointers, mean, rstd, sum_g, sum_gx, *p.tile, *prm.nstrides,
            negative_slope, ACTIVATION=act, ONE_CHUNK=p.one_chunk, **prm.present, **p.meta)
    else:
        psum_g = p.empty(p.n, p.c, p.plan.splits)
        psum_gx = torch.empty_like(psum_g)
        wrap_triton(partial_grad_sums_kernel)[p.grid](
            p.x, dy, *prm.pointers, mean, rstd, psum_g, psum_gx, *p.tile, *p.split,
            *prm.nstrides, negative_slope, ACTIVATION=act, LAYER=layer, **prm.present, **p.meta)
        sum_g, sum_gx = psum_g.sum(2), psum_gx.sum(2)
        # Group sums of dxhat = g * w and dxhat * xhat, indexed like mean/rstd.
        w_acc = weight.to(p.acc) if weight is not None else None
        gsum_dxhat = sum_g if w_acc is None else sum_g * w_acc
        gsum_dxhat_xhat = sum_gx if w_acc is None else sum_gx * w_acc
        if layer:
            gsum_dxhat, gsum_dxhat_xhat = gsum_dxhat.sum(1), gsum_dxhat_xhat.sum(1)
        count = p.c * p.s if layer else p.s
        wrap_triton(input_grad_kernel)[p.grid](
            p.x, dy, dx, *prm.pointers, mean, rstd, gsum_dxhat.contiguous(),
            gsum_dxhat_xhat.contiguous(), *p.tile, *p.split, *prm.nstrides, count, eps,
            negative_slope, ACTIVATION=act, LAYER=layer, MUNIT_STD=munit_std, **prm.present,
            **p.meta)
    return dx, _param_grad(weight, sum_gx, p.x), _param_grad(bias, sum_g, p.x)


# ----- batch statistics: the split kernels with per-(n, c) statistics repeated over n ----------


def _per_channel_over_batch(p: _Problem, per_c: torch.Tensor) -> torch.Tensor:
    """(C,) batch statistics as the (N, C) per-(n, c) statistics the tile kernels read."""
    return per_c.to(p.acc).expand(p.n, p.c).contiguous()


def _split_counts(p: _Problem) -> torch.Tensor:
    """Values in each split of the spatial range (the last one may be shorter), in float64."""
    splits, split_len = p.split
    first = torch.arange(splits, device=p.x.device, dtype=torch.float64) * split_len
    return torch.clamp(p.s - first, max=split_len)


def _batch_rstd(var: torch.Tensor, eps: float) -> torch.Tensor:
    """1 / sqrt(var + eps) from the variance as stored (forward and backward agree exactly)."""
    return torch.rsqrt(var.double() + eps).to(var.dtype)


def _batch_norm_launch_forward(x, weight, bias, eps: float, activation: str,
                               negative_slope: float):
    p = _problem(x)
    prm = _params(weight, bias, p.x)
    pmean = p.empty(p.n, p.c, p.plan.splits)
    pm2 = torch.empty_like(pmean)
    wrap_triton(partial_moments_kernel)[p.grid](p.x, pmean, pm2, *p.tile, *p.split, **p.meta)
    # Chan's merge of the (n, split) partials of each channel, in float64.
    cnt = _split_counts(p)
    mu, q = pmean.double(), pm2.double()
    total = p.n * p.s
    mean = (mu * cnt).sum((0, 2)) / total
    m2 = q.sum((0, 2)) + (cnt * (mu - mean[:, None]) ** 2).sum((0, 2))
    mean, var = mean.to(p.acc), (m2 / total).to(p.acc)
    y = torch.empty_like(p.x)
    wrap_triton(normalize_kernel)[p.grid](
        p.x, y, *prm.pointers, _per_channel_over_batch(p, mean),
        _per_channel_over_batch(p, _batch_rstd(var, eps)), *p.tile, *p.split, *prm.nstrides,
        negative_slope, ACTIVATION=ACTIVATION_CODES[activation], LAYER=False, **prm.present,
        **p.meta)
    return y, mean, var


def _batch_norm_launch_backward(grad_out, x, weight, bias, mean, var, eps: float,
                                activation: str, negative_slope: float):
    p = _problem(x)
    prm = _params(weight, bias, p.x)
    act = ACTIVATION_CODES[activation]
    dy = _in_layout(grad_out.to(p.x.dtype), p.channels_last)
    mean_nc = _per_channel_over_batch(p, mean)
    rstd_nc = _per_channel_over_batch(p, _batch_rstd(var.to(p.acc), eps))
    psum_g = p.empty(p.n, p.c, p.plan.splits)
    psum_gx = torch.empty_like(psum_g)
    wrap_triton(partial_grad_sums_kernel)[p.grid](
        p.x, dy, *prm.pointers, mean_nc, rstd_nc, psum_g, psum_gx, *p.tile, *p.split,
        *prm.nstrides, negative_slope, ACTIVATION=act, LAYER=False, **prm.present, **p.meta)
    sum_g, sum_gx = psum_g.double().sum((0, 2)), psum_gx.double().sum((0, 2))  # (C,)
    w = weight.double() if weight is not None else None
    gsum_dxhat = sum_g if w is None else sum_g * w
    gsum_dxhat_xhat = sum_gx if w is None else sum_gx * w
    dx = torch.empty_like(p.x)
    wrap_triton(input_grad_kernel)[p.grid](
        p.x, dy, dx, *prm.pointers, mean_nc, rstd_nc, _per_channel_over_batch(p, gsum_dxhat),
        _per_channel_over_batch(p, gsum_dxhat_xhat), *p.tile, *p.split, *prm.nstrides,
        p.n * p.s, eps, negative_slope, ACTIVATION=act, LAYER=False, MUNIT_STD=False,
        **prm.present, **p.meta)
    return (dx, _param_grad(weight, sum_gx.to(p.acc)[None], p.x),
            _param_grad(bias, sum_g.to(p.acc)[None], p.x))


# ----- the operators: checks (checks.py), then the launches -------------------------------------


def _adain_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float,
                   activation: str, negative_slope: float
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    checks.adain(x, weight, bias, eps, activation, negative_slope)
    return _forward(x, weight, bias, eps, activation, negative_slope, False, False)


def _adain_backward(grad_out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor,
                    bias: torch.Tensor, mean: torch.Tensor, rstd: torch.Tensor, eps: float,
                    activation: str, negative_slope: float
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    checks.adain_backward(grad_out, x, weight, bias, mean, rstd, eps, activation,
                          negative_slope)
    return _backward(grad_out, x, weight, bias, mean, rstd, eps, activation, negative_slope,
                     False, False)


def _instance_norm_forward(x: torch.Tensor, weight: Optional[torch.Tensor],
                           bias: Optional[torch.Tensor], eps: float, activation: str,
                           negative_slope: float
                           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    checks.instance_norm(x, weight, bias, eps, activation, negative_slope)
    return _forward(x, weight, bias, eps, activation, negative_slope, False, False)


def _instance_norm_backward(grad_out: torch.Tensor, x: torch.Tensor,
                            weight: Optional[torch.Tensor], bias: Optional[torch.Tensor],
                            mean: torch.Tensor, rstd: torch.Tensor, eps: float, activation: str,
                            negative_slope: float
                            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    checks.instance_norm_backward(grad_out, x, weight, bias, mean, rstd, eps, activation,
                                  negative_slope)
    return _backward(grad_out, x, weight, bias, mean, rstd, eps, activation, negative_slope,
                     False, False)


def _layer_norm_forward(x: torch.Tensor, weight: Optional[torch.Tensor],
                        bias: Optional[torch.Tensor], eps: float, style: str, activation: str,
                        negative_slope: float
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    checks.layer_norm(x, weight, bias, eps, style, activation, negative_slope)
    return _forward(x, weight, bias, eps, activation, negative_slope, True, style == "munit")


def _layer_norm_backward(grad_out: torch.Tensor, x: torch.Tensor, weight: Optional[torch.Tensor],
                         bias: Optional[torch.Tensor], mean: torch.Tensor, rstd: torch.Tensor,
                         eps: float, style: str, activation: str, negative_slope: float
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    checks.layer_norm_backward(grad_out, x, weight, bias, mean, rstd, eps, style, activation,
                               negative_slope)
    return _backward(grad_out, x, weight, bias, mean, rstd, eps, activation, negative_slope,
                     True, style == "munit")


def _batch_norm_forward(x: torch.Tensor, weight: Optional[torch.Tensor],
                        bias: Optional[torch.Tensor], eps: float, activation: str,
                        negative_slope: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    checks.batch_norm(x, weight, bias, eps, activation, negative_slope)
    return _batch_norm_launch_forward(x, weight, bias, eps, activation, negative_slope)


def _batch_norm_backward(grad_out: torch.Tensor, x: torch.Tensor, weight: Optional[torch.Tensor],
                         bias: Optional[torch.Tensor], mean: torch.Tensor, var: torch.Tensor,
                         eps: float, activation: str, negative_slope: float
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    checks.batch_norm_backward(grad_out, x, weight, bias, mean, var, eps, activation,
                               negative_slope)
    return _batch_norm_launch_backward(grad_out, x, weight, bias, mean, var, eps, activation,
                                       negative_slope)


# ----- autograd: the forward operators' backward is the backward operator -----------------------


def _setup_context(ctx, inputs, output) -> None:
    x, weight, bias, eps = inputs[:4]
    ctx.options = inputs[4:]  # (activation, negative_slope) or (style, activation, negative_slope)
    ctx.eps = eps
    _, mean, rstd = output  # (batch_norm: mean, var)
    ctx.mark_non_differentiable(mean, rstd)
    ctx.save_for_backward(x, weight, bias, mean, rstd)


def _autograd(backward_op):
    """The backward of a forward operator: its backward operator, keeping only the gradients
    autograd asked for (x, weight, bias; None for eps and the options)."""

    def backward(ctx, grad_out, _grad_mean, _grad_rstd):
        x, weight, bias, mean, rstd = ctx.saved_tensors
        grads = backward_op(grad_out, x, weight, bias, mean, rstd, ctx.eps, *ctx.options)
        needs = ctx.needs_input_grad
        return (*(g if need else None for g, need in zip(grads, needs)), None,
                *([None] * len(ctx.options)))

    return backward


def _register(name: str, fn, backward_op=None):
    """``i2i_fast_triton::<name>``, with the fake implementation of its schema (fake.py) and, for
    a forward operator, autograd through `backward_op`."""
    if backward_op is None:
        return ts.register_operator(name, fn, getattr(fake, name))
    return ts.register_operator(name, fn, getattr(fake, name), setup_context=_setup_context,
                                backward=_autograd(backward_op))


adain_backward_op = _register("adain_backward", _adain_backward)
instance_norm_backward_op = _register("instance_norm_backward", _instance_norm_backward)
layer_norm_backward_op = _register("layer_norm_backward", _layer_norm_backward)
adain_forward_op = _register("adain_forward", _adain_forward, adain_backward_op)
instance_norm_forward_op = _register("instance_norm_forward", _instance_norm_forward,
                                     instance_norm_backward_op)
layer_norm_forward_op = _register("layer_norm_forward", _layer_norm_forward,
                                  layer_norm_backward_op)
batch_norm_backward_op = _register("batch_norm_backward", _batch_norm_backward)
batch_norm_forward_op = _register("batch_norm_forward", _batch_norm_forward,
                                  batch_norm_backward_op)

OPERATORS = (adain_forward_op, adain_backward_op, instance_norm_forward_op,
             instance_norm_backward_op, layer_norm_forward_op, layer_norm_backward_op,
             batch_norm_forward_op, batch_norm_backward_op)


# ----- what the "triton" backend runs (arguments already checked by i2i_fast.ops) -----------------


def adain(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float,
          activation: str, negative_slope: float) -> torch.Tensor:
    return adain_forward_op(x, weight, bias, eps, activation, negative_slope)[0]


def instance_norm(x: torch.Tensor, weight: Optional[torch.Tensor], bias: Optional[torch.Tensor],
                  eps: float, activation: str, negative_slope: float) -> torch.Tensor:
    return instance_norm_forward_op(x, weight, bias, eps, activation, negative_slope)[0]


def layer_norm(x: torch.Tensor, weight: Optional[torch.Tensor], bias: Optional[torch.Tensor],
               eps: float, style: str, activation: str, negative_slope: float) -> torch.Tensor:
    return layer_norm_forward_op(x, weight, bias, eps, style, activation, negative_slope)[0]


def batch_norm(x: torch.Tensor, weight: Optional[torch.Tensor], bias: Optional[torch.Tensor],
               eps: float, activation: str, negative_slope: float
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return batch_norm_forward_op(x, weight, bias, eps, activation, negative_slope)
