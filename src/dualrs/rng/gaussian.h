#pragma once
/// \file
/// Box–Muller pairs from 32-bit Philox words, the normal transform of RNG layout version 2
/// (docs/method.md §16, docs/cluster.md §5). Written with IEEE float32 operations only
/// (+, −, ×, ÷, √, integer and bit operations; no fused multiply-add, no library call), so the
/// portable and AVX2 implementations give the same bits on every x86-64 CPU and C library.
/// Source of the transform: Box & Muller, "A note on the generation of random normal
/// deviates", Ann. Math. Statist. 29 (1958).
///
/// For one pair of words (a, b):
///   u = float(b)·2⁻³² + 2⁻³³ ∈ [2⁻³³, 1]        (as Random123's u01<float>, one rounding each)
///   r = √(−2 ln u)                               (ln by log_unit below, ≤ 2 ulp)
///   θ = 2π·((a >> 8) + ½)/2²⁴                   (2²⁴ equally spaced angles, reduced exactly in integers)
///   (z_cos, z_sin) = (r·cos θ, r·sin θ)           (cos/sin by sincos_turn below, ≤ 2 ulp)

#include <cstdint>

#include "dualrs/rng/philox8.h"

namespace dualrs {
inline namespace rng {
namespace detail {

/// ln u for u in [2⁻³³, 1] (float32; no NaN, infinity or subnormal input).
/// u = 2^k·m with m in [√½, √2), f = m − 1, s = f/(2 + f), ln m = 2 atanh s by its series to
/// s⁹ (truncation below 10⁻⁹ relative), k·ln 2 with ln 2 split in a 13-bit head and a tail.
float log_unit(float u);

/// sin θ and cos θ for θ = 2π·((a >> 8) + ½)/2²⁴: the quadrant comes from the integer bits, the
/// remaining angle φ, |φ| ≤ π/4, goes through Taylor polynomials to φ⁹ (sin) and φ¹⁰ (cos).
void sincos_turn(std::uint32_t a, float& sin_theta, float& cos_theta);

/// One pair: z_cos = r·cos θ, z_sin = r·sin θ for the words (a, b) as in the file comment.
void gaussian_pair(std::uint32_t a, std::uint32_t b, float& z_cos, float& z_sin);

/// Gaussians of one Philox8 call, 32 floats in layout version 2's order: for lane l (0..7),
/// z[l] and z[8 + l] are the pair of words (0, 1) of that lane (cos, sin), z[16 + l] and
/// z[24 + l] the pair of words (2, 3).
void gaussian32_portable(const Philox8& words, float* z);

/// The same with AVX2 instructions, bit for bit. Call only when cpu_has_avx2() is true.
void gaussian32_avx2(const Philox8& words, float* z);

using Gaussian32Fn = void (*)(const Philox8&, float*);
/// The fastest implementation this CPU runs (chosen once).
Gaussian32Fn best_gaussian32();

}  // namespace detail
}  // namespace rng
}  // namespace dualrs
