// Q8_0 / Q4_0 block quantization, matching ggml's quantize_row_q8_0_ref / quantize_row_q4_0_ref
// bit for bit on finite input.
//
// Non-finite input (ggml leaves it undefined: it converts NaN/Inf floats to int8) is defined here:
//  - NaN elements are ignored when the block's largest magnitude is found, and quantize to the
//    code of zero offset: q8 = 0, q4 = 0 (i.e. value -8 d).
//  - A block containing +-Inf gets d = Inf (Q4_0: d = -+Inf) and id = 0, so its finite elements
//    quantize to q8 = 0 / q4 = 8; the block dequantizes to NaN/Inf, never crashes.
//  - Every intermediate that does not fit the code range saturates: q8 to [-127, 127], q4 to
//    [0, 15]. (This also covers blocks so tiny that 1/d overflows to Inf.)
#include "kernels/quantize.hpp"

#include <cmath>
#include <cstring>

#include "kernels/fp16.hpp"
// Before the intrinsics headers (GCC 12 false positives, see there).
#include "kernels/simd.hpp"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__)
#define BRISE_QUANT_AVX512 1
#include <immintrin.h>
#endif

// ggml computes q4 as (x * id) + 8.5f with two roundings; GCC would fuse that into an FMA even in
// ISO mode, which changes results. Clang does not fuse across statements by default.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace brise::kernels {
namespace {

int8_t q8_code(float v) {
  const float r = std::roundf(v);  // half away from zero, as ggml's roundf
  if (std::isnan(r)) return 0;
  if (r > 127.0f) return 127;
  if (r < -127.0f) return -127;
  return static_cast<int8_t>(r);
}

uint8_t q4_code(float v) {
  if (!(v >= 0.0f)) return 0;  // negative or NaN
  if (v >= 15.0f) return 15;   // ggml: MIN(15, (int8_t)v)
  return static_cast<uint8_t>(v);
}

}  // namespace

void quantize_row_q8_0_ref(const float* x, BlockQ8_0* y, size_t n) {
  for (size_t b = 0; b < n / kQuantBlock; ++b) {
    const float* xb = x + b * kQuantBlock;
    float amax = 0.0f;
    for (size_t j = 0; j < kQuantBlock; ++j) {
      const float a = std::fabs(xb[j]);
      if (a > amax) amax = a;  // a NaN never compares greater: ignored
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = f32_to_f16(d);
    for (size_t j = 0; j < kQuantBlock; ++j) y[b].qs[j] = q8_code(xb[j] * id);
  }
}

void quantize_row_q4_0_ref(const float* x, BlockQ4_0* y, size_t n) {
  constexpr size_t kHalf = kQuantBlock / 2;
  for (size_t b = 0; b < n / kQuantBlock; ++b) {
    const float* xb = x + b * kQuantBlock;
    float amax = 0.0f;
    float max = 0.0f;  // the first element of largest magnitude, with its sign
    for (size_t j = 0; j < kQuantBlock; ++j) {
      const float a = std::fabs(xb[j]);
      if (amax < a) {
        amax = a;
        max = xb[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = f32_to_f16(d);
    for (size_t j = 0; j < kHalf; ++j) {
      const float x0 = xb[j] * id;
      const float x1 = xb[j + kHalf] * id;
      const uint8_t q0 = q4_code(x0 + 8.5f);
      const uint8_t q1 = q4_code(x1 + 8.5f);
      y[b].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void dequantize_row_q8_0_ref(const BlockQ8_0* x, float* y, size_t n) {
  for (size_t b = 0; b < n / kQuantBlock; ++b) {
    const float d = f16_to_f32(x[b].d);
    for (size_t j = 0; j < kQuantBlock; ++j)
      y[b * kQuantBlock + j] = static_cast<float>(x[b].qs[j]) * d;
  }
}

void dequantize_row_q4_0_ref(const BlockQ4_0* x, float* y, size_t n) {
  constexpr size_t kHalf = kQuantBlock / 2;
  for (size_t b = 0; b < n / kQuantBlock; ++b) {
    const float d = f16_to_f32(x[b].d);
    float* yb = y + b * kQuantBlock;
    for (size_t j = 0; j < kHalf; ++j) {
      yb[j] = static_cast<float>((x[b].qs[j] & 0x0F) - 8) * d;
      yb[j + kHalf] = static_cast<float>((x[b].qs[j] >> 4) - 8) * d;
    }
  }
}

#if defined(BRISE_QUANT_AVX512)
namespace {

// |x| with NaN lanes replaced by 0, so they never win a max.
__m512 abs_not_nan(__m512 x) {
  const __mmask16 ordered = _mm512_cmp_ps_mask(x, x, _CMP_ORD_Q);
  const __m512i bits =
      _mm512_maskz_and_epi32(ordered, _mm512_castps_si512(x), _mm512_set1_epi32(0x7FFFFFFF));
  return _mm512_castsi512_ps(bits);
}

// roundf (half away from zero), exactly: x - trunc(x) is exact in f32.
__m512 round_half_away(__m512 v) {
  const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m512 frac = _mm512_sub_ps(v, t);
  const __mmask16 up = _mm512_cmp_ps_mask(_mm512_abs_ps(frac), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
  // copysign(1, v)
  const __m512 one = _mm512_or_ps(
      _mm512_set1_ps(1.0f),
      _mm512_and_ps(v, _mm512_castsi512_ps(_mm512_set1_epi32(static_cast<int>(0x80000000u)))));
  return _mm512_mask_add_ps(t, up, t, one);
}

__m128i q8_codes(__m512 v) {
  __m512 r = round_half_away(v);
  r = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(r, r, _CMP_ORD_Q), r);  // NaN -> 0
  r = _mm512_min_ps(_mm512_max_ps(r, _mm512_set1_ps(-127.0f)), _mm512_set1_ps(127.0f));
  return _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(r));
}

__m512i q4_codes(__m512 v) {
  // max_ps returns its second operand when the first is NaN: NaN -> 0.
  const __m512 c = _mm512_min_ps(_mm512_max_ps(v, _mm512_setzero_ps()), _mm512_set1_ps(15.0f));
  return _mm512_cvttps_epi32(c);
}

}  // namespace

void quantize_row_q8_0(const float* x, BlockQ8_0* y, size_t n) {
  for (size_t b = 0; b < n / kQuantBlock; ++b) {
    const float* xb = x + b * kQuantBlock;
    const __m512 x0 = _mm512_loadu_ps(xb);
    const __m512 x1 = _mm512_loadu_ps(xb + 16);
    // max is exact and order-free on non-NaN values, so this equals the sequential scan.
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(abs_not_nan(x0), abs_not_nan(x1)));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = f32_to_f16(d);
    const __m512 vid = _mm512_set1_ps(id);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y[b].qs), q8_codes(_mm512_mul_ps(x0, vid)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y[b].qs + 16), q8_codes(_mm512_mul_ps(x1, vid)));
  }
}

void quantize_row_q4_0(const float* x, BlockQ4_0* y, size_t n) {
  for (size_t b = 0; b < n / kQuantBlock; ++b) {
    const float* xb = x + b * kQuantBlock;
    const __m512 x0 = _mm512_loadu_ps(xb);
    const __m512 x1 = _mm512_loadu_ps(xb + 16);
    const __m512 a0 = abs_not_nan(x0);
    const __m512 a1 = abs_not_nan(x1);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(a0, a1));
    float max = 0.0f;
    if (amax > 0.0f) {
      // The scalar scan keeps the first element reaching the largest magnitude.
      const __m512 va = _mm512_set1_ps(amax);
      const uint32_t hits = static_cast<uint32_t>(_mm512_cmp_ps_mask(a0, va, _CMP_EQ_OQ)) |
                            (static_cast<uint32_t>(_mm512_cmp_ps_mask(a1, va, _CMP_EQ_OQ)) << 16);
      max = xb[__builtin_ctz(hits)];
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = f32_to_f16(d);
    const __m512 vid = _mm512_set1_ps(id);
    const __m512 half = _mm512_set1_ps(8.5f);
    const __m512i q0 = q4_codes(_mm512_add_ps(_mm512_mul_ps(x0, vid), half));
    const __m512i q1 = q4_codes(_mm512_add_ps(_mm512_mul_ps(x1, vid), half));
    const __m512i packed = _mm512_or_si512(q0, _mm512_slli_epi32(q1, 4));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y[b].qs), _mm512_cvtepi32_epi8(packed));
  }
}

void dequantize_row_q8_0(const BlockQ8_0* x, float* y, size_t n) {
  for (size_t b = 0; b < n / kQuantBlock; ++b) {
    const __m512 d = _mm512_set1_ps(f16_to_f32(x[b].d));
    for (size_t h = 0; h < 2; ++h) {
      const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b].qs + 16 * h));
      const __m512 qf = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q));
      _mm512_storeu_ps(y + b * kQuantBlock + 16 * h, _mm512_mul_ps(qf, d));
    }
  }
}

void dequantize_row_q4_0(const BlockQ4_0* x, float* y, size_t n) {
  const __m512i low = _mm512_set1_epi32(0x0F);
  const __m512i eight = _mm512_set1_epi32(8);
  for (size_t b = 0; b < n / kQuantBlock; ++b) {
    const __m512 d = _mm512_set1_ps(f16_to_f32(x[b].d));
    const __m512i q =
        _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b].qs)));
    const __m512i q0 = _mm512_sub_epi32(_mm512_and_si512(q, low), eight);
    const __m512i q1 = _mm512_sub_epi32(_mm512_srli_epi32(q, 4), eight);
    _mm512_storeu_ps(y + b * kQuantBlock, _mm512_mul_ps(_mm512_cvtepi32_ps(q0), d));
    _mm512_storeu_ps(y + b * kQuantBlock + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(q1), d));
  }
}

#else  // portable fallback: the references are the implementation

void quantize_row_q8_0(const float* x, BlockQ8_0* y, size_t n) {
  quantize_row_q8_0_ref(x, y, n);
}
void quantize_row_q4_0(const float* x, BlockQ4_0* y, size_t n) {
  quantize_row_q4_0_ref(x, y, n);
}
void dequantize_row_q8_0(const BlockQ8_0* x, float* y, size_t n) {
  dequantize_row_q8_0_ref(x, y, n);
}
void dequantize_row_q4_0(const BlockQ4_0* x, float* y, size_t n) {
  dequantize_row_q4_0_ref(x, y, n);
}

#endif

}  // namespace brise::kernels
