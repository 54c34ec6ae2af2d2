"""The Triton kernels of the Gaussian NLL operators (device code only; triton.py launches them and
registers the operators).

The definitions are those of csrc/gaussian_nll/common.h (and ``reference.py``): per element
t = (z - mu) * s * s with s = exp(-logvar / 4) (0 where z == mu, also where s is inf),
e = logvar / 2 + t^2 / 2. Accumulation in float32 (float64 for float64 inputs); partial sums are
merged in float64.

Forward: ``nll_partials_kernel``, one program per BLOCK elements, writes the sum of e over them;
``nll_finalize_kernel``, one program, adds the partial sums in a fixed order (deterministic: no
atomics) and divides by the reduction's divisor. Backward (``nll_grads_kernel``): elementwise,
dz = g t s s (dmu = -dz), dlogvar = g (1 - t^2) / 2 with g = grad_loss / divisor read by the
kernel (no host sync).
"""

import triton
import triton.language as tl

from ..triton_device import scalar


@triton.jit
def _scaled(x, s):
    """x * s * s, exactly 0 for x == 0 also where s is inf (a NaN s stays NaN)."""
    return tl.where((x == 0) & (s == s), 0.0, (x * s) * s)


@triton.jit
def _load(ptr, offs, mask, ACC: tl.constexpr):
    return tl.load(ptr + offs, mask=mask, other=0.0).to(ACC)


@triton.jit
def nll_partials_kernel(z_ptr, mu_ptr, logvar_ptr, part_ptr, numel, BLOCK: tl.constexpr):
    """partials[pid] = sum of e over elements [pid * BLOCK, (pid + 1) * BLOCK)."""
    ACC = part_ptr.dtype.element_ty
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < numel
    logvar = _load(logvar_ptr, offs, mask, ACC)
    s = tl.exp(logvar * -0.25)
    t = _scaled(_load(z_ptr, offs, mask, ACC) - _load(mu_ptr, offs, mask, ACC), s)
    e = 0.5 * logvar + 0.5 * (t * t)
    tl.store(part_ptr + tl.program_id(0), tl.sum(tl.where(mask, e, 0.0), axis=0))


@triton.jit
def nll_finalize_kernel(part_ptr, out_ptr, count, divisor: "fp64", BLOCK: tl.constexpr):
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
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < numel
    g = (tl.load(g_ptr).to(tl.float64) / scalar(divisor, tl.float64)).to(ACC)
    logvar = _load(logvar_ptr, offs, mask, ACC)
    s = tl.exp(logvar * -0.25)
    t = _scaled(_load(z_ptr, offs, mask, ACC) - _load(mu_ptr, offs, mask, ACC), s)
    dz = _scaled(g * t, s)
    dlogvar = 0.5 * g * (1.0 - t * t)
    out_ty = dz_ptr.dtype.element_ty
    tl.store(dz_ptr + offs, dz.to(out_ty), mask=mask)
    tl.store(dmu_ptr + offs, (-dz).to(out_ty), mask=mask)
    tl.store(dlogvar_ptr + offs, dlogvar.to(out_ty), mask=mask)
