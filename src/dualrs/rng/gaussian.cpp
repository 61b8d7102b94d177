#include "dualrs/rng/gaussian.h"

#include <cmath>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DUALRS_HAVE_X86 1
#endif

// Every operation below must round the same way in both implementations: this file is
// compiled with -ffp-contract=off (src/CMakeLists.txt), so no a·b + c becomes one fused
// multiply-add, and the AVX2 path uses separate multiplies and adds.

namespace dualrs {
inline namespace rng {
namespace detail {
namespace {

// Constants as float32 (hex literals, so no decimal rounding question). Each is the float
// nearest to the value named beside it.
constexpr std::uint32_t kSqrtHalfBits = 0x3f3504f3u;  // bits of float(√½)
constexpr float kLn2Hi = 0x1.62ep-1f;                 // ln 2 to 13 bits: k·kLn2Hi is exact for |k| ≤ 64
constexpr float kLn2Lo = 0x1.0bfbe8p-15f;             // ln 2 − kLn2Hi
constexpr float kL3 = 0x1.555556p-1f;                 // 2/3
constexpr float kL5 = 0x1.99999ap-2f;                 // 2/5
constexpr float kL7 = 0x1.24924ap-2f;                 // 2/7
constexpr float kL9 = 0x1.c71c72p-3f;                 // 2/9
constexpr float kS3 = -0x1.555556p-3f;                // −1/3!
constexpr float kS5 = 0x1.111112p-7f;                 // 1/5!
constexpr float kS7 = -0x1.a01a02p-13f;               // −1/7!
constexpr float kS9 = 0x1.71de3ap-19f;                // 1/9!
constexpr float kC2 = -0x1p-1f;                       // −1/2!
constexpr float kC4 = 0x1.555556p-5f;                 // 1/4!
constexpr float kC6 = -0x1.6c16c2p-10f;               // −1/6!
constexpr float kC8 = 0x1.a01a02p-16f;                // 1/8!
constexpr float kC10 = -0x1.27e4fcp-22f;              // −1/10!
constexpr float kTurnStep = 0x1.921fb6p-22f;          // float(2π)·2⁻²⁴: one of the 2²⁴ angle steps
constexpr std::uint32_t kHalfQuadrant = 1u << 21;     // 1/8 turn in angle steps

float from_bits(std::uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

std::uint32_t to_bits(float f) {
  std::uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}
}  // namespace

float log_unit(float u) {
  const std::uint32_t ix = to_bits(u) - kSqrtHalfBits;
  const auto k = static_cast<std::int32_t>(ix) >> 23;  // arithmetic shift: floor(log2(u/√½))
  const float m = from_bits((ix & 0x007fffffu) + kSqrtHalfBits);
  const float f = m - 1.0f;  // exact (Sterbenz)
  const float hfsq = (0.5f * f) * f;
  const float s = f / (2.0f + f);
  const float z = s * s;
  const float r = z * (kL3 + z * (kL5 + z * (kL7 + z * kL9)));
  const auto dk = static_cast<float>(k);
  // ln(1 + f) = f − f²/2 + s·(f²/2 + R), R = 2s²/3 + 2s⁴/5 + …
  const float lo = dk * kLn2Lo + s * (hfsq + r);
  return dk * kLn2Hi + ((lo - hfsq) + f);
}

void sincos_turn(std::uint32_t a, float& sin_theta, float& cos_theta) {
  // θ = (quadrant j)·π/2 + φ, with the angle counted from −1/8 turn inside each quadrant.
  const std::uint32_t m = ((a >> 8) + kHalfQuadrant) & 0x00ffffffu;
  const std::uint32_t j = m >> 22;
  const float phi =
      (static_cast<float>(static_cast<std::int32_t>(m & 0x003fffffu) - static_cast<std::int32_t>(kHalfQuadrant)) +
       0.5f) *
      kTurnStep;
  const float p2 = phi * phi;
  const float sp = phi + phi * (p2 * (kS3 + p2 * (kS5 + p2 * (kS7 + p2 * kS9))));
  const float cp = 1.0f + p2 * (kC2 + p2 * (kC4 + p2 * (kC6 + p2 * (kC8 + p2 * kC10))));
  float s = (j & 1u) != 0 ? cp : sp;
  float c = (j & 1u) != 0 ? sp : cp;
  if ((j & 2u) != 0) s = -s;              // quadrants 2, 3
  if (((j ^ (j >> 1)) & 1u) != 0) c = -c;  // quadrants 1, 2
  sin_theta = s;
  cos_theta = c;
}

void gaussian_pair(std::uint32_t a, std::uint32_t b, float& z_cos, float& z_sin) {
  const float u = static_cast<float>(b) * 0x1p-32f + 0x1p-33f;
  const float r = std::sqrt(-2.0f * log_unit(u));
  float s, c;
  sincos_turn(a, s, c);
  z_cos = r * c;
  z_sin = r * s;
}

void gaussian32_portable(const Philox8& words, float* z) {
  for (int l = 0; l < kPhiloxLanes; ++l) {
    gaussian_pair(words.word[0][l], words.word[1][l], z[l], z[8 + l]);
    gaussian_pair(words.word[2][l], words.word[3][l], z[16 + l], z[24 + l]);
  }
}

#if DUALRS_HAVE_X86
namespace {
#define DUALRS_AVX2 __attribute__((target("avx2")))

DUALRS_AVX2 inline __m256 set(float v) { return _mm256_set1_ps(v); }
DUALRS_AVX2 inline __m256i seti(std::uint32_t v) { return _mm256_set1_epi32(static_cast<int>(v)); }

// Eight lanes of gaussian_pair, operation for operation.
DUALRS_AVX2 inline void gaussian8(const std::uint32_t* a_words, const std::uint32_t* b_words, float* z_cos,
                                  float* z_sin) {
  const __m256i b = _mm256_load_si256(reinterpret_cast<const __m256i*>(b_words));
  // float(b) for unsigned b: the two 16-bit halves convert exactly, their sum rounds once.
  const __m256 b_hi = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(b, 16)), set(65536.0f));
  const __m256 b_lo = _mm256_cvtepi32_ps(_mm256_and_si256(b, seti(0xffffu)));
  const __m256 u = _mm256_add_ps(_mm256_mul_ps(_mm256_add_ps(b_hi, b_lo), set(0x1p-32f)), set(0x1p-33f));

  const __m256i ix = _mm256_sub_epi32(_mm256_castps_si256(u), seti(kSqrtHalfBits));
  const __m256 dk = _mm256_cvtepi32_ps(_mm256_srai_epi32(ix, 23));
  const __m256 m = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_and_si256(ix, seti(0x007fffffu)), seti(kSqrtHalfBits)));
  const __m256 f = _mm256_sub_ps(m, set(1.0f));
  const __m256 hfsq = _mm256_mul_ps(_mm256_mul_ps(set(0.5f), f), f);
  const __m256 s = _mm256_div_ps(f, _mm256_add_ps(set(2.0f), f));
  const __m256 z = _mm256_mul_ps(s, s);
  __m256 r = _mm256_add_ps(set(kL7), _mm256_mul_ps(z, set(kL9)));
  r = _mm256_add_ps(set(kL5), _mm256_mul_ps(z, r));
  r = _mm256_add_ps(set(kL3), _mm256_mul_ps(z, r));
  r = _mm256_mul_ps(z, r);
  const __m256 lo = _mm256_add_ps(_mm256_mul_ps(dk, set(kLn2Lo)), _mm256_mul_ps(s, _mm256_add_ps(hfsq, r)));
  const __m256 log_u = _mm256_add_ps(_mm256_mul_ps(dk, set(kLn2Hi)), _mm256_add_ps(_mm256_sub_ps(lo, hfsq), f));
  const __m256 radius = _mm256_sqrt_ps(_mm256_mul_ps(set(-2.0f), log_u));

  const __m256i a = _mm256_load_si256(reinterpret_cast<const __m256i*>(a_words));
  const __m256i mq = _mm256_and_si256(_mm256_add_epi32(_mm256_srli_epi32(a, 8), seti(kHalfQuadrant)), seti(0x00ffffffu));
  const __m256i j = _mm256_srli_epi32(mq, 22);
  const __m256 phi = _mm256_mul_ps(
      _mm256_add_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(mq, seti(0x003fffffu)), seti(kHalfQuadrant))),
                    set(0.5f)),
      set(kTurnStep));
  const __m256 p2 = _mm256_mul_ps(phi, phi);
  __m256 ps = _mm256_add_ps(set(kS7), _mm256_mul_ps(p2, set(kS9)));
  ps = _mm256_add_ps(set(kS5), _mm256_mul_ps(p2, ps));
  ps = _mm256_add_ps(set(kS3), _mm256_mul_ps(p2, ps));
  const __m256 sp = _mm256_add_ps(phi, _mm256_mul_ps(phi, _mm256_mul_ps(p2, ps)));
  __m256 pc = _mm256_add_ps(set(kC8), _mm256_mul_ps(p2, set(kC10)));
  pc = _mm256_add_ps(set(kC6), _mm256_mul_ps(p2, pc));
  pc = _mm256_add_ps(set(kC4), _mm256_mul_ps(p2, pc));
  pc = _mm256_add_ps(set(kC2), _mm256_mul_ps(p2, pc));
  const __m256 cp = _mm256_add_ps(set(1.0f), _mm256_mul_ps(p2, pc));
  const __m256 swap = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(j, seti(1u)), seti(1u)));
  const __m256 sin_sign = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_and_si256(j, seti(2u)), 30));
  const __m256 cos_sign =
      _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_and_si256(_mm256_xor_si256(j, _mm256_srli_epi32(j, 1)), seti(1u)), 31));
  const __m256 sin_t = _mm256_xor_ps(_mm256_blendv_ps(sp, cp, swap), sin_sign);
  const __m256 cos_t = _mm256_xor_ps(_mm256_blendv_ps(cp, sp, swap), cos_sign);
  _mm256_storeu_ps(z_cos, _mm256_mul_ps(radius, cos_t));
  _mm256_storeu_ps(z_sin, _mm256_mul_ps(radius, sin_t));
}
}  // namespace

DUALRS_AVX2 void gaussian32_avx2(const Philox8& words, float* z) {
  gaussian8(words.word[0], words.word[1], z, z + 8);
  gaussian8(words.word[2], words.word[3], z + 16, z + 24);
}
#undef DUALRS_AVX2
#else
void gaussian32_avx2(const Philox8& words, float* z) { gaussian32_portable(words, z); }
#endif

Gaussian32Fn best_gaussian32() {
  static const Gaussian32Fn fn = cpu_has_avx2() ? &gaussian32_avx2 : &gaussian32_portable;
  return fn;
}

}  // namespace detail
}  // namespace rng
}  // namespace dualrs
