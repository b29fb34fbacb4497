// Scalar conversions and references (once, in the generic set), bulk SIMD conversions (per set).
#include "kernels/fp16.hpp"

#include <cstring>

#include "kernels/isa.hpp"
#include "kernels/kernel_set.hpp"

namespace brise::kernels {
#if defined(BRISE_ISA_GENERIC)
namespace {

uint32_t float_bits(float x) {
  uint32_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}

float bits_float(uint32_t b) {
  float x;
  std::memcpy(&x, &b, sizeof x);
  return x;
}

}  // namespace

uint16_t f32_to_f16(float x) {
  const uint32_t b = float_bits(x);
  const uint32_t sign = (b >> 16) & 0x8000u;
  const uint32_t abs = b & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) {
    // NaN: quiet it and keep the top payload bits, as x86's vcvtps2ph does.
    return static_cast<uint16_t>(sign | 0x7E00u | ((abs >> 13) & 0x3FFu));
  }
  // 65520 (0x477FF000) is halfway between the largest half 65504 (odd mantissa) and 2^16, so it
  // and everything above round to infinity.
  if (abs >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);
  if (abs >= 0x38800000u) {
    // Normal half: rebias the exponent (127 - 15 = 112) and round the 13 dropped bits.
    uint32_t h = (abs - 0x38000000u) >> 13;
    const uint32_t rem = abs & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry correctly bumps the exponent
    return static_cast<uint16_t>(sign | h);
  }
  // Below 2^-14: subnormal half (units of 2^-24) or zero. value = m * 2^(e - 150), so the count
  // of 2^-24 units is m >> (126 - e), rounded to nearest even.
  const uint32_t e = abs >> 23;
  if (e < 102) return static_cast<uint16_t>(sign);  // below 2^-25: rounds to zero
  const uint32_t m = (abs & 0x7FFFFFu) | 0x800000u;
  const uint32_t shift = 126 - e;  // 14..24
  uint32_t q = m >> shift;
  const uint32_t rem = m & ((1u << shift) - 1u);
  const uint32_t half = 1u << (shift - 1u);
  if (rem > half || (rem == half && (q & 1u))) ++q;  // 0x400 is the smallest normal: still right
  return static_cast<uint16_t>(sign | q);
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  const uint32_t mant = h & 0x3FFu;
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24 is exact in f32.
    const float mag = static_cast<float>(mant) * 0x1p-24f;
    return bits_float(sign | float_bits(mag));
  }
  if (exp == 31) {
    // Inf, or NaN quieted with its payload kept, as x86's vcvtph2ps does.
    return bits_float(sign | 0x7F800000u | (mant ? (0x400000u | (mant << 13)) : 0u));
  }
  return bits_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

uint16_t f32_to_bf16(float x) {
  const uint32_t b = float_bits(x);
  // NaN: keep sign and top payload, force the quiet bit (so a payload in the low bits survives).
  if ((b & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((b >> 16) | 0x40u);
  // Round to nearest even on the 16 dropped bits; overflow carries into Inf correctly.
  return static_cast<uint16_t>((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}

void convert_f32_to_f16_ref(const float* x, uint16_t* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = f32_to_f16(x[i]);
}
void convert_f16_to_f32_ref(const uint16_t* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = f16_to_f32(x[i]);
}
void convert_f32_to_bf16_ref(const float* x, uint16_t* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = f32_to_bf16(x[i]);
}
void convert_bf16_to_f32_ref(const uint16_t* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = bf16_to_f32(x[i]);
}
#endif  // BRISE_ISA_GENERIC

namespace BRISE_ISA {

void convert_f32_to_f16(const float* x, uint16_t* y, size_t n) {
  size_t i = 0;
#if defined(BRISE_AVX512)
  constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm512_cvtps_ph(_mm512_loadu_ps(x + i), kRound);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), h);
  }
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    const __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i), kRound);
    _mm256_mask_storeu_epi16(y + i, m, h);
    i = n;
  }
#elif defined(__F16C__)
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), h);
  }
#endif
  convert_f32_to_f16_ref(x + i, y + i, n - i);
}

void convert_f16_to_f32(const uint16_t* x, float* y, size_t n) {
  size_t i = 0;
#if defined(BRISE_AVX512)
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
    _mm512_storeu_ps(y + i, _mm512_cvtph_ps(h));
  }
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(y + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x + i)));
    i = n;
  }
#elif defined(__F16C__)
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i));
    _mm256_storeu_ps(y + i, _mm256_cvtph_ps(h));
  }
#endif
  convert_f16_to_f32_ref(x + i, y + i, n - i);
}

void convert_f32_to_bf16(const float* x, uint16_t* y, size_t n) {
  size_t i = 0;
#if defined(BRISE_AVX512)
  // Integer rounding (not vcvtneps2bf16, which flushes subnormals to zero).
  const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF);
  const __m512i inf = _mm512_set1_epi32(0x7F800000);
  const __m512i bias = _mm512_set1_epi32(0x7FFF);
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i quiet = _mm512_set1_epi32(0x40);
  auto convert16 = [&](__m512i b) {
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(b, abs_mask), inf);
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(b, 16), one);
    const __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(b, _mm512_add_epi32(bias, odd)), 16);
    const __m512i nan_val = _mm512_or_si512(_mm512_srli_epi32(b, 16), quiet);
    return _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(nan, rounded, nan_val));
  };
  for (; i + 16 <= n; i += 16) {
    const __m256i h = convert16(_mm512_loadu_si512(x + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), h);
  }
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    _mm256_mask_storeu_epi16(y + i, m, convert16(_mm512_maskz_loadu_epi32(m, x + i)));
    i = n;
  }
#endif
  convert_f32_to_bf16_ref(x + i, y + i, n - i);
}

void convert_bf16_to_f32(const uint16_t* x, float* y, size_t n) {
  size_t i = 0;
#if defined(BRISE_AVX512)
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
    _mm512_storeu_si512(y + i, _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    const __m512i w =
        _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, x + i)), 16);
    _mm512_mask_storeu_epi32(y + i, m, w);
    i = n;
  }
#endif
  convert_bf16_to_f32_ref(x + i, y + i, n - i);
}

}  // namespace BRISE_ISA
}  // namespace brise::kernels
