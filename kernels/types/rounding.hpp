// Rounding of f32 values to integer codes as ggml's reference quantizers do, scalar and AVX-512.
// Shared by the quantized codecs and the int8 activation quantizer (kernels/activations_q8.cpp).
//
// Non-finite input (ggml leaves it undefined: it converts NaN/Inf floats to int8) is defined:
// NaN rounds to the code of zero offset, and every intermediate that does not fit the code range
// saturates.
#pragma once

#include "kernels/isa.hpp"

#include <cmath>
#include <cstdint>

namespace brise::kernels::BRISE_ISA {

// roundf (half away from zero), saturated to [-127, 127]; NaN gives 0.
inline int8_t q8_code(float v) {
  const float r = std::roundf(v);
  if (std::isnan(r)) return 0;
  if (r > 127.0f) return 127;
  if (r < -127.0f) return -127;
  return static_cast<int8_t>(r);
}

// v truncated to [0, 15] as ggml's MIN(15, (int8_t)v); negative or NaN gives 0.
inline uint8_t q4_code(float v) {
  if (!(v >= 0.0f)) return 0;
  if (v >= 15.0f) return 15;
  return static_cast<uint8_t>(v);
}

// v truncated to [0, 31] as ggml's MIN(31, (int8_t)v) (Q5_0) and (uint8_t)v (Q5_1, whose v stays
// below 32); negative or NaN gives 0.
inline uint8_t q5_code(float v) {
  if (!(v >= 0.0f)) return 0;
  if (v >= 31.0f) return 31;
  return static_cast<uint8_t>(v);
}

#if defined(BRISE_AVX512)
// |x| with NaN lanes replaced by 0, so they never win a max.
inline __m512 abs_not_nan(__m512 x) {
  const __mmask16 ordered = _mm512_cmp_ps_mask(x, x, _CMP_ORD_Q);
  const __m512i bits =
      _mm512_maskz_and_epi32(ordered, _mm512_castps_si512(x), _mm512_set1_epi32(0x7FFFFFFF));
  return _mm512_castsi512_ps(bits);
}

// roundf (half away from zero), exactly: x - trunc(x) is exact in f32.
inline __m512 round_half_away(__m512 v) {
  const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m512 frac = _mm512_sub_ps(v, t);
  const __mmask16 up = _mm512_cmp_ps_mask(_mm512_abs_ps(frac), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
  // copysign(1, v)
  const __m512 one = _mm512_or_ps(
      _mm512_set1_ps(1.0f),
      _mm512_and_ps(v, _mm512_castsi512_ps(_mm512_set1_epi32(static_cast<int>(0x80000000u)))));
  return _mm512_mask_add_ps(t, up, t, one);
}

// q8_code of every lane, as 16 int32 lanes.
inline __m512i q8_codes_epi32(__m512 v) {
  __m512 r = round_half_away(v);
  r = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(r, r, _CMP_ORD_Q), r);  // NaN -> 0
  r = _mm512_min_ps(_mm512_max_ps(r, _mm512_set1_ps(-127.0f)), _mm512_set1_ps(127.0f));
  return _mm512_cvtps_epi32(r);
}

// q4_code of every lane, as 16 int32 lanes.
inline __m512i q4_codes_epi32(__m512 v) {
  // max_ps returns its second operand when the first is NaN: NaN -> 0.
  const __m512 c = _mm512_min_ps(_mm512_max_ps(v, _mm512_setzero_ps()), _mm512_set1_ps(15.0f));
  return _mm512_cvttps_epi32(c);
}
#elif defined(BRISE_AVX2)
inline __m256 abs_not_nan(__m256 x) {
  const __m256 ordered = _mm256_cmp_ps(x, x, _CMP_ORD_Q);
  return _mm256_and_ps(_mm256_and_ps(x, ordered),
                       _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF)));
}

inline __m256 round_half_away(__m256 v) {
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 frac = _mm256_sub_ps(v, t);
  const __m256 abs_frac = _mm256_and_ps(frac, _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF)));
  const __m256 up = _mm256_cmp_ps(abs_frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
  const __m256 one = _mm256_or_ps(
      _mm256_set1_ps(1.0f),
      _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(0x80000000u)))));
  return _mm256_add_ps(t, _mm256_and_ps(up, one));
}

inline __m256i q8_codes_epi32(__m256 v) {
  __m256 r = round_half_away(v);
  r = _mm256_and_ps(r, _mm256_cmp_ps(r, r, _CMP_ORD_Q));  // NaN -> 0
  r = _mm256_min_ps(_mm256_max_ps(r, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f));
  return _mm256_cvtps_epi32(r);
}
#endif

}  // namespace brise::kernels::BRISE_ISA
