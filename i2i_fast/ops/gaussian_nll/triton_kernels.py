"""The Triton kernels of the Gaussian latent terms (device code only; triton.py launches them and
registers the operators).

The definitions are those of csrc/gaussian_nll/common.h (and ``reference.py``):

- gaussian_nll: per element t = (z - mu) * s * s with s = exp(-logvar / 4) (0 where z == mu, also
  where s is inf), e = logvar / 2 + t^2 / 2; dz = g t s s (dmu = -dz), dlogvar = g (1 - t^2) / 2.
- gaussian_kl: per element, with h = exp(logvar / 2), e = ((h / 2) h - 1 / 2) - logvar / 2 +
  mu^2 / 2 (exp(logvar) itself is never formed: it overflows before its half does); dmu = g mu,
  dlogvar = ((g / 2) h) h - g / 2.

Accumulation in float32 (float64 for float64 inputs); partial sums are merged in float64.

Forward: ``nll_partials_kernel`` / ``kl_partials_kernel``, one program per BLOCK elements, write
the sum of e over them; ``term_finalize_kernel``, one program, adds the partial sums in a fixed
order (deterministic: no atomics) and divides by the reduction's divisor. Backward
(``nll_grads_kernel`` / ``kl_grads_kernel``): elementwise, with g = grad_loss / divisor read by
the kernel (no host sync).
"""

import triton
import triton.language as tl

from ..triton_device import scalar


@triton.jit
def _scaled(x, s):
    """x * s * s, exactly 0 for x == 0 also where s is inf (a NaN s stays NaN)."""
    return tl.where((x == 0) & (s == s), 0.0, (x * s) * s)


@triton.jit
def _elements(numel, BLOCK: tl.constexpr):
    """The offsets of this program's BLOCK elements and which of them exist."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    return offs, offs < numel


@triton.jit
def _load(ptr, offs, mask, ACC: tl.constexpr):
    return tl.load(ptr + offs, mask=mask, other=0.0).to(ACC)


@triton.jit
def _store_partial(part_ptr, e, mask):
    tl.store(part_ptr + tl.program_id(0), tl.sum(tl.where(mask, e, 0.0), axis=0))


@triton.jit
def _upstream(g_ptr, divisor, ACC: tl.constexpr):
    """g = grad_loss / divisor, the upstream gradient of each element."""
    return (tl.load(g_ptr).to(tl.float64) / scalar(divisor, tl.float64)).to(ACC)


@triton.jit
def nll_partials_kernel(z_ptr, mu_ptr, logvar_ptr, part_ptr, numel, BLOCK: tl.constexpr):
    """partials[pid] = sum of the NLL's e over elements [pid * BLOCK, (pid + 1) * BLOCK)."""
    ACC = part_ptr.dtype.element_ty
    offs, mask = _elements(numel, BLOCK)
    logvar = _load(logvar_ptr, offs, mask, ACC)
    s = tl.exp(logvar * -0.25)
    t = _scaled(_load(z_ptr, offs, mask, ACC) - _load(mu_ptr, offs, mask, ACC), s)
    _store_partial(part_ptr, 0.5 * logvar + 0.5 * (t * t), mask)


@triton.jit
def kl_partials_kernel(mu_ptr, logvar_ptr, part_ptr, numel, BLOCK: tl.constexpr):
    """partials[pid] = sum of the KL's e over elements [pid * BLOCK, (pid + 1) * BLOCK)."""
    ACC = part_ptr.dtype.element_ty
    offs, mask = _elements(numel, BLOCK)
    mu = _load(mu_ptr, offs, mask, ACC)
    logvar = _load(logvar_ptr, offs, mask, ACC)
    h = tl.exp(logvar * 0.5)
    _store_partial(part_ptr, (((0.5 * h) * h - 0.5) - 0.5 * logvar) + 0.5 * (mu * mu), mask)


@triton.jit
def term_finalize_kernel(part_ptr, out_ptr, count, divisor: "fp64", BLOCK: tl.constexpr):
    """One program: out = (sum of the `count` partials, in float64) / divisor."""
    total = tl.zeros([BLOCK], tl.float64)
    for start in range(0, count, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        total += tl.load(part_ptr + offs, mask=offs < count, other=0.0).to(tl.float64)
    t = tl.sum(total, axis=0) / scalar(divisor, tl.float64)
    tl.store(out_ptr, t.to(out_ptr.dtype.element_ty))


@triton.jit
def nll_grads_kernel(z_ptr, mu_ptr, logvar_ptr, g_ptr, dz_ptr, dmu_ptr, dlogvar_ptr, numel,
                     divisor: "fp64", BLOCK: tl.constexpr):
    """dz = g t s s, dmu = -dz, dlogvar = g (1 - t^2) / 2, g = grad_loss / divisor."""
    ACC = g_ptr.dtype.element_ty
    offs, mask = _elements(numel, BLOCK)
    g = _upstream(g_ptr, divisor, ACC)
    logvar = _load(logvar_ptr, offs, mask, ACC)
    s = tl.exp(logvar * -0.25)
    t = _scaled(_load(z_ptr, offs, mask, ACC) - _load(mu_ptr, offs, mask, ACC), s)
    dz = _scaled(g * t, s)
    dlogvar = 0.5 * g * (1.0 - t * t)
    out_ty = dz_ptr.dtype.element_ty
    tl.store(dz_ptr + offs, dz.to(out_ty), mask=mask)
    tl.store(dmu_ptr + offs, (-dz).to(out_ty), mask=mask)
    tl.store(dlogvar_ptr + offs, dlogvar.to(out_ty), mask=mask)


@triton.jit
def kl_grads_kernel(mu_ptr, logvar_ptr, g_ptr, dmu_ptr, dlogvar_ptr, numel, divisor: "fp64",
                    BLOCK: tl.constexpr):
    """dmu = g mu, dlogvar = ((g / 2) h) h - g / 2 with h = exp(logvar / 2), g = grad_loss /
    divisor."""
    ACC = g_ptr.dtype.element_ty
    offs, mask = _elements(numel, BLOCK)
    g = _upstream(g_ptr, divisor, ACC)
    mu = _load(mu_ptr, offs, mask, ACC)
    h = tl.exp(_load(logvar_ptr, offs, mask, ACC) * 0.5)
    half_g = 0.5 * g
    out_ty = dmu_ptr.dtype.element_ty
    tl.store(dmu_ptr + offs, (g * mu).to(out_ty), mask=mask)
    tl.store(dlogvar_ptr + offs, ((half_g * h) * h - half_g).to(out_ty), mask=mask)
