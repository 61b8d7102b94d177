#include "dualrs/rng/philox8.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DUALRS_HAVE_X86 1
#endif

namespace dualrs {
inline namespace rng {
namespace detail {
namespace {
// The constants of Philox4x32 (Random123's PHILOX_M4x32_* and PHILOX_W32_*).
constexpr std::uint32_t kM0 = 0xD2511F53u;
constexpr std::uint32_t kM1 = 0xCD9E8D57u;
constexpr std::uint32_t kW0 = 0x9E3779B9u;
constexpr std::uint32_t kW1 = 0xBB67AE85u;
constexpr int kRounds = 10;
}  // namespace

void philox8_portable(std::uint32_t first_block, std::uint32_t c1, std::uint32_t c2, std::uint32_t c3,
                      std::uint32_t k0, std::uint32_t k1, Philox8& out) {
  std::uint32_t x0[kPhiloxLanes], x1[kPhiloxLanes], x2[kPhiloxLanes], x3[kPhiloxLanes];
  for (int l = 0; l < kPhiloxLanes; ++l) {
    x0[l] = first_block + static_cast<std::uint32_t>(l);
    x1[l] = c1;
    x2[l] = c2;
    x3[l] = c3;
  }
  for (int r = 0; r < kRounds; ++r) {
    if (r > 0) {
      k0 += kW0;
      k1 += kW1;
    }
    for (int l = 0; l < kPhiloxLanes; ++l) {
      const std::uint64_t p0 = static_cast<std::uint64_t>(kM0) * x0[l];
      const std::uint64_t p1 = static_cast<std::uint64_t>(kM1) * x2[l];
      const std::uint32_t n0 = static_cast<std::uint32_t>(p1 >> 32) ^ x1[l] ^ k0;
      const std::uint32_t n2 = static_cast<std::uint32_t>(p0 >> 32) ^ x3[l] ^ k1;
      x1[l] = static_cast<std::uint32_t>(p1);
      x3[l] = static_cast<std::uint32_t>(p0);
      x0[l] = n0;
      x2[l] = n2;
    }
  }
  for (int l = 0; l < kPhiloxLanes; ++l) {
    out.word[0][l] = x0[l];
    out.word[1][l] = x1[l];
    out.word[2][l] = x2[l];
    out.word[3][l] = x3[l];
  }
}

#if DUALRS_HAVE_X86
namespace {
// 32×32→64-bit products of eight lanes: _mm256_mul_epu32 multiplies the even lanes, so the
// odd lanes go through a second multiply after a 32-bit shift.
__attribute__((target("avx2"))) inline void mulhilo8(__m256i m, __m256i a, __m256i& lo, __m256i& hi) {
  const __m256i even = _mm256_mul_epu32(a, m);
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}
}  // namespace

__attribute__((target("avx2"))) void philox8_avx2(std::uint32_t first_block, std::uint32_t c1, std::uint32_t c2,
                                                  std::uint32_t c3, std::uint32_t k0, std::uint32_t k1,
                                                  Philox8& out) {
  __m256i x0 = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(first_block)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  __m256i x1 = _mm256_set1_epi32(static_cast<int>(c1));
  __m256i x2 = _mm256_set1_epi32(static_cast<int>(c2));
  __m256i x3 = _mm256_set1_epi32(static_cast<int>(c3));
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(kM0));
  const __m256i m1 = _mm256_set1_epi32(static_cast<int>(kM1));
  for (int r = 0; r < kRounds; ++r) {
    if (r > 0) {
      k0 += kW0;
      k1 += kW1;
    }
    __m256i lo0, hi0, lo1, hi1;
    mulhilo8(m0, x0, lo0, hi0);
    mulhilo8(m1, x2, lo1, hi1);
    x0 = _mm256_xor_si256(_mm256_xor_si256(hi1, x1), _mm256_set1_epi32(static_cast<int>(k0)));
    x2 = _mm256_xor_si256(_mm256_xor_si256(hi0, x3), _mm256_set1_epi32(static_cast<int>(k1)));
    x1 = lo1;
    x3 = lo0;
  }
  _mm256_store_si256(reinterpret_cast<__m256i*>(out.word[0]), x0);
  _mm256_store_si256(reinterpret_cast<__m256i*>(out.word[1]), x1);
  _mm256_store_si256(reinterpret_cast<__m256i*>(out.word[2]), x2);
  _mm256_store_si256(reinterpret_cast<__m256i*>(out.word[3]), x3);
}

bool cpu_has_avx2() { return __builtin_cpu_supports("avx2"); }
#else
void philox8_avx2(std::uint32_t first_block, std::uint32_t c1, std::uint32_t c2, std::uint32_t c3, std::uint32_t k0,
                  std::uint32_t k1, Philox8& out) {
  philox8_portable(first_block, c1, c2, c3, k0, k1, out);
}

bool cpu_has_avx2() { return false; }
#endif

Philox8Fn best_philox8() {
  static const Philox8Fn fn = cpu_has_avx2() ? &philox8_avx2 : &philox8_portable;
  return fn;
}

}  // namespace detail
}  // namespace rng
}  // namespace dualrs
