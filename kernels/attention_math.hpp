// The arithmetic the attention kernels share with their scalar specification (kernels/
// attention.cpp): one multiply-add, one exp, one sum over a block, each defined so that a SIMD
// lane computes exactly what the scalar code computes for that element. Included by the kernel
// sets only.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "kernels/attention.hpp"
#include "kernels/isa.hpp"

namespace brise::kernels::BRISE_ISA::attention_math {

using Batch = xsimd::batch<float>;
inline constexpr size_t kWidth = Batch::size;
// Batches of scores in a block.
inline constexpr size_t kBlockBatches = kKVBlock / kWidth;
static_assert(kKVBlock % kWidth == 0 && (kKVBlock & (kKVBlock - 1)) == 0);

inline constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// The set's multiply-add: fused where the set has FMA, a * b + c rounded twice where it has none,
// the same in a lane and in scalar code (the kernels are built with -ffp-contract=off, so the
// compiler never fuses it behind our back). The batch form is written with intrinsics: xsimd 8.1
// has no fused multiply-add for AVX-512 and falls back to a * b + c there.
#if defined(__FMA__) || defined(__AVX512F__)
inline float madd(float a, float b, float c) {
  return std::fma(a, b, c);
}
#else
inline float madd(float a, float b, float c) {
  return a * b + c;
}
#endif
inline Batch madd(Batch a, Batch b, Batch c) {
#if defined(BRISE_AVX512)
  return Batch(_mm512_fmadd_ps(a, b, c));
#elif defined(__FMA__)
  return Batch(_mm256_fmadd_ps(a, b, c));
#else
  return a * b + c;
#endif
}

// exp(x) for the softmax (x <= 0 there), within 2 ulp: Cephes' expf. x = n ln 2 + r with
// |r| <= ln 2 / 2, exp(r) by a degree-7 polynomial, times 2^n built in the exponent bits. Below
// kExpLow the result is 0 (exp(-inf) = 0 included); NaN stays NaN. Written out rather than
// taken from xsimd or libm so that the batch and the scalar form are the same operations, on
// every kernel set.
inline constexpr float kExpLow = -87.0f;
inline constexpr float kLog2e = 1.44269504088896341f;
inline constexpr float kLn2Hi = 0.693359375f;
inline constexpr float kLn2Lo = -2.12194440e-4f;
inline constexpr float kExpPoly[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                                      4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};

// n = round-to-nearest-even(v) for |v| < 2^22, as the low mantissa bits of v + 1.5 * 2^23 (two
// exact-or-once-rounded adds, the same in a lane and in scalar code).
inline constexpr float kRoundMagic = 12582912.0f;
inline constexpr int32_t kRoundMagicBits = 0x4B400000;

inline float exp_scalar(float x) {
  if (x != x) return x;
  if (x < kExpLow) return 0.0f;
  const float t = x * kLog2e + kRoundMagic;
  const float n = t - kRoundMagic;
  float r = madd(-n, kLn2Hi, x);
  r = madd(-n, kLn2Lo, r);
  float p = kExpPoly[0];
  for (size_t i = 1; i < 6; ++i) p = madd(p, r, kExpPoly[i]);
  const float y = madd(p, r * r, r) + 1.0f;
  int32_t bits;
  std::memcpy(&bits, &t, sizeof bits);
  bits = (bits - kRoundMagicBits + 127) << 23;
  float two_n;
  std::memcpy(&two_n, &bits, sizeof two_n);
  return y * two_n;
}

// The exponent field of 2^n from v + 1.5 * 2^23 (intrinsics: xsimd's integer shift trips a GCC 12
// false warning on AVX-512).
inline Batch two_to_the(Batch t) {
  using Int = xsimd::batch<int32_t>;
  const Int e = xsimd::bitwise_cast<Int>(t) - Int(kRoundMagicBits - 127);
#if defined(BRISE_AVX512)
  return xsimd::bitwise_cast<Batch>(Int(_mm512_maskz_slli_epi32(0xFFFF, e, 23)));
#elif defined(__AVX2__)
  return xsimd::bitwise_cast<Batch>(Int(_mm256_slli_epi32(e, 23)));
#else
  return xsimd::bitwise_cast<Batch>(Int(_mm_slli_epi32(e, 23)));
#endif
}

inline Batch exp_batch(Batch x) {
  const auto low = x < Batch(kExpLow);
  const Batch t = x * Batch(kLog2e) + Batch(kRoundMagic);
  const Batch n = t - Batch(kRoundMagic);
  Batch r = madd(-n, Batch(kLn2Hi), x);
  r = madd(-n, Batch(kLn2Lo), r);
  Batch p(kExpPoly[0]);
  for (size_t i = 1; i < 6; ++i) p = madd(p, r, Batch(kExpPoly[i]));
  const Batch y = madd(p, r * r, r) + Batch(1.0f);
  // NaN lanes: y is NaN, and y * anything stays NaN.
  return xsimd::select(low, Batch(0.0f), y * two_to_the(t));
}

// Sums and maxima over a block's kKVBlock values by halving: t[i] = op(t[i], t[i + h]) for
// h = 16, 8, 4, 2, 1. The same tree whatever the vector width: the batches of a block are first
// combined pairwise (batch i with batch i + half), then the lanes of the last batch, in registers
// (upper half of the lanes with the lower half). The max is max(a, b) = a > b ? a : b, what
// vmaxps computes lane by lane (b when either is NaN, b for -0 and +0).

// kMax false: a + b; true: max(a, b). In scalar code, on 128 and 256-bit registers and on the
// set's batch.
template <bool kMax>
struct TreeOp {
  static float f(float a, float b) {
    if constexpr (kMax) return a > b ? a : b;
    return a + b;
  }
#if defined(__SSE2__)
  static __m128 f(__m128 a, __m128 b) {
    if constexpr (kMax) return _mm_max_ps(a, b);
    return _mm_add_ps(a, b);
  }
#endif
#if defined(__AVX__)
  static __m256 f(__m256 a, __m256 b) {
    if constexpr (kMax) return _mm256_max_ps(a, b);
    return _mm256_add_ps(a, b);
  }
#endif
  static Batch f(Batch a, Batch b) {
    if constexpr (kMax) return xsimd::select(a > b, a, b);
    return a + b;
  }
};
using AddOp = TreeOp<false>;
using MaxOp = TreeOp<true>;

template <class Op>
inline float tree_scalar(const float* s) {
  float t[kKVBlock];
  std::memcpy(t, s, sizeof t);
  for (size_t h = kKVBlock / 2; h >= 1; h /= 2)
    for (size_t i = 0; i < h; ++i) t[i] = Op::f(t[i], t[i + h]);
  return t[0];
}

inline float tree_sum_scalar(const float* s) {
  return tree_scalar<AddOp>(s);
}
inline float tree_max_scalar(const float* s) {
  return tree_scalar<MaxOp>(s);
}

#if defined(__SSE2__)
template <class Op>
inline float lanes_tree_128(__m128 x) {
  x = Op::f(x, _mm_movehl_ps(x, x));                            // lanes 0, 1 with 2, 3
  x = Op::f(x, _mm_shuffle_ps(x, x, _MM_SHUFFLE(1, 1, 1, 1)));  // lane 0 with 1
  return _mm_cvtss_f32(x);
}
#endif
#if defined(__AVX__)
template <class Op>
inline float lanes_tree_256(__m256 x) {
  return lanes_tree_128<Op>(Op::f(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1)));
}
#endif

// The lanes of one batch.
template <class Op>
inline float lanes_tree(Batch b) {
#if defined(BRISE_AVX512)
  static_assert(kWidth == 16);
  // The masked (zeroing) extracts: GCC 12 warns about the undefined register of the plain ones.
  const __m512 x = b;
  return lanes_tree_256<Op>(
      Op::f(_mm512_maskz_extractf32x8_ps(0xFF, x, 0), _mm512_maskz_extractf32x8_ps(0xFF, x, 1)));
#elif defined(__AVX__)
  static_assert(kWidth == 8);
  return lanes_tree_256<Op>(b);
#elif defined(__SSE2__)
  static_assert(kWidth == 4);
  return lanes_tree_128<Op>(b);
#else
  alignas(64) float t[kWidth];
  b.store_aligned(t);
  for (size_t h = kWidth / 2; h >= 1; h /= 2)
    for (size_t i = 0; i < h; ++i) t[i] = Op::f(t[i], t[i + h]);
  return t[0];
#endif
}

// The block's kBlockBatches batches (b is overwritten).
template <class Op>
inline float tree_batches(Batch* b) {
  for (size_t h = kBlockBatches / 2; h >= 1; h /= 2)
    for (size_t i = 0; i < h; ++i) b[i] = Op::f(b[i], b[i + h]);
  return lanes_tree<Op>(b[0]);
}

}  // namespace brise::kernels::BRISE_ISA::attention_math
