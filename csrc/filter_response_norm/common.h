// What the filter response normalization kernels share across devices: the spec the checks
// return and the math of the thresholded linear unit.
//
// Per (n, c) group of S = H * W elements:
//   r = 1 / sqrt(mean(x²) + eps),  z = w[c] * r * x + b[c],  y = max(z, tau[c])
// Backward, with g the part of grad_out that reaches z (tlu_share_z) and xhat = x * r:
//   grad_x = w r g - w r³ x Σ(g x) / S
//   grad_w[c] = Σ_n r Σ(g x),  grad_b[c] = Σ_n Σ g,  grad_tau[c] = Σ_n Σ grad_out * tlu_share_tau
// so the backward needs three sums per group (Σ g, Σ g x, Σ grad_out * share_tau) and one more
// pass for grad_x.
#pragma once

#include <c10/macros/Macros.h>

namespace i2i_fast {

struct FrnSpec {
  double eps;
};

// max(z, tau) as torch.maximum: NaN in either gives NaN.
template <typename A>
C10_HOST_DEVICE inline A tlu(A z, A tau) {
  return (z > tau || z != z) ? z : tau;
}

// The share of the gradient torch.maximum(z, tau) gives z: 1 where z wins, 0 where tau wins,
// half at a tie, and all of it where z or tau is NaN (neither wins).
template <typename A>
C10_HOST_DEVICE inline A tlu_share_z(A z, A tau) {
  return z < tau ? A(0) : (z == tau ? A(0.5) : A(1));
}

// The share it gives tau (the same rule from the other side).
template <typename A>
C10_HOST_DEVICE inline A tlu_share_tau(A z, A tau) {
  return z > tau ? A(0) : (z == tau ? A(0.5) : A(1));
}

// The per-(n, c) sums the backward kernels collect, in this order in their (N, C, 3) buffer.
enum FrnSum : int { kSumG = 0, kSumGX = 1, kSumGTau = 2, kFrnSums = 3 };

}  // namespace i2i_fast
