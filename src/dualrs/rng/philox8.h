#pragma once
/// \file
/// Philox4x32-10 for eight consecutive counters at once: the generator behind NoiseSource,
/// computed eight blocks per call so the 32×32→64-bit multiplies run in AVX2 lanes where the
/// CPU has them. Same numbers as Random123's `r123::Philox4x32_R<10>` (Salmon et al., SC 2011)
/// bit for bit, on either path (tested against Random123 and its known-answer vectors).

#include <cstdint>

namespace dualrs {
inline namespace rng {
namespace detail {

/// Counters processed per call.
inline constexpr int kPhiloxLanes = 8;

/// Output of one call: `word[w][l]` is word w (0..3) of Philox4x32-10 applied to the counter
/// {first_block + l, c1, c2, c3} (lane l, 0..7) under the key {k0, k1}. first_block + l wraps
/// modulo 2^32, as the 32-bit counter word does.
struct Philox8 {
  alignas(32) std::uint32_t word[4][kPhiloxLanes];
};

/// Portable implementation (plain C++; the compiler may vectorise it).
void philox8_portable(std::uint32_t first_block, std::uint32_t c1, std::uint32_t c2, std::uint32_t c3,
                      std::uint32_t k0, std::uint32_t k1, Philox8& out);

/// AVX2 implementation. Call only when cpu_has_avx2() is true.
void philox8_avx2(std::uint32_t first_block, std::uint32_t c1, std::uint32_t c2, std::uint32_t c3,
                  std::uint32_t k0, std::uint32_t k1, Philox8& out);

/// Whether this CPU runs AVX2 instructions.
bool cpu_has_avx2();

/// The fastest implementation this CPU runs (chosen once).
using Philox8Fn = void (*)(std::uint32_t, std::uint32_t, std::uint32_t, std::uint32_t, std::uint32_t,
                           std::uint32_t, Philox8&);
Philox8Fn best_philox8();

}  // namespace detail
}  // namespace rng
}  // namespace dualrs
